//! The pure transition decision on the 5-state guarded cycle (`bench/cycle5.ron`), guards
//! trivially passing: one iteration is one decision plus the move to its target.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "support/cycle.rs"]
mod cycle;

fn bench(c: &mut Criterion) {
    let workflow = cycle::workflow().expect("cycle5.ron is valid");
    let pass = cycle::passing();
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    let mut state = workflow.initial;
    group.bench_function("5_state_guarded_cycle", |b| {
        b.iter(|| {
            state = cycle::step(&workflow, state, &pass).expect("the cycle moves on");
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
