//! Builds a store of `--runs R` ended runs of `--events E` events each, through the [`Store`]
//! API, for the read benchmarks in `bench/compare` (`waygate status` / `history` on 1,000,000
//! events).
//!
//! Each run is three writes: `create_run` with `RunStarted`; one `append` of E-3 events
//! (guard evaluations and actions, realistic sizes); a `commit` to `done`/succeeded with
//! `Transitioned` and `RunEnded`. Many events per write keeps building a million events to
//! seconds rather than a million fsyncs. The runs pin `workflows/examples/quickstart.ron`, so
//! `waygate status RUN` validates a real definition. Run ids are `run-00000`, `run-00001`, ...
//!
//! ```sh
//! cargo run --release -p waygate-core --example make_store -- --dir target/bench-stores/1m --runs 10000 --events 100
//! ```
//!
//! `DIR` must not exist or be empty. Prints one JSON line: `{"runs":R,"events":N,"seconds":S}`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use waygate_core::event::{Cause, EventKind, NewEvent};
use waygate_core::outcome::{GuardResult, Outcome};
use waygate_core::run::{Run, RunId, RunStatus};
use waygate_core::store::{EmbeddedStore, RunChange, Store, StoreError};

#[path = "support/flags.rs"]
mod flags;
use flags::Flags;

const DEFINITION: &str = include_str!("../../../workflows/examples/quickstart.ron");

struct Args {
    dir: PathBuf,
    runs: u64,
    events: u64,
}

fn parse_args() -> Result<Args, String> {
    let flags = Flags::parse(&["--runs", "--events"])?;
    let args = Args {
        runs: flags.number("--runs", 10_000)?,
        events: flags.number("--events", 100)?,
        dir: flags.dir.clone(),
    };
    if args.events < 4 {
        return Err("--events must be at least 4".into());
    }
    flags.dir_is_empty()?;
    Ok(args)
}

/// The `i`th event in the middle of a run: guard evaluations, and actions that start and end.
fn middle(i: u64) -> NewEvent {
    let kind = match i % 3 {
        0 => EventKind::GuardsEvaluated {
            state: "build".into(),
            to: "bake".into(),
            passed: true,
            guards: vec![GuardResult {
                name: "tests".into(),
                outcome: Outcome::Pass,
                detail: "exit status 0".into(),
                evidence: Some("Fri Nov 27 02:41:09 UTC 2026".into()),
                duration_ms: 3,
                attempts: 1,
                retry_at: None,
                incident: false,
                outputs: Default::default(),
            }],
        },
        1 => EventKind::ActionStarted {
            state: "build".into(),
            index: 0,
            action: "echo hello from waygate: building".into(),
        },
        _ => EventKind::ActionFinished {
            state: "build".into(),
            index: 0,
            ok: true,
            detail: "exit status 0".into(),
            evidence: Some("hello from waygate: building".into()),
            duration_ms: 2,
            outputs: Default::default(),
        },
    };
    NewEvent::new("bench", kind)
}

fn build(args: &Args) -> Result<u64, StoreError> {
    let store = EmbeddedStore::open(&args.dir)?;
    let _held = store.hold()?;
    let mut total = 0;
    for r in 0..args.runs {
        let run = Run::new(
            RunId(format!("run-{r:05}")),
            "quickstart",
            "local",
            "build",
            "bench",
            "workflows/examples/quickstart.ron",
            DEFINITION,
        );
        let started = NewEvent::new("bench", run.started());
        let (run, _) = store.create_run(run, vec![started])?;
        store.append(&run.id, (0..args.events - 3).map(middle).collect())?;
        let end = vec![
            NewEvent::new(
                "bench",
                EventKind::Transitioned {
                    from: "build".into(),
                    to: "done".into(),
                    cause: Cause::Advance,
                    reason: None,
                },
            ),
            NewEvent::new(
                "bench",
                EventKind::RunEnded {
                    state: "done".into(),
                    status: RunStatus::Succeeded,
                },
            ),
        ];
        let change = RunChange::to_state("done").with_status(RunStatus::Succeeded);
        store.commit(&run.id, run.version, change, end)?;
        total += args.events;
    }
    Ok(total)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("make_store: {e}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    match build(&args) {
        Ok(events) => {
            println!(
                "{{\"runs\":{},\"events\":{events},\"seconds\":{:.3}}}",
                args.runs,
                start.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("make_store: {e}");
            ExitCode::FAILURE
        }
    }
}
