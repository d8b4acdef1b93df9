//! The embedded and memory stores run the [`conformance`] suite, and what only the embedded
//! store does (holding it open, replay for readers, clock jumps in a long journal).

use super::conformance::{self, approved, create, to_canary};
use super::*;
use crate::run::RunId;

#[test]
fn memory_store_behaves() {
    conformance::run_all("memory", |check| check(&MemoryStore::new()));
}

#[test]
fn embedded_store_behaves() {
    conformance::run_all("embedded", |check| {
        let dir = tempfile::tempdir().expect("tempdir");
        check(&EmbeddedStore::open(dir.path()).expect("open"));
    });
}

#[test]
fn embedded_store_behaves_when_held_open() {
    conformance::run_all("embedded, held", |check| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).expect("open");
        let _held = store.hold().expect("hold");
        check(&store);
    });
}

#[test]
fn memory_verify_names_a_tampered_event() {
    let store = MemoryStore::new();
    conformance::verify_names_an_altered_event(&store, &|seq| store.tamper_actor(seq, "mallory"));
}

#[test]
fn racers_on_separate_handles_have_one_winner() {
    let memory = std::sync::Arc::new(MemoryStore::new());
    conformance::racers_on_separate_handles(&|| {
        Box::new(std::sync::Arc::clone(&memory)) as Box<dyn Store>
    });
    let dir = tempfile::tempdir().expect("tempdir");
    conformance::racers_on_separate_handles(&|| {
        Box::new(EmbeddedStore::open(dir.path()).expect("open")) as Box<dyn Store>
    });
}

#[test]
fn stores_are_shareable_trait_objects() {
    fn shared(store: std::sync::Arc<dyn Store>) -> impl Send + Sync {
        store
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let stores: Vec<std::sync::Arc<dyn Store>> = vec![
        std::sync::Arc::new(MemoryStore::new()),
        std::sync::Arc::new(EmbeddedStore::open(dir.path()).expect("open")),
    ];
    for store in stores {
        let store = std::sync::Arc::clone(&store);
        let handle = std::thread::spawn(move || create(&*store, "r1", "prod").version);
        assert_eq!(handle.join().expect("thread"), 1);
    }
    let _ = shared(std::sync::Arc::new(MemoryStore::new()));
}

#[test]
fn conflicts_are_classified_for_exit_code_5() {
    let conflict = StoreError::Conflict {
        run: RunId::from("r"),
        expected: 1,
        actual: 2,
    };
    assert!(conflict.is_conflict());
    assert!(!StoreError::NotFound(RunId::from("r")).is_conflict());
}

#[test]
fn nested_holds_keep_the_store_open_until_the_last_drops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let fast = Options {
        lock_timeout: std::time::Duration::from_millis(50),
        ..Options::default()
    };
    let other = EmbeddedStore::open_with(dir.path(), fast).expect("open");
    let outer = store.hold().expect("hold");
    let inner = store.hold().expect("hold again");
    create(&store, "r1", "prod");
    drop(inner);
    assert!(matches!(
        other.load_run(&RunId::from("r1")),
        Err(StoreError::Locked { .. })
    ));
    drop(outer);
    assert_eq!(other.load_run(&RunId::from("r1")).expect("free").version, 1);
}

/// A clock the test sets, and the [`TimeSource`] a store reads it through.
fn settable_clock(
    at: jiff::Timestamp,
) -> (
    std::sync::Arc<std::sync::Mutex<jiff::Timestamp>>,
    TimeSource,
) {
    let clock = std::sync::Arc::new(std::sync::Mutex::new(at));
    let read = clock.clone();
    let source: TimeSource = std::sync::Arc::new(move || *read.lock().expect("clock"));
    (clock, source)
}

fn set(clock: &std::sync::Mutex<jiff::Timestamp>, at: jiff::Timestamp) {
    *clock.lock().expect("clock") = at;
}

fn secs(n: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_secs(n)
}

const YEAR: i64 = 365 * 86_400;

/// The seqs of the events stamped from `since` to `until` seconds after `t0` (either end
/// open when `None`).
fn seqs_between(
    store: &dyn Store,
    t0: jiff::Timestamp,
    since: Option<i64>,
    until: Option<i64>,
) -> Vec<u64> {
    let filter = EventFilter {
        since: since.map(|s| t0 + secs(s)),
        until: until.map(|s| t0 + secs(s)),
        ..Default::default()
    };
    let events = store.scan_events(&filter).expect("scan");
    events.iter().map(|e| e.seq).collect()
}

/// One writer's clock runs a year ahead: its own events carry its time, and the writers after
/// it stamp theirs, not its (a state entered after it used to wait a year for a 15 s bake).
fn one_writers_clock_a_year_ahead_does_not_move_later_writers_times(
    store: &dyn Store,
    clock: &std::sync::Mutex<jiff::Timestamp>,
    t0: jiff::Timestamp,
) {
    let run = create(store, "r1", "prod");
    set(clock, t0 + secs(YEAR));
    store.append(&run.id, vec![approved()]).expect("ahead");
    set(clock, t0 + secs(60));
    let (moved_run, events) = to_canary(store, &run);
    assert_eq!(events[0].at, t0 + secs(60));
    assert_eq!(moved_run.state_entered_at, t0 + secs(60));
    let times: Vec<jiff::Timestamp> = store
        .run_events(&run.id)
        .expect("events")
        .iter()
        .map(|e| e.at)
        .collect();
    assert_eq!(times, [t0, t0 + secs(YEAR), t0 + secs(60)]);
    let seqs = |since, until| seqs_between(store, t0, since, until);
    assert_eq!(seqs(Some(30), None), [2, 3]);
    assert_eq!(seqs(None, Some(30)), [1]);
    assert_eq!(seqs(None, Some(120)), [1, 3]);
    assert_eq!(seqs(Some(YEAR - 1), None), [2]);
    assert_eq!(seqs(Some(30), Some(120)), [3]);
    assert!(store.verify().expect("verify").is_ok());
}

#[test]
fn one_writers_clock_a_year_ahead_stays_its_own_in_every_store() {
    let t0: jiff::Timestamp = "2026-06-01T10:00:00Z".parse().expect("time");
    let (clock, source) = settable_clock(t0);
    let memory = MemoryStore::with_clock(source);
    one_writers_clock_a_year_ahead_does_not_move_later_writers_times(&memory, &clock, t0);

    let dir = tempfile::tempdir().expect("tempdir");
    let (clock, source) = settable_clock(t0);
    let embedded = EmbeddedStore::open(dir.path())
        .expect("open")
        .with_clock(source);
    one_writers_clock_a_year_ahead_does_not_move_later_writers_times(&embedded, &clock, t0);
}

/// Time queries stay exact across a clock jump in a store long enough for its sparse time
/// index to matter, and answer the same after the state is rebuilt from the journal.
#[test]
fn time_queries_are_exact_across_a_clock_jump_in_a_long_journal() {
    let t0: jiff::Timestamp = "2026-06-01T10:00:00Z".parse().expect("time");
    let dir = tempfile::tempdir().expect("tempdir");
    let (clock, source) = settable_clock(t0);
    let store = EmbeddedStore::open(dir.path())
        .expect("open")
        .with_clock(source.clone());
    {
        let _held = store.hold().expect("hold");
        let run = create(&store, "r1", "prod");
        for i in 1..600 {
            // Event 101 comes from a clock a year ahead; the rest a second apart.
            set(&clock, t0 + secs(if i == 100 { YEAR } else { i }));
            store.append(&run.id, vec![approved()]).expect("append");
        }
    }
    let check = |store: &EmbeddedStore| {
        let seqs = |since, until| seqs_between(store, t0, since, until);
        assert_eq!(seqs(Some(200 * 86_400), None), [101]);
        let early: Vec<u64> = (1..=301).filter(|&s| s != 101).collect();
        assert_eq!(seqs(None, Some(300)), early);
        let late: Vec<u64> = std::iter::once(101).chain(550..=600).collect();
        assert_eq!(seqs(Some(549), None), late);
        assert_eq!(
            seqs(Some(549), Some(560)),
            (550..=561).collect::<Vec<u64>>()
        );
    };
    check(&store);
    drop(store);
    std::fs::remove_dir_all(dir.path().join("state")).expect("delete the state");
    let rebuilt = EmbeddedStore::open(dir.path())
        .expect("reopen")
        .with_clock(source);
    check(&rebuilt);
}
