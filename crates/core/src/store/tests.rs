//! One table of behaviours every [`Store`] must show, run against each implementation.

use super::*;
use crate::event::{Cause, EventKind, NewEvent};
use crate::run::{Run, RunId, RunStatus};

pub(crate) fn run(id: &str, workflow: &str, env: &str) -> Run {
    let mut run = Run::new(
        RunId::from(id),
        workflow,
        env,
        "build",
        "ana",
        "deploy.ron",
        "(..)",
    );
    run.vars.insert("region".into(), "eu-west-1".into());
    run
}

pub(crate) fn started(run: &Run) -> NewEvent {
    NewEvent::new(
        "ana",
        EventKind::RunStarted {
            workflow: run.workflow.clone(),
            env: run.env.clone(),
            state: run.state.clone(),
            file: run.file.clone(),
            definition_hash: run.definition_hash.clone(),
            vars: run.vars.clone(),
            workdir: None,
            file_path: None,
        },
    )
}

pub(crate) fn moved(from: &str, to: &str) -> NewEvent {
    NewEvent::new(
        "bob",
        EventKind::Transitioned {
            from: from.into(),
            to: to.into(),
            cause: Cause::Advance,
            reason: None,
        },
    )
}

fn ended(state: &str, status: RunStatus) -> NewEvent {
    NewEvent::new(
        "bob",
        EventKind::RunEnded {
            state: state.into(),
            status,
        },
    )
}

fn approved() -> NewEvent {
    NewEvent::new(
        "cy",
        EventKind::Approved {
            state: "build".into(),
            guard: "qa".into(),
            comment: Some("ok".into()),
            accepted: true,
            reason: None,
            visit: None,
        },
    )
}

pub(crate) fn create(store: &dyn Store, id: &str, env: &str) -> Run {
    let run = run(id, "web", env);
    let first = started(&run);
    store.create_run(run, vec![first]).expect("create").0
}

fn create_stamps_version_and_loads_back(store: &dyn Store) {
    let run = create(store, "r1", "prod");
    assert_eq!(run.version, 1);
    assert_eq!(run.status, RunStatus::Active);
    assert_eq!(store.load_run(&run.id).expect("load"), run);
    let events = store.run_events(&run.id).expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].seq, events[0].kind_name()), (1, "RunStarted"));
    assert!(matches!(
        store.load_run(&RunId::from("nope")),
        Err(StoreError::NotFound(_))
    ));
    let dup = self::run("r1", "web", "other");
    let first = started(&dup);
    assert!(matches!(
        store.create_run(dup, vec![first]),
        Err(StoreError::DuplicateRun(_))
    ));
}

fn busy_environment_names_the_active_run(store: &dyn Store) {
    create(store, "r1", "prod");
    let second = run("r2", "web", "prod");
    let first = started(&second);
    match store.create_run(second, vec![first]) {
        Err(StoreError::EnvironmentBusy {
            workflow,
            env,
            active,
        }) => {
            assert_eq!(
                (workflow.as_str(), env.as_str(), active.as_str()),
                ("web", "prod", "r1")
            );
        }
        other => panic!("expected EnvironmentBusy, got {other:?}"),
    }
    // Another environment, or another workflow in the same environment, is free.
    create(store, "r3", "staging");
    let other = run("r4", "api", "prod");
    let first = started(&other);
    store
        .create_run(other, vec![first])
        .expect("other workflow");
}

fn commit_moves_and_conflicts_on_a_stale_version(store: &dyn Store) {
    let run = create(store, "r1", "prod");
    let (moved_run, events) = store
        .commit(
            &run.id,
            1,
            RunChange::to_state("canary"),
            vec![moved("build", "canary")],
        )
        .expect("commit");
    assert_eq!((moved_run.version, moved_run.state.as_str()), (2, "canary"));
    assert!(moved_run.state_entered_at >= run.state_entered_at);
    assert_eq!(events[0].seq, 2);
    assert_eq!(
        events[0].prev_hash,
        store.run_events(&run.id).expect("events")[0].hash
    );
    match store.commit(
        &run.id,
        1,
        RunChange::to_state("prod"),
        vec![moved("build", "prod")],
    ) {
        Err(StoreError::Conflict {
            expected: 1,
            actual: 2,
            ..
        }) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.load_run(&run.id).expect("load").state, "canary");
    assert_eq!(store.run_events(&run.id).expect("events").len(), 2);
    let empty = store.commit(&run.id, 2, RunChange::to_state("x"), vec![]);
    assert!(matches!(empty, Err(StoreError::Invalid(_))));
}

fn append_records_without_moving(store: &dyn Store) {
    let run = create(store, "r1", "prod");
    let events = store
        .append(&run.id, vec![approved(), approved()])
        .expect("append");
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(store.load_run(&run.id).expect("load").version, 1);
    assert!(matches!(
        store.append(&RunId::from("nope"), vec![approved()]),
        Err(StoreError::NotFound(_))
    ));
}

fn ending_a_run_frees_its_environment(store: &dyn Store) {
    let run = create(store, "r1", "prod");
    let change = RunChange::to_state("done").with_status(RunStatus::Succeeded);
    let (done, _) = store
        .commit(
            &run.id,
            1,
            change,
            vec![moved("build", "done"), ended("done", RunStatus::Succeeded)],
        )
        .expect("end");
    assert!(done.ended_at.is_some());
    create(store, "r2", "prod");
    let again = store.commit(
        &run.id,
        2,
        RunChange::status(RunStatus::Failed),
        vec![moved("a", "b")],
    );
    assert!(matches!(again, Err(StoreError::RunEnded { .. })));
    // Nor does it take events that do not move it: an ended run's history is closed.
    let late = store.append(&run.id, vec![approved()]);
    assert!(matches!(late, Err(StoreError::RunEnded { .. })), "{late:?}");
    // Except the end of an action that was running when the run ended.
    let finished = NewEvent::new(
        "ci",
        EventKind::ActionFinished {
            state: "done".into(),
            index: 0,
            ok: true,
            detail: "exit status 0".into(),
            evidence: None,
            duration_ms: 5,
        },
    );
    store
        .append(&run.id, vec![finished])
        .expect("an action's end");
    assert_eq!(store.run_events(&run.id).expect("events").len(), 4);
}

fn run_filters_select(store: &dyn Store) {
    let a = create(store, "r1", "prod");
    create(store, "r2", "staging");
    // Started later but sorting first by id: runs come in creation order, not id order.
    create(store, "r0", "qa");
    store
        .commit(
            &a.id,
            1,
            RunChange::status(RunStatus::Aborted),
            vec![moved("build", "build")],
        )
        .expect("abort");
    let ids = |filter: RunFilter| -> Vec<String> {
        store
            .list_runs(&filter)
            .expect("list")
            .into_iter()
            .map(|r| r.id.0)
            .collect()
    };
    assert_eq!(ids(RunFilter::default()), ["r1", "r2", "r0"]);
    assert_eq!(
        ids(RunFilter {
            env: Some("staging".into()),
            ..Default::default()
        }),
        ["r2"]
    );
    let aborted = RunFilter {
        status: Some(RunStatus::Aborted),
        ..Default::default()
    };
    assert_eq!(ids(aborted), ["r1"]);
    assert!(ids(RunFilter {
        workflow: Some("api".into()),
        ..Default::default()
    })
    .is_empty());
}

fn scan_filters_by_time_run_actor_and_kind(store: &dyn Store) {
    let a = create(store, "r1", "prod");
    let b = create(store, "r2", "staging");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let middle = jiff::Timestamp::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    store
        .commit(
            &a.id,
            1,
            RunChange::to_state("canary"),
            vec![moved("build", "canary")],
        )
        .expect("a");
    store.append(&b.id, vec![approved()]).expect("b");
    let seqs = |filter: EventFilter| -> Vec<u64> {
        store
            .scan_events(&filter)
            .expect("scan")
            .into_iter()
            .map(|e| e.seq)
            .collect()
    };
    assert_eq!(seqs(EventFilter::default()), [1, 2, 3, 4]);
    assert_eq!(
        seqs(EventFilter {
            since: Some(middle),
            ..Default::default()
        }),
        [3, 4]
    );
    assert_eq!(
        seqs(EventFilter {
            until: Some(middle),
            ..Default::default()
        }),
        [1, 2]
    );
    assert_eq!(
        seqs(EventFilter {
            run: Some(a.id.clone()),
            ..Default::default()
        }),
        [1, 3]
    );
    assert_eq!(
        seqs(EventFilter {
            env: Some("staging".into()),
            ..Default::default()
        }),
        [2, 4]
    );
    assert_eq!(
        seqs(EventFilter {
            actor: Some("cy".into()),
            ..Default::default()
        }),
        [4]
    );
    let kind = EventFilter {
        kind: Some("Transitioned".into()),
        ..Default::default()
    };
    assert_eq!(seqs(kind), [3]);
    let none = EventFilter {
        workflow: Some("api".into()),
        ..Default::default()
    };
    assert!(seqs(none).is_empty());
}

fn verify_passes_on_a_clean_store(store: &dyn Store) {
    let empty = store.verify().expect("verify");
    assert_eq!((empty.events, empty.is_ok()), (0, true));
    let run = create(store, "r1", "prod");
    store.append(&run.id, vec![approved()]).expect("append");
    store
        .commit(
            &run.id,
            1,
            RunChange::to_state("canary"),
            vec![moved("build", "canary")],
        )
        .expect("c");
    let report = store.verify().expect("verify");
    assert_eq!(
        report,
        VerifyReport {
            events: 3,
            head: report.head.clone(),
            ..VerifyReport::default()
        }
    );
    let head = report.head.expect("a head");
    assert_eq!(head.seq, 3);
    let reach = |hash: &str| store.verify_reaching(hash).expect("verify").reached;
    assert_eq!(reach(&head.hash), Some(3));
    let first = store.run_events(&run.id).expect("events")[0].hash.clone();
    assert_eq!(reach(&first), Some(1));
    assert_eq!(reach(&"ab".repeat(32)), None);
}

type Behaviour = fn(&dyn Store);

const BEHAVIOURS: &[(&str, Behaviour)] = &[
    (
        "create_stamps_version_and_loads_back",
        create_stamps_version_and_loads_back,
    ),
    (
        "busy_environment_names_the_active_run",
        busy_environment_names_the_active_run,
    ),
    (
        "commit_moves_and_conflicts_on_a_stale_version",
        commit_moves_and_conflicts_on_a_stale_version,
    ),
    (
        "append_records_without_moving",
        append_records_without_moving,
    ),
    (
        "ending_a_run_frees_its_environment",
        ending_a_run_frees_its_environment,
    ),
    ("run_filters_select", run_filters_select),
    (
        "scan_filters_by_time_run_actor_and_kind",
        scan_filters_by_time_run_actor_and_kind,
    ),
    (
        "verify_passes_on_a_clean_store",
        verify_passes_on_a_clean_store,
    ),
];

#[test]
fn memory_store_behaves() {
    for (name, behaviour) in BEHAVIOURS {
        eprintln!("memory: {name}");
        behaviour(&MemoryStore::new());
    }
}

#[test]
fn embedded_store_behaves() {
    for (name, behaviour) in BEHAVIOURS {
        eprintln!("embedded: {name}");
        let dir = tempfile::tempdir().expect("tempdir");
        behaviour(&EmbeddedStore::open(dir.path()).expect("open"));
    }
}

#[test]
fn embedded_store_behaves_when_held_open() {
    for (name, behaviour) in BEHAVIOURS {
        eprintln!("embedded, held: {name}");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).expect("open");
        let _held = store.hold().expect("hold");
        behaviour(&store);
    }
}

#[test]
fn memory_verify_names_a_tampered_event() {
    let store = MemoryStore::new();
    let run = create(&store, "r1", "prod");
    store
        .append(&run.id, vec![approved(), approved()])
        .expect("append");
    store.tamper_actor(2, "mallory");
    let bad = store.verify().expect("verify").first_bad.expect("bad");
    assert_eq!(bad.seq, 2);
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

/// A reader without write access reads the journal replayed into memory: it must answer
/// exactly what the store answers through sled, and leave an unfinished write out.
#[test]
fn the_journal_replayed_for_a_read_only_reader_answers_as_the_store_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let a = create(&store, "r1", "prod");
    create(&store, "r2", "staging");
    store.append(&a.id, vec![approved()]).expect("append");
    store
        .commit(
            &a.id,
            1,
            RunChange::to_state("canary").with_status(RunStatus::Succeeded),
            vec![moved("build", "canary")],
        )
        .expect("commit");
    // A write that never finished: a record without its end mark after the last commit.
    let segment = dir.path().join("journal/00000001.seg");
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2, 3, 4, b'{']);
    std::fs::write(&segment, bytes).expect("write");
    let replayed = super::replay::replay(dir.path(), &Options::default()).expect("replay");
    let everything = EventFilter::default();
    assert_eq!(
        replayed.scan_events(&everything).expect("scan"),
        store.scan_events(&everything).expect("scan")
    );
    assert_eq!(
        replayed.list_runs(&RunFilter::default()).expect("list"),
        store.list_runs(&RunFilter::default()).expect("list")
    );
    assert_eq!(
        replayed.load_run_with_events(&a.id).expect("load"),
        store.load_run_with_events(&a.id).expect("load")
    );
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
    let (moved_run, events) = store
        .commit(
            &run.id,
            1,
            RunChange::to_state("canary"),
            vec![moved("build", "canary")],
        )
        .expect("commit");
    assert_eq!(events[0].at, t0 + secs(60));
    assert_eq!(moved_run.state_entered_at, t0 + secs(60));
    let times: Vec<jiff::Timestamp> = store
        .run_events(&run.id)
        .expect("events")
        .iter()
        .map(|e| e.at)
        .collect();
    assert_eq!(times, [t0, t0 + secs(YEAR), t0 + secs(60)]);
    let seqs = |since: Option<i64>, until: Option<i64>| -> Vec<u64> {
        let filter = EventFilter {
            since: since.map(|s| t0 + secs(s)),
            until: until.map(|s| t0 + secs(s)),
            ..Default::default()
        };
        let events = store.scan_events(&filter).expect("scan");
        events.iter().map(|e| e.seq).collect()
    };
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
        let seqs = |since: Option<i64>, until: Option<i64>| -> Vec<u64> {
            let filter = EventFilter {
                since: since.map(|s| t0 + secs(s)),
                until: until.map(|s| t0 + secs(s)),
                ..Default::default()
            };
            let events = store.scan_events(&filter).expect("scan");
            events.iter().map(|e| e.seq).collect()
        };
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
