//! Decisions per second through [`decide`] on the 5-state guarded cycle (`bench/cycle5.ron`).
//!
//! `bench/compare` runs this next to Python `transitions` and XState driving the same cycle.
//! Each step does what a state-machine library does on an event: find the current state's
//! transition, evaluate its guard (a check that is trivially true, standing in for
//! `conditions=lambda: True` / `guard: () => true`), decide, and move. Prints one JSON line:
//! `{"decisions":N,"seconds":S,"per_sec":R}`.
//!
//! ```sh
//! cargo run --release -p waygate-core --example decide_rate -- 10000000
//! ```

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use waygate_core::decide::{decide, Decision, Evaluation};
use waygate_core::outcome::{GuardResult, Outcome};
use waygate_core::validate::validate;

const CYCLE: &str = include_str!("../../../bench/cycle5.ron");

fn main() -> ExitCode {
    let n: u64 = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 10_000_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("decide_rate: the argument is the number of decisions: {e}");
            return ExitCode::from(2);
        }
    };
    let validated = validate("cycle5.ron", CYCLE);
    let Some(workflow) = validated.workflow else {
        eprintln!(
            "decide_rate: cycle5.ron is invalid: {:?}",
            validated.diagnostics
        );
        return ExitCode::FAILURE;
    };
    // The guard's result, reused every step: only its outcome changes.
    let mut results = [GuardResult {
        name: "ok".into(),
        outcome: Outcome::Pass,
        detail: String::new(),
        evidence: None,
        duration_ms: 0,
        attempts: 1,
        retry_at: None,
        incident: false,
    }];
    let guard = || black_box(true);

    let mut state = workflow.initial;
    let start = Instant::now();
    for _ in 0..n {
        let Some(t) = workflow.outgoing_iter(state).next() else {
            eprintln!("decide_rate: state without a transition");
            return ExitCode::FAILURE;
        };
        results[0].outcome = if guard() {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        let evaluations = [Evaluation {
            transition: t.id,
            results: &results,
        }];
        match decide(
            &workflow,
            state,
            &[],
            Duration::ZERO,
            black_box(&evaluations),
        ) {
            Decision::Take { to, .. } => state = to,
            other => {
                eprintln!("decide_rate: unexpected decision {other:?}");
                return ExitCode::FAILURE;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    black_box(state);
    println!(
        "{{\"decisions\":{n},\"seconds\":{seconds:.6},\"per_sec\":{:.1}}}",
        n as f64 / seconds
    );
    ExitCode::SUCCESS
}
