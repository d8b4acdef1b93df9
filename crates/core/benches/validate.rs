//! Validation of a generated workflow of 10,000 states and 20,000 transitions.

use criterion::{criterion_group, criterion_main, Criterion};
use waygate_core::validate::validate;

#[path = "support/generated.rs"]
mod support;
use support::generated;

fn bench(c: &mut Criterion) {
    let text = generated(10_000);
    let v = validate("big.ron", &text);
    assert!(v.workflow.is_some(), "{:?}", v.diagnostics.first());
    let mut group = c.benchmark_group("validate");
    group.sample_size(10);
    group.bench_function("10k_states_20k_transitions", |b| {
        b.iter(|| validate("big.ron", &text))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
