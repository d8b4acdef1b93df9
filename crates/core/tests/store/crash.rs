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
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use waygate_core::run::RunId;
use waygate_core::store::conformance::crash::{self, Acked};
use waygate_core::store::{EmbeddedStore, Options, Store};

const CHILD_ENV: &str = "WAYGATE_CRASH_CHILD_DIR";
/// Set to make the child hold the store (one session, commits applied to sled in batches),
/// as a server process would.
const HELD_ENV: &str = "WAYGATE_CRASH_CHILD_HELD";
/// Set to make the child pause this many milliseconds between commits, as separate commands
/// would: readers polling for the lock get a turn.
const PAUSE_ENV: &str = "WAYGATE_CRASH_CHILD_PAUSE_MS";
const CHILD_TEST: &str = "crash::child_commits_until_killed";

/// The child: commit forever, printing `ack RUN VERSION LAST_SEQ` after each acknowledged one
/// (`conformance::crash::commit_until_killed`).
#[test]
#[ignore = "run by kill_9_at_random_moments_loses_no_acknowledged_commit as its child"]
fn child_commits_until_killed() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = EmbeddedStore::open(&dir).expect("open");
    let held = std::env::var(HELD_ENV).is_ok_and(|v| v == "1");
    let _held = held.then(|| store.hold().expect("hold"));
    let pause = std::env::var(PAUSE_ENV)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    crash::commit_until_killed(&store, pause);
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
    let mut rng = crash::Rng::new();
    let started = Instant::now();
    let mut acked = Acked::default();
    let mut rounds = 0;
    let mut cut = 0;
    let mut served = 0;
    while rounds < 15 && started.elapsed() < Duration::from_secs(30) {
        rounds += 1;
        let child = child_command(&exe, dir.path(), held);
        crash::kill_at_a_random_moment(child, &mut rng, Duration::from_millis(300), &mut acked);
        let before = journal_bytes(dir.path());
        served += index_agrees(dir.path(), &acked.runs);
        let store = EmbeddedStore::open(dir.path()).expect("open after kill");
        crash::nothing_acknowledged_is_lost(&store, &acked);
        drop(store);
        cut += u32::from(journal_bytes(dir.path()) < before);
    }
    eprintln!(
        "{rounds} kills ({cut} left an unfinished commit to cut off), {} acknowledged \
         events, {} runs",
        acked.max_seq,
        acked.runs.len()
    );
    assert!(
        acked.max_seq > 20,
        "the child got too little done to test anything ({} events)",
        acked.max_seq
    );
    // A process that does not hold the store brings the index up to date at every write, so
    // after a kill most runs are answered from it (those created by a commit the kill left
    // out of the index are not).
    assert!(held || served > 0, "the read index answered for no run");
    // And the store takes the next commit.
    crash::takes_the_next_commit(&EmbeddedStore::open(dir.path()).expect("open"));
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
    let mut rng = crash::Rng::new();
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
