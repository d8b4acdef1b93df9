//! 50 guards of `sleep 1` on one transition: they run concurrently, so one evaluation takes
//! about one second, not fifty. Run with `cargo bench -p waygate-executor --bench fanout`.
//!
//! Observed on the development machine: `[1.0293 s 1.0316 s 1.0341 s]` per evaluation of all
//! 50 guards (criterion, 10 samples). Timing is deliberately not asserted in the test suite.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use waygate_core::model::{Check, Guard, Retry};
use waygate_executor::test_support::command;
use waygate_executor::{evaluate_transition, GuardContext};

fn sleep_guards(n: usize) -> Vec<Guard> {
    (0..n)
        .map(|i| Guard {
            name: format!("sleep-{i}"),
            check: Check::Command(command(&["sleep", "1"], Duration::from_secs(30))),
            retry: Retry::default(),
            overridable_by: Vec::new(),
        })
        .collect()
}

fn fanout(c: &mut Criterion) {
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let ctx = GuardContext::new("bench", "local", "bench", HashMap::new(), HashSet::new());
    let guards = sleep_guards(50);
    let mut group = c.benchmark_group("fanout");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    group.bench_function("50 x sleep 1", |b| {
        b.iter(|| runtime.block_on(evaluate_transition(&guards, &ctx)));
    });
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
