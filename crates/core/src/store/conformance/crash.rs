//! The crash test's parts, written once for every backend: a child process that commits
//! until it is killed, printing each commit the store acknowledged; the parent that kills it
//! with SIGKILL at a random moment and collects what it acknowledged; and the checks that
//! nothing acknowledged was lost and nothing half-committed shows. The embedded store's test
//! (`crates/core/tests/store/crash.rs`) and the PostgreSQL store's both use them; what only a
//! backend has (the embedded store's read index, a journal cut) each checks on its own.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use super::{moved, run, started};
use crate::event::{EventKind, NewEvent};
use crate::run::{RunId, RunStatus};
use crate::store::{RunChange, RunFilter, Store};

/// Replays the kill moments of a printed seed.
pub const SEED_ENV: &str = "WAYGATE_TEST_SEED";
/// Commits per run before the child ends it and starts another.
pub const RUN_LENGTH: u64 = 12;

/// A small xorshift generator: random enough for kill timing. Seeded from [`SEED_ENV`] when
/// it is set, else from the clock; the seed is printed either way.
#[derive(Debug)]
pub struct Rng(u64);

impl Default for Rng {
    fn default() -> Rng {
        Rng::new()
    }
}

impl Rng {
    /// A generator, its seed printed.
    pub fn new() -> Rng {
        let seed = match std::env::var(SEED_ENV) {
            Ok(text) => text
                .parse()
                .unwrap_or_else(|_| panic!("{SEED_ENV}={text:?} is not a u64")),
            Err(_) => SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        };
        eprintln!("seed {seed} (replay with {SEED_ENV}={seed})");
        Rng(seed | 1)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// An `ActionStarted` event in `state`.
pub fn action(state: &str) -> NewEvent {
    NewEvent::new(
        "bob",
        EventKind::ActionStarted {
            state: state.into(),
            index: 0,
            action: "echo deploy".into(),
        },
    )
}

/// The child's work: commits forever on one run of `web` in `prod` after another (each
/// [`RUN_LENGTH`] commits long, two events per commit, so a half-applied commit would show),
/// printing `ack RUN VERSION LAST_SEQ` after each the store acknowledged; `pause` between
/// commits, as separate commands would leave.
pub fn commit_until_killed(store: &dyn Store, pause: Option<Duration>) {
    let mut out = std::io::stdout().lock();
    let active = RunFilter {
        status: Some(RunStatus::Active),
        ..Default::default()
    };
    let mut current = store.list_runs(&active).expect("list").pop();
    loop {
        if let Some(pause) = pause {
            std::thread::sleep(pause);
        }
        let Some(run) = current.take() else {
            let id = RunId::generate(jiff::Timestamp::now());
            let new = run(id.as_str(), "web", "prod");
            let first = started(&new);
            let (run, events) = store.create_run(new, vec![first]).expect("create");
            writeln!(out, "ack {} {} {}", run.id, run.version, events[0].seq).expect("stdout");
            current = Some(run);
            continue;
        };
        let (change, mut events) = if run.version >= RUN_LENGTH {
            let status = RunStatus::Succeeded;
            let end = NewEvent::new(
                "bob",
                EventKind::RunEnded {
                    state: run.state.clone(),
                    status,
                },
            );
            (RunChange::status(status), vec![end])
        } else {
            let to = format!("s{}", run.version);
            (RunChange::to_state(&to), vec![moved(&run.state, &to)])
        };
        events.push(action(&run.state));
        let (run, events) = store
            .commit(&run.id, run.version, change, events)
            .expect("commit");
        let last = events.last().map_or(0, |e| e.seq);
        writeln!(out, "ack {} {} {}", run.id, run.version, last).expect("stdout");
        if !run.status.is_ended() {
            current = Some(run);
        }
    }
}

/// What the children acknowledged: each run's last version and event seq, and the highest
/// seq of all.
#[derive(Debug, Default)]
pub struct Acked {
    /// Run → (version, seq of its last acknowledged event).
    pub runs: HashMap<RunId, (u64, u64)>,
    /// The highest acknowledged seq.
    pub max_seq: u64,
}

impl Acked {
    /// Takes in an `ack RUN VERSION SEQ` line; anything else is ignored.
    pub fn take(&mut self, line: &str) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let ["ack", id, version, seq] = parts[..] {
            let (Ok(version), Ok(seq)) = (version.parse(), seq.parse()) else {
                return;
            };
            self.runs.insert(RunId::from(id), (version, seq));
            self.max_seq = self.max_seq.max(seq);
        }
    }
}

/// Starts `child` (its stdout piped), waits for its first acknowledged commit (a child killed
/// before it commits tests nothing), lets it go on for a random moment below `within`, kills
/// it with SIGKILL and takes in every commit it acknowledged.
pub fn kill_at_a_random_moment(
    mut child: Command,
    rng: &mut Rng,
    within: Duration,
    acked: &mut Acked,
) {
    let mut child = child
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let (first_ack, acking) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut first_ack = Some(first_ack);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("ack ") {
                if let Some(tell) = first_ack.take() {
                    let _ = tell.send(());
                }
            }
            lines.push(line);
        }
        lines
    });
    let _ = acking.recv_timeout(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(rng.below(within.as_millis() as u64)));
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
    child.wait().expect("wait");
    for line in reader.join().expect("reader") {
        acked.take(&line);
    }
}

/// After a kill: the chain verifies and holds every acknowledged event, every acknowledged
/// run is at least at its acknowledged version, each run's events match its version exactly
/// (one `RunStarted`, then two per commit: nothing half-committed), and at most one run
/// holds the environment.
pub fn nothing_acknowledged_is_lost(store: &dyn Store, acked: &Acked) {
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
    assert!(
        report.events >= acked.max_seq,
        "acknowledged event {} lost: {report:?}",
        acked.max_seq
    );
    for (id, (version, seq)) in &acked.runs {
        let run = store.load_run(id).expect("acknowledged run");
        assert!(
            run.version >= *version,
            "{id}: acknowledged version {version}, found {}",
            run.version
        );
        let events = store.run_events(id).expect("events");
        assert!(
            events.iter().any(|e| e.seq == *seq),
            "{id}: acknowledged event {seq} lost"
        );
    }
    let mut active = 0;
    for run in store.list_runs(&RunFilter::default()).expect("list") {
        let events = store.run_events(&run.id).expect("events");
        assert_eq!(
            events.len() as u64,
            1 + 2 * (run.version - 1),
            "{}: {events:?}",
            run.id
        );
        active += u32::from(!run.status.is_ended());
    }
    assert!(active <= 1, "two active runs in one environment");
}

/// After the kills, the store takes the next commit (the active run moves, or a new run
/// starts) and verifies.
pub fn takes_the_next_commit(store: &dyn Store) {
    let active = RunFilter {
        status: Some(RunStatus::Active),
        ..Default::default()
    };
    if let Some(run) = store.list_runs(&active).expect("list").pop() {
        store
            .commit(
                &run.id,
                run.version,
                RunChange::to_state("after"),
                vec![moved(&run.state, "after")],
            )
            .expect("commit");
    } else {
        let new = run("after", "web", "prod");
        let first = started(&new);
        store.create_run(new, vec![first]).expect("create");
    }
    assert!(store.verify().expect("verify").is_ok());
}
