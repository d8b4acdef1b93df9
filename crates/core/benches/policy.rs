//! Policies and simulation on the generated workflow of 10,000 states and 20,000 transitions
//! (the validation bench's): every rule kind of docs/policies.md, and `simulate` up to its
//! limits (the workflow has 20,001 paths, most of them thousands of steps long).

use criterion::{criterion_group, criterion_main, Criterion};
use waygate_core::policy;
use waygate_core::simulate::{simulate, Limits};
use waygate_core::validate::validate;

#[path = "support/generated.rs"]
mod support;
use support::generated;

const POLICY: &str = r#"Policy(name: "bench", rules: [
    (name: "through", rule: PassesThrough(state: "done", through: "s5000")),
    (name: "tested", rule: GuardedBy(state: "done", guard: Command(name: "t"), on: Path)),
    (name: "baked", rule: GuardedBy(state: "s9999", guard: Wait())),
    (name: "rollback-ready", rule: CanReach(from: "s0")),
    (name: "failure-paths", rule: FailurePath(from: "s1")),
    (name: "deadlines", rule: DeadlineAtMost(states: "s*", max: "2h")),
])"#;

fn bench(c: &mut Criterion) {
    let text = generated(10_000);
    let v = validate("big.ron", &text);
    let workflow = v.workflow.expect("the generated workflow validates");
    let read = policy::read("bench.ron", POLICY);
    let policy = read.policy.expect("the bench policy reads");
    let found = policy::check(&policy, &workflow, "big.ron", &text);
    // `rb` has no failure path of its own: the one violation, with its diagnostic.
    assert_eq!(found.len(), 1, "{found:#?}");
    let sim = simulate(&workflow, Limits::default());
    assert!(sim.truncated.is_some() && !sim.paths.is_empty());

    let mut group = c.benchmark_group("policy");
    group.sample_size(10);
    group.bench_function("10k_states_6_rules", |b| {
        b.iter(|| policy::check(&policy, &workflow, "big.ron", &text))
    });
    group.bench_function("simulate_10k_states_to_the_limit", |b| {
        b.iter(|| simulate(&workflow, Limits::default()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
