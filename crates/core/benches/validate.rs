//! Validation of a generated workflow of 10,000 states and 20,000 transitions.

use criterion::{criterion_group, criterion_main, Criterion};
use waygate_core::validate::validate;

/// A chain of `n` states, each with a forward transition guarded by a Command and a Wait,
/// and a second transition to the rollback state, with `${vars}` in the commands.
pub fn generated(n: usize) -> String {
    let mut s = String::from(
        "Workflow(name: \"big\", initial: \"s0\", rollback: \"rb\",\n vars: { \"url\": (default: \"http://127.0.0.1\") },\n states: {\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "  \"s{i}\": (on_failure: \"rb\", deadline: \"1h\"),\n"
        ));
    }
    s.push_str("  \"done\": (terminal: Success),\n  \"rb\": (),\n  \"failed\": (terminal: Failure),\n },\n transitions: [\n");
    for i in 0..n {
        let next = if i + 1 == n {
            "done".to_owned()
        } else {
            format!("s{}", i + 1)
        };
        s.push_str(&format!(
            "  (from: \"s{i}\", to: \"{next}\", guards: [(name: \"t\", check: Command(run: [\"curl\", \"${{url}}/{i}\"], timeout: \"30s\")), (name: \"bake\", check: Wait(duration: \"5m\"))]),\n"
        ));
        s.push_str(&format!("  (from: \"s{i}\", to: \"rb\"),\n"));
    }
    s.push_str("  (from: \"rb\", to: \"failed\"),\n ],\n)\n");
    s
}

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
