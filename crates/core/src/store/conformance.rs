//! The conformance suite of the [`Store`] trait: one table of behaviours every implementation
//! must show, written once. The embedded and memory stores run it in this crate's tests; a
//! backend in another crate runs it with the `testing` feature of `waygate-core`:
//!
//! ```ignore
//! waygate_core::store::conformance::run_all("postgres", |check| check(&fresh_database()));
//! ```
//!
//! Each behaviour gets a fresh, empty store. A failure panics, naming the behaviour (printed
//! to stderr before it runs).
#![allow(clippy::unwrap_used)]

pub mod commit_rate;
pub mod crash;

use super::{EventFilter, RunChange, RunFilter, Store, StoreError, VerifyReport};
use crate::event::{Cause, Event, EventKind, NewEvent};
use crate::run::{Run, RunId, RunStatus};

/// Runs every behaviour of the suite, each on a fresh store: `with_fresh_store` makes one
/// (and whatever it needs, a directory, a database), hands it to the check it is given, and
/// cleans up after.
pub fn run_all(label: &str, mut with_fresh_store: impl FnMut(&mut dyn FnMut(&dyn Store))) {
    for (name, behaviour) in BEHAVIOURS {
        eprintln!("{label}: {name}");
        with_fresh_store(&mut |store| behaviour(store));
    }
}

/// A run `id` of `workflow` in `env`, in state `build`, not yet created.
pub fn run(id: &str, workflow: &str, env: &str) -> Run {
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

/// The `RunStarted` event of `run`.
pub fn started(run: &Run) -> NewEvent {
    NewEvent::new("ana", run.started())
}

/// A `Transitioned` event from `from` to `to`.
pub fn moved(from: &str, to: &str) -> NewEvent {
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

/// What a store written before every run held its (workflow, env) lock could hold: `r1` of
/// `web` in `prod` under the shared lock `shared` and `r2` of the same pair under none, both
/// unended (the lock was edited between their starts), with their `RunStarted` events sealed
/// in one chain. No store of today lets a second one in; tests write them past the checks.
pub fn two_active_runs_of_one_pair() -> (Vec<Run>, Vec<Event>) {
    let at = jiff::Timestamp::now();
    let mut prev = crate::event::GENESIS_HASH.to_owned();
    let (mut runs, mut events) = (Vec::new(), Vec::new());
    for (seq, (id, lock)) in [("r1", Some("shared")), ("r2", None)]
        .into_iter()
        .enumerate()
    {
        let mut run = run(id, "web", "prod");
        run.lock = lock.map(str::to_owned);
        super::stamp_new_run(&mut run, at);
        let sealed = super::seal_all(vec![started(&run)], &run.id, at, seq as u64 + 1, &prev);
        prev.clone_from(&sealed[0].hash);
        events.extend(sealed);
        runs.push(run);
    }
    (runs, events)
}

/// A `RunEnded` event.
pub fn ended(state: &str, status: RunStatus) -> NewEvent {
    NewEvent::new(
        "bob",
        EventKind::RunEnded {
            state: state.into(),
            status,
        },
    )
}

/// An `Approved` event.
pub fn approved() -> NewEvent {
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

/// Creates run `id` of workflow `web` in `env`.
pub fn create(store: &dyn Store, id: &str, env: &str) -> Run {
    let run = run(id, "web", env);
    let first = started(&run);
    store.create_run(run, vec![first]).expect("create").0
}

/// Moves `run`, just created in `build`, to `canary`.
pub fn to_canary(store: &dyn Store, run: &Run) -> (Run, Vec<Event>) {
    store
        .commit(
            &run.id,
            1,
            RunChange::to_state("canary"),
            vec![moved("build", "canary")],
        )
        .expect("commit")
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
            lock: None,
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
    let (moved_run, events) = to_canary(store, &run);
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
            outputs: Default::default(),
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
    // The boundary is the store's own stamp of the third event, so it holds whatever clock
    // the backend stamps by; the clock only has to tick past the second event's stamp first.
    let second = store.run_events(&b.id).expect("events")[0].at;
    while jiff::Timestamp::now() <= second {
        std::thread::yield_now();
    }
    let (_, third) = to_canary(store, &a);
    let middle = third[0].at;
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
            // `until` is inclusive: the instant before the third event's.
            until: Some(middle - jiff::SignedDuration::from_nanos(1)),
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
    to_canary(store, &run);
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

/// A run with the shared lock `lock` (`None`: none).
fn under(id: &str, workflow: &str, env: &str, lock: Option<&str>) -> Run {
    let mut r = run(id, workflow, env);
    r.lock = lock.map(str::to_owned);
    r
}

/// Creates `run`, which must be refused as busy with `holder`, naming `lock` as the one held.
fn refused(store: &dyn Store, run: Run, lock: Option<&str>, holder: &RunId) {
    let what = format!("{}/{} under {:?}", run.workflow, run.env, run.lock);
    let event = started(&run);
    match store.create_run(run, vec![event]) {
        Err(StoreError::EnvironmentBusy {
            lock: named,
            active,
            ..
        }) => assert_eq!((named.as_deref(), &active), (lock, holder), "{what}"),
        other => panic!("{what}: expected EnvironmentBusy, got {other:?}"),
    }
}

/// Creates `run`, which must be let in.
fn let_in(store: &dyn Store, run: Run) -> Run {
    let event = started(&run);
    store.create_run(run, vec![event]).expect("create").0
}

/// Ends `run` (at version 1), succeeded.
pub fn end(store: &dyn Store, run: &Run) {
    store
        .commit(
            &run.id,
            1,
            RunChange::status(RunStatus::Succeeded),
            vec![ended("build", RunStatus::Succeeded)],
        )
        .expect("end");
}

/// Runs whose environments name one shared lock exclude each other, across workflows and
/// environments, until the holder ends; a run without one keeps its (workflow, env) lock.
fn a_shared_lock_excludes_runs_of_every_workflow_naming_it(store: &dyn Store) {
    let lock = Some("chatbot-production");
    let holder = let_in(store, under("r1", "blue-green", "production", lock));
    assert_eq!(holder.lock_key(), "lock:chatbot-production");
    assert_eq!(
        store.load_run(&holder.id).expect("load").lock.as_deref(),
        Some("chatbot-production")
    );
    for (id, workflow, env) in [("r2", "hotfix", "prod"), ("r3", "blue-green", "production")] {
        refused(store, under(id, workflow, env, lock), lock, &holder.id);
    }
    // Another pair without the lock is free.
    let_in(store, run("r4", "hotfix", "staging"));
    // Ending the holder frees the shared lock.
    end(store, &holder);
    let_in(store, under("r5", "hotfix", "prod", lock));
}

/// A run holds its (workflow, env) lock whatever shared lock it names, so editing the
/// workflow's file to name a lock, rename it or drop it while a run is going never lets a
/// second run of the pair in; the refusal names the lock that is held. Ending the run frees
/// both of its locks.
fn a_run_holds_its_workflow_and_environment_lock_under_a_shared_lock_too(store: &dyn Store) {
    let (shared, renamed) = (Some("chatbot-production"), Some("chatbot-prod"));
    // Under a shared lock: the pair refuses a run naming another lock, or none.
    let holder = let_in(store, under("r1", "blue-green", "production", shared));
    refused(
        store,
        run("r2", "blue-green", "production"),
        None,
        &holder.id,
    );
    refused(
        store,
        under("r3", "blue-green", "production", renamed),
        None,
        &holder.id,
    );
    // And the reverse: without one, the pair refuses a run that names one now.
    let plain = let_in(store, run("r4", "api", "production"));
    refused(
        store,
        under("r5", "api", "production", renamed),
        None,
        &plain.id,
    );
    // The refusal did not take the lock it would have held: another workflow may.
    let other = let_in(store, under("r6", "hotfix", "production", renamed));
    // Ended, a run frees both of its locks, and only its own.
    end(store, &holder);
    let_in(store, run("r7", "blue-green", "production"));
    let_in(store, under("r8", "web", "production", shared));
    refused(
        store,
        under("r9", "api", "production", renamed),
        renamed,
        &other.id,
    );
    end(store, &plain);
    end(store, &other);
    let_in(store, under("r10", "api", "production", renamed));
}

/// One behaviour: checks a fresh store, panicking on a failure.
pub type Behaviour = fn(&dyn Store);

/// Every behaviour of the suite, by name.
pub const BEHAVIOURS: &[(&str, Behaviour)] = &[
    (
        "create_stamps_version_and_loads_back",
        create_stamps_version_and_loads_back,
    ),
    (
        "busy_environment_names_the_active_run",
        busy_environment_names_the_active_run,
    ),
    (
        "a_shared_lock_excludes_runs_of_every_workflow_naming_it",
        a_shared_lock_excludes_runs_of_every_workflow_naming_it,
    ),
    (
        "a_run_holds_its_workflow_and_environment_lock_under_a_shared_lock_too",
        a_run_holds_its_workflow_and_environment_lock_under_a_shared_lock_too,
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

/// Racers on separate handles (separate processes' worth: for a database, separate
/// connections): `open` gives a new handle on one and the same store, fresh and empty. Eight
/// handles race to create a run in one environment, naming no shared lock or one of two
/// (exactly one wins, the rest get `EnvironmentBusy` naming it), then eight race to commit that run at version 1 (exactly one
/// wins, the rest get `Conflict` naming version 2); the chain verifies.
pub fn racers_on_separate_handles(open: &(dyn Fn() -> Box<dyn Store> + Sync)) {
    const RACERS: usize = 8;
    let barrier = std::sync::Barrier::new(RACERS);
    let created: Vec<Result<Run, StoreError>> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let store = open();
                    // Under no shared lock, or one of two: all hold the pair's lock.
                    let lock = ["", "blue", "green"][i % 3];
                    let run = under(
                        &format!("r{i}"),
                        "web",
                        "prod",
                        Some(lock).filter(|l| !l.is_empty()),
                    );
                    let first = started(&run);
                    barrier.wait();
                    store.create_run(run, vec![first]).map(|(r, _)| r)
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let winners: Vec<&Run> = created.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{created:?}");
    let winner = winners[0].id.clone();
    for result in &created {
        match result {
            Ok(_) => {}
            Err(StoreError::EnvironmentBusy { active, .. }) => assert_eq!(*active, winner),
            Err(other) => panic!("expected EnvironmentBusy, got {other:?}"),
        }
    }
    let committed: Vec<Result<u64, StoreError>> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let (barrier, winner) = (&barrier, &winner);
                scope.spawn(move || {
                    let store = open();
                    let to = format!("s{i}");
                    barrier.wait();
                    store
                        .commit(
                            winner,
                            1,
                            RunChange::to_state(&to),
                            vec![moved("build", &to)],
                        )
                        .map(|(r, _)| r.version)
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(
        committed.iter().filter(|r| r.is_ok()).count(),
        1,
        "{committed:?}"
    );
    for result in &committed {
        match result {
            Ok(version) => assert_eq!(*version, 2),
            Err(StoreError::Conflict {
                expected: 1,
                actual: 2,
                ..
            }) => {}
            Err(other) => panic!("expected Conflict, got {other:?}"),
        }
    }
    let store = open();
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, 2);
}

/// `verify` catches an event altered behind the store's back: `alter_actor(seq)` changes the
/// actor of event `seq` of `store` without fixing its hash (a test hook, or `psql`). Verify
/// names event 2 and gives event 1 as the intact chain's head.
pub fn verify_names_an_altered_event(store: &dyn Store, alter_actor: &dyn Fn(u64)) {
    let run = create(store, "r1", "prod");
    store.append(&run.id, vec![approved()]).expect("append");
    store
        .commit(
            &run.id,
            1,
            RunChange::to_state("canary"),
            vec![moved("build", "canary")],
        )
        .expect("commit");
    assert!(store.verify().expect("verify").is_ok());
    alter_actor(2);
    let report = store.verify().expect("verify");
    let bad = report.first_bad.expect("a bad event");
    assert_eq!(bad.seq, 2, "{}", bad.problem);
    assert_eq!(report.head.map(|h| h.seq), Some(1));
}
