//! The pure transition decision on the 5-state guarded cycle (`bench/cycle5.ron`), guards
//! trivially passing: one iteration is one decision plus the move to its target.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use waygate_core::decide::{decide, Decision, Evaluation};
use waygate_core::outcome::{GuardResult, Outcome};
use waygate_core::validate::validate;

const CYCLE: &str = include_str!("../../../bench/cycle5.ron");

fn bench(c: &mut Criterion) {
    let v = validate("cycle5.ron", CYCLE);
    let workflow = v.workflow.expect("cycle5.ron is valid");
    let pass = [GuardResult {
        name: "ok".into(),
        outcome: Outcome::Pass,
        detail: String::new(),
        evidence: None,
        duration_ms: 0,
        attempts: 1,
        retry_at: None,
        incident: false,
    }];
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    let mut state = workflow.initial;
    group.bench_function("5_state_guarded_cycle", |b| {
        b.iter(|| {
            let t = workflow
                .outgoing_iter(state)
                .next()
                .expect("every cycle state has a transition");
            let evaluations = [Evaluation {
                transition: t.id,
                results: &pass,
            }];
            match decide(
                &workflow,
                state,
                &[],
                Duration::ZERO,
                black_box(&evaluations),
            ) {
                Decision::Take { to, .. } => state = to,
                other => panic!("unexpected decision {other:?}"),
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
