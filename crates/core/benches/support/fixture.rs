//! The benchmarks' big store: `events` events (1,000,000 unless `WAYGATE_BENCH_EVENTS` says
//! otherwise) over `events / 100` runs, spread over a year, built once through the store's own
//! bulk path ([`EmbeddedStore::write_all`]: real commits, one `fdatasync` per group of 100) and
//! cached in `target/bench-stores/<events>`. The cache is reused when its `READY` file names
//! the same event count and the same fixture version; delete the directory to rebuild.
//!
//! Shape: 100 runs are active at a time, each in its own environment; each run records 100
//! events (`RunStarted`, guard evaluations, actions, a transition every tenth event, then a
//! `Transitioned` to `done` that ends it). Runs advance round-robin, so a run's events are
//! scattered over the journal as in real use. Times step so that the year holds the history
//! evenly (about 114 events per hour at 1,000,000).

#![allow(dead_code)] // shared by the bench and the example, which use different parts

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use waygate_core::event::{Cause, EventKind, NewEvent};
use waygate_core::outcome::{GuardResult, Outcome};
use waygate_core::run::{Run, RunId, RunStatus};
use waygate_core::store::{Commit, EmbeddedStore, RunChange, Store, Write};

/// Events per run.
pub const PER_RUN: u64 = 100;
/// Runs active at once (and environments).
pub const WINDOW: u64 = 100;
/// Bump when the fixture's shape changes, so old caches are rebuilt.
const VERSION: u32 = 4;

/// A built (or cached) store and what the benches ask of it.
#[derive(Debug)]
pub struct Fixture {
    /// The store directory.
    pub dir: PathBuf,
    /// Events in it.
    pub events: u64,
    /// A run in the middle of the history.
    pub run: RunId,
    /// A one-hour range in the middle of the history.
    pub since: jiff::Timestamp,
    /// Its end.
    pub until: jiff::Timestamp,
}

/// How many events the fixture holds: `WAYGATE_BENCH_EVENTS` or 1,000,000, in whole runs.
pub fn wanted_events() -> u64 {
    let n = std::env::var("WAYGATE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse::<u64>().ok())
        .unwrap_or(1_000_000);
    (n / (PER_RUN * WINDOW)).max(1) * PER_RUN * WINDOW
}

/// Where cached stores live: `$CARGO_TARGET_DIR` or the workspace's `target/`.
pub fn cache_root() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("bench-stores"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-stores"),
    }
}

fn start() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_735_689_600).expect("2025-01-01 is a valid time")
}

/// Seconds between two groups (rounds) of the history: a year over all rounds.
fn step(events: u64) -> i64 {
    let rounds = (events / WINDOW) as i64;
    (365 * 24 * 3600 / rounds).max(1)
}

fn ready_text(events: u64) -> String {
    format!("waygate bench fixture v{VERSION}, {events} events\n")
}

/// The fixture with `events` events, building it if the cache lacks it.
pub fn fixture(events: u64) -> Fixture {
    let dir = cache_root().join(events.to_string());
    let ready = dir.join("READY");
    if std::fs::read_to_string(&ready).ok().as_deref() != Some(ready_text(events).as_str()) {
        let building = cache_root().join(format!("{events}.building"));
        let _ = std::fs::remove_dir_all(&building);
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!(
            "building the {events}-event bench store in {}",
            dir.display()
        );
        let started = std::time::Instant::now();
        build(&building, events);
        std::fs::write(building.join("READY"), ready_text(events)).expect("write READY");
        std::fs::rename(&building, &dir).expect("move the built store into place");
        eprintln!("built in {:.1?}", started.elapsed());
    }
    let runs = events / PER_RUN;
    let middle_round = (events / WINDOW) as i64 / 2;
    let since = start() + jiff::SignedDuration::from_secs(middle_round * step(events));
    Fixture {
        dir,
        events,
        run: run_id(runs / 2 + 7),
        since,
        until: since + jiff::SignedDuration::from_hours(1),
    }
}

pub fn run_id(i: u64) -> RunId {
    RunId(format!("r{i:06}"))
}

/// The workflow every run pins: ten states in a row, each with an action and a guard, then
/// `done`. A valid workflow, so `waygate status` can be timed against the store.
pub fn definition() -> String {
    let mut s =
        String::from("Workflow(\n    name: \"web\",\n    initial: \"s0\",\n    states: {\n");
    for i in 0..10 {
        s.push_str(&format!(
            "        \"s{i}\": (on_enter: [Command(run: [\"./deploy.sh\", \"s{i}\"])], deadline: \"1h\"),\n"
        ));
    }
    s.push_str("        \"done\": (terminal: Success),\n    },\n    transitions: [\n");
    for i in 0..10 {
        let to = if i == 9 {
            "done".to_owned()
        } else {
            format!("s{}", i + 1)
        };
        s.push_str(&format!(
            "        (from: \"s{i}\", to: \"{to}\", guards: [(name: \"health\", check: Command(run: [\"curl\", \"-fsS\", \"https://web.internal/healthz\"], timeout: \"30s\"))]),\n"
        ));
    }
    s.push_str("    ],\n)\n");
    s
}

/// What run `i` records as its `r`-th event (the run is at `version`).
fn step_write(i: u64, r: u64, version: u64, definition: &str) -> Write {
    let id = run_id(i);
    let state = |k: u64| format!("s{k}");
    if r == 0 {
        let mut run = Run::new(
            id.clone(),
            "web",
            format!("env{}", i % WINDOW),
            "s0",
            "ana",
            "workflows/web.ron",
            definition,
        );
        run.vars.insert("region".into(), "eu-west-1".into());
        run.vars.insert("version".into(), format!("1.{i}.0"));
        let started = run.started();
        return Write::Create {
            run: Box::new(run),
            events: vec![NewEvent::new("ana", started)],
        };
    }
    let at = r / 10;
    if r == PER_RUN - 1 {
        let moved = EventKind::Transitioned {
            from: state(at),
            to: "done".into(),
            cause: Cause::Advance,
            reason: None,
        };
        return Write::Commit(Commit {
            id,
            expected: version,
            change: RunChange::to_state("done").with_status(RunStatus::Succeeded),
            events: vec![NewEvent::new("drive", moved)],
        });
    }
    if r % 10 == 9 {
        let moved = EventKind::Transitioned {
            from: state(at),
            to: state(at + 1),
            cause: Cause::Advance,
            reason: None,
        };
        return Write::Commit(Commit {
            id,
            expected: version,
            change: RunChange::to_state(state(at + 1)),
            events: vec![NewEvent::new("drive", moved)],
        });
    }
    let kind = if r % 3 == 0 {
        EventKind::ActionStarted {
            state: state(at),
            index: 0,
            action: format!("./deploy.sh s{at} --version 1.{i}.0"),
        }
    } else {
        EventKind::GuardsEvaluated {
            state: state(at),
            to: state(at + 1),
            passed: r % 3 == 2,
            guards: vec![GuardResult {
                name: "health".into(),
                outcome: if r % 3 == 2 {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                },
                detail: "HTTP 200 from https://web.internal/healthz".into(),
                evidence: Some("{\"status\":\"ok\",\"checks\":12}".into()),
                duration_ms: 41,
                attempts: 1,
                retry_at: None,
                incident: false,
                outputs: Default::default(),
            }],
        }
    };
    Write::Append {
        id,
        events: vec![NewEvent::new("drive", kind)],
    }
}

/// Builds the store in `dir`: windows of [`WINDOW`] runs, round-robin, one group commit per
/// round, the clock stepping a round at a time.
fn build(dir: &Path, events: u64) {
    let now = Arc::new(AtomicI64::new(start().as_second()));
    let clock = {
        let now = Arc::clone(&now);
        Arc::new(move || {
            jiff::Timestamp::from_second(now.load(Ordering::Relaxed)).unwrap_or_else(|_| start())
        })
    };
    let store = EmbeddedStore::open(dir).expect("open").with_clock(clock);
    let held = store.hold().expect("hold");
    let definition = definition();
    let step = step(events);
    let runs = events / PER_RUN;
    for window in 0..runs / WINDOW {
        let first = window * WINDOW;
        let mut versions = vec![1u64; WINDOW as usize];
        for r in 0..PER_RUN {
            let writes = (0..WINDOW)
                .map(|k| step_write(first + k, r, versions[k as usize], &definition))
                .collect();
            for (k, result) in store.write_all(writes).into_iter().enumerate() {
                let (run, _) = result.expect("fixture write");
                if let Some(run) = run {
                    versions[k] = run.version;
                }
            }
            now.fetch_add(step, Ordering::Relaxed);
        }
    }
    drop(held);
    let report = store.verify().expect("verify");
    assert!(report.is_ok() && report.events == events, "{report:?}");
}

/// Bytes under `path`, recursively.
pub fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

/// Ensures `store` is usable (catches up, or rebuilds sled) before timing anything.
pub fn warm(store: &EmbeddedStore, run: &RunId) {
    store.load_run(run).expect("the fixture run exists");
}
