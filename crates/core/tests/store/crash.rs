//! `kill -9` at random moments: every acknowledged commit survives, nothing partial shows.
//!
//! The parent test runs this same test binary as a child (the ignored test below, told by an
//! environment variable to do its work), which commits in a loop and prints a line for each
//! commit the store acknowledged. The parent kills it with SIGKILL at a random moment, then
//! opens the store and checks it against what the child reported.
//!
//! The kill moments come from a seeded generator; each test prints its seed (`seed N`), and
//! `WAYGATE_TEST_SEED=N cargo test -p waygate-core --test store crash::` replays those
//! moments (the child's own progress still depends on the machine's speed).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use waygate_core::event::{EventKind, NewEvent};
use waygate_core::run::{RunId, RunStatus};
use waygate_core::store::{EmbeddedStore, Options, RunChange, RunFilter, Store};

use crate::common::{action, moved, new_run};

const CHILD_ENV: &str = "WAYGATE_CRASH_CHILD_DIR";
/// Set to make the child hold the store (one session, commits applied to sled in batches),
/// as a server process would.
const HELD_ENV: &str = "WAYGATE_CRASH_CHILD_HELD";
/// Set to make the child pause this many milliseconds between commits, as separate commands
/// would: readers polling for the lock get a turn.
const PAUSE_ENV: &str = "WAYGATE_CRASH_CHILD_PAUSE_MS";
const CHILD_TEST: &str = "crash::child_commits_until_killed";
/// Replays the kill moments of a printed seed.
const SEED_ENV: &str = "WAYGATE_TEST_SEED";
/// Commits per run before the child ends it and starts another.
const RUN_LENGTH: u64 = 12;

/// The child: commit forever, printing `ack RUN VERSION LAST_SEQ` after each acknowledged one.
#[test]
#[ignore = "run by kill_9_at_random_moments_loses_no_acknowledged_commit as its child"]
fn child_commits_until_killed() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = EmbeddedStore::open(&dir).expect("open");
    let held = std::env::var(HELD_ENV).is_ok_and(|v| v == "1");
    let _held = held.then(|| store.hold().expect("hold"));
    let mut out = std::io::stdout().lock();
    let active = RunFilter {
        status: Some(RunStatus::Active),
        ..Default::default()
    };
    let mut current = store.list_runs(&active).expect("list").pop();
    let pause = std::env::var(PAUSE_ENV)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    loop {
        if let Some(pause) = pause {
            std::thread::sleep(pause);
        }
        let Some(run) = current.take() else {
            let id = RunId::generate(jiff::Timestamp::now());
            let (mut run, started) = new_run(id.as_str(), "prod");
            run.id = id;
            let (run, events) = store.create_run(run, vec![started]).expect("create");
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
        // Two events per commit, so a half-applied commit would show.
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

/// A small xorshift generator: random enough for kill timing. Seeded from
/// [`SEED_ENV`] when it is set, else from the clock; the seed is printed either way.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
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

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// This test binary (`exe`) running [`CHILD_TEST`] alone on the store in `dir`, holding it
/// when `held`.
fn child_command(exe: &std::path::Path, dir: &std::path::Path, held: bool) -> Command {
    let mut command = Command::new(exe);
    command
        .args([
            "--exact",
            CHILD_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, dir)
        .env(HELD_ENV, if held { "1" } else { "0" });
    command
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_commit() {
    kill_9_at_random_moments(false);
}

/// The same with the child holding the store: at the kill, up to 1,024 acknowledged commits
/// are in the journal but not yet in sled (pending in the session), and must be replayed.
#[test]
fn kill_9_of_a_process_holding_the_store_loses_no_acknowledged_commit() {
    kill_9_at_random_moments(true);
}

fn kill_9_at_random_moments(held: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current_exe");
    let mut rng = Rng::new();
    let started = Instant::now();
    let mut acked: HashMap<RunId, (u64, u64)> = HashMap::new();
    let mut max_seq = 0;
    let mut rounds = 0;
    let mut cut = 0;
    let mut served = 0;
    while rounds < 15 && started.elapsed() < Duration::from_secs(30) {
        rounds += 1;
        let mut child = child_command(&exe, dir.path(), held)
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
        // Kill at a random moment once the child is committing: on a slow disk (this
        // machine's is sometimes 20x slower) starting up alone can take longer than the
        // random delay, and a child killed before its first commit tests nothing.
        let _ = acking.recv_timeout(Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
        child.wait().expect("wait");
        let lines = reader.join().expect("reader");
        for line in lines {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let ["ack", id, version, seq] = parts[..] {
                let version: u64 = version.parse().expect("version");
                let seq: u64 = seq.parse().expect("seq");
                acked.insert(RunId::from(id), (version, seq));
                max_seq = max_seq.max(seq);
            }
        }
        let before = journal_bytes(dir.path());
        served += index_agrees(dir.path(), &acked);
        check(dir.path(), &acked, max_seq);
        cut += u32::from(journal_bytes(dir.path()) < before);
    }
    eprintln!(
        "{rounds} kills ({cut} left an unfinished commit to cut off), {max_seq} acknowledged \
         events, {} runs",
        acked.len()
    );
    assert!(
        max_seq > 20,
        "the child got too little done to test anything ({max_seq} events)"
    );
    // A process that does not hold the store brings the index up to date at every write, so
    // after a kill most runs are answered from it (those created by a commit the kill left
    // out of the index are not).
    assert!(held || served > 0, "the read index answered for no run");
    // And the store takes the next commit.
    let store = EmbeddedStore::open(dir.path()).expect("open");
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
        let (run, started) = new_run("after", "prod");
        store.create_run(run, vec![started]).expect("create");
    }
    assert!(store.verify().expect("verify").is_ok());
}

/// The read index as the kill left it (asked before anything opens a session, which would
/// bring it up to date): for every acknowledged run, it answers exactly as sled does, or not
/// at all. Returns how many runs it answered for.
fn index_agrees(dir: &std::path::Path, acked: &HashMap<RunId, (u64, u64)>) -> usize {
    let store = EmbeddedStore::open(dir).expect("open after kill");
    let fast: Vec<_> = acked
        .keys()
        .map(|id| (id, store.read_from_index(id).expect("index")))
        .collect();
    let mut served = 0;
    for (id, fast) in fast {
        if let Some(fast) = fast {
            served += 1;
            assert_eq!(fast, store.read_through_state(id).expect("state"), "{id}");
        }
    }
    served
}

/// Every acknowledged commit is there; every run's events match its version exactly.
fn check(dir: &std::path::Path, acked: &HashMap<RunId, (u64, u64)>, max_seq: u64) {
    let store = EmbeddedStore::open(dir).expect("open after kill");
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
    assert!(
        report.events >= max_seq,
        "acknowledged event {max_seq} lost: {report:?}"
    );
    for (id, (version, seq)) in acked {
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
        // One RunStarted, then two events per commit: nothing half-committed.
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

/// The journal's total size.
fn journal_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir.join("journal"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Readers in this process read the child's runs through the read index while the child
/// commits (each commit a separate session, as CLI commands are) and until after it is killed
/// at a random moment: every read shows every commit acknowledged before it began, and whole
/// commits only.
#[test]
fn index_readers_see_every_acknowledged_commit_while_a_writer_commits_and_dies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current_exe");
    let mut rng = Rng::new();
    // Killed when dropped, so a failed assertion does not leave it committing.
    let mut child = Killed(
        child_command(&exe, dir.path(), false)
            .env(PAUSE_ENV, "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (acks, acked_rx) = std::sync::mpsc::channel::<(RunId, u64, u64)>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let ["ack", id, version, seq] = parts[..] {
                let (Ok(version), Ok(seq)) = (version.parse(), seq.parse()) else {
                    continue;
                };
                if acks.send((RunId::from(id), version, seq)).is_err() {
                    break;
                }
            }
        }
    });
    // The lock is polled, and a writer committing in a loop can keep a reader waiting for a
    // while on a loaded machine: waiting is not what this test is about.
    let store = EmbeddedStore::open_with(
        dir.path(),
        Options {
            lock_timeout: Duration::from_secs(120),
            ..Options::default()
        },
    )
    .expect("open");
    let mut acked: HashMap<RunId, (u64, u64)> = HashMap::new();
    let mut latest: Option<RunId> = None;
    let started = Instant::now();
    let kill_after = Duration::from_millis(500 + rng.below(1500));
    let mut killed_at = None;
    let (mut reads, mut served) = (0u32, 0u32);
    while killed_at.is_none_or(|at: Instant| at.elapsed() < Duration::from_millis(300)) {
        if killed_at.is_none() && started.elapsed() >= kill_after {
            child.0.kill().expect("SIGKILL");
            child.0.wait().expect("wait");
            killed_at = Some(Instant::now());
        }
        // Everything acknowledged so far, before the read begins.
        while let Ok((id, version, seq)) = acked_rx.try_recv() {
            acked.insert(id.clone(), (version, seq));
            latest = Some(id);
        }
        let Some(id) = latest.clone() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        // Now and then an older run, whose file the index has not touched for a while.
        let id = if reads % 4 == 3 {
            acked
                .keys()
                .nth(rng.below(acked.len() as u64) as usize)
                .cloned()
                .unwrap_or(id)
        } else {
            id
        };
        let Some((version, seq)) = acked.get(&id).copied() else {
            continue;
        };
        // Leave the writer room to commit between reads.
        std::thread::sleep(Duration::from_millis(1));
        reads += 1;
        let (run, events) = match store.read_from_index(&id).expect("index") {
            Some(answer) => {
                served += 1;
                answer
            }
            None => store.load_run_with_events(&id).expect("through the state"),
        };
        assert!(
            run.version >= version,
            "{id}: acknowledged version {version}, read {}",
            run.version
        );
        assert!(
            events.iter().any(|e| e.seq == seq),
            "{id}: acknowledged event {seq} not read"
        );
        // One RunStarted, then two events per commit: nothing half-committed, and the run's
        // version matches its events.
        assert_eq!(
            events.len() as u64,
            1 + 2 * (run.version - 1),
            "{id}: {events:?}"
        );
        assert!(
            events.windows(2).all(|w| w[0].seq < w[1].seq) && events.iter().all(|e| e.run_id == id),
            "{id}: {events:?}"
        );
    }
    drop(acked_rx);
    reader.join().expect("reader");
    eprintln!(
        "{reads} reads, {served} answered by the index, {} runs",
        acked.len()
    );
    assert!(reads > 10, "too few reads to test anything ({reads})");
    assert!(served > 0, "the index answered none of {reads} reads");
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
}

/// A child process killed (SIGKILL) and reaped when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
