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
use std::time::Instant;

use waygate_core::outcome::Outcome;

#[path = "../benches/support/cycle.rs"]
mod cycle;

fn main() -> ExitCode {
    let n: u64 = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 10_000_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("decide_rate: the argument is the number of decisions: {e}");
            return ExitCode::from(2);
        }
    };
    let workflow = match cycle::workflow() {
        Ok(workflow) => workflow,
        Err(e) => {
            eprintln!("decide_rate: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The guard's result, reused every step: only its outcome changes.
    let mut results = cycle::passing();
    let guard = || black_box(true);

    let mut state = workflow.initial;
    let start = Instant::now();
    for _ in 0..n {
        results[0].outcome = if guard() {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        match cycle::step(&workflow, state, &results) {
            Ok(to) => state = to,
            Err(e) => {
                eprintln!("decide_rate: {e}");
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
