//! Racing commits through separate handles on one store directory.

use std::sync::{Arc, Barrier};

use waygate_core::event::EventKind;
use waygate_core::run::{RunId, RunStatus};
use waygate_core::store::{Commit, EmbeddedStore, RunChange, Store, StoreError, Write};

use crate::common::{moved, new_run};

#[test]
fn racing_commits_at_one_version_one_wins_the_rest_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let (run, started) = new_run("r1", "prod");
    let run = store.create_run(run, vec![started]).expect("create").0;
    let racers = 8;
    let barrier = Arc::new(Barrier::new(racers));
    let handles: Vec<_> = (0..racers)
        .map(|i| {
            let dir = dir.path().to_owned();
            let barrier = Arc::clone(&barrier);
            let id = run.id.clone();
            std::thread::spawn(move || {
                let store = EmbeddedStore::open(&dir).expect("open");
                barrier.wait();
                let to = format!("s{i}");
                store.commit(&id, 1, RunChange::to_state(&to), vec![moved("build", &to)])
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let wins = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(StoreError::Conflict {
                    expected: 1,
                    actual: 2,
                    ..
                })
            )
        })
        .count();
    assert_eq!((wins, conflicts), (1, racers - 1), "{results:?}");
    let events = store.run_events(&run.id).expect("events");
    let moves = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Transitioned { .. }))
        .count();
    assert_eq!(moves, 1);
    assert_eq!(store.load_run(&run.id).expect("load").version, 2);
    assert!(store.verify().expect("verify").is_ok());
}

const RACE_ENV: &str = "WAYGATE_RACE_CHILD_DIR";
const RACE_START_ENV: &str = "WAYGATE_RACE_START_MS";

/// A racer process: waits for the agreed start time, commits run r1 at version 1 once, and
/// prints `won` or `conflict`.
#[test]
#[ignore = "run by racing_processes_one_wins_the_rest_conflict as its child"]
fn child_commits_once() {
    let Ok(dir) = std::env::var(RACE_ENV) else {
        return;
    };
    let start: u128 = std::env::var(RACE_START_ENV)
        .expect("start")
        .parse()
        .expect("ms");
    let store = EmbeddedStore::open(&dir).expect("open");
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    };
    while now() < start {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let to = format!("p{}", std::process::id());
    match store.commit(
        &"r1".into(),
        1,
        RunChange::to_state(&to),
        vec![moved("build", &to)],
    ) {
        Ok(_) => println!("won"),
        Err(e) if e.is_conflict() => println!("conflict"),
        Err(e) => println!("error {e}"),
    }
}

#[test]
fn racing_processes_one_wins_the_rest_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let (run, started) = new_run("r1", "prod");
    store.create_run(run, vec![started]).expect("create");
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        + 500;
    let exe = std::env::current_exe().expect("current_exe");
    let children: Vec<_> = (0..6)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "concurrency::child_commits_once",
                    "--ignored",
                    "--nocapture",
                ])
                .env(RACE_ENV, dir.path())
                .env(RACE_START_ENV, start.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut outcomes: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let line = text.lines().find(|l| {
                ["won", "conflict", "error"]
                    .iter()
                    .any(|w| l.starts_with(w))
            });
            line.unwrap_or("no result").to_owned()
        })
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        ["conflict", "conflict", "conflict", "conflict", "conflict", "won"]
    );
    let events = store.run_events(&"r1".into()).expect("events");
    let moves = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Transitioned { .. }))
        .count();
    assert_eq!(moves, 1);
}

/// Sixteen threads on one handle (the server mode): each advances its own run, and four more
/// race on one shared run, retrying on conflict. Their writes go through group commits.
fn threads_on_one_handle(hold: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(EmbeddedStore::open(dir.path()).expect("open"));
    let held = hold.then(|| store.hold().expect("hold"));
    let owners = 16;
    let steps = 20u64;
    let mut ids = Vec::new();
    for i in 0..=owners {
        let (run, started) = new_run(&format!("r{i:02}"), &format!("env{i}"));
        ids.push(store.create_run(run, vec![started]).expect("create").0.id);
    }
    let shared = ids[owners].clone();
    let racers = 4;
    let wins_each = 10;
    let barrier = Arc::new(Barrier::new(owners + racers));
    std::thread::scope(|scope| {
        for id in &ids[..owners] {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            scope.spawn(move || {
                barrier.wait();
                for v in 1..=steps {
                    let to = format!("s{v}");
                    let (run, events) = store
                        .commit(id, v, RunChange::to_state(&to), vec![moved("x", &to)])
                        .expect("an uncontended commit succeeds");
                    assert_eq!((run.version, run.state.as_str()), (v + 1, to.as_str()));
                    assert_eq!(events.len(), 1);
                }
            });
        }
        for r in 0..racers {
            let (store, barrier, shared) =
                (Arc::clone(&store), Arc::clone(&barrier), shared.clone());
            scope.spawn(move || {
                barrier.wait();
                let mut wins = 0;
                while wins < wins_each {
                    let version = store.load_run(&shared).expect("load").version;
                    let to = format!("racer{r}-{wins}");
                    match store.commit(
                        &shared,
                        version,
                        RunChange::to_state(&to),
                        vec![moved("x", &to)],
                    ) {
                        Ok((run, _)) => {
                            assert_eq!(run.version, version + 1);
                            wins += 1;
                        }
                        Err(StoreError::Conflict {
                            expected, actual, ..
                        }) => {
                            assert_eq!(expected, version);
                            assert!(actual > version, "{actual} > {version}");
                        }
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
            });
        }
    });
    drop(held);
    for id in &ids[..owners] {
        let (run, events) = store.load_run_with_events(id).expect("load");
        assert_eq!(run.version, steps + 1);
        assert_eq!(events.len() as u64, steps + 1);
        for (v, event) in events.iter().skip(1).enumerate() {
            let want = format!("s{}", v + 1);
            assert!(
                matches!(&event.kind, EventKind::Transitioned { to, .. } if *to == want),
                "{event:?}"
            );
        }
    }
    let shared_run = store.load_run(&shared).expect("shared");
    assert_eq!(shared_run.version, 1 + (racers * wins_each) as u64);
    assert_eq!(
        store.run_events(&shared).expect("events").len(),
        1 + racers * wins_each
    );
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
    let total = (owners + 1) as u64 + owners as u64 * steps + (racers * wins_each) as u64;
    assert_eq!(report.events, total);
    // Another handle (as another process would) sees the same, and so does a rebuild.
    let before = crate::common::snapshot(store.as_ref());
    drop(store);
    let other = EmbeddedStore::open(dir.path()).expect("reopen");
    assert_eq!(crate::common::snapshot(&other), before);
    drop(other);
    std::fs::remove_dir_all(dir.path().join("state")).expect("delete state");
    let rebuilt = EmbeddedStore::open(dir.path()).expect("reopen");
    assert_eq!(crate::common::snapshot(&rebuilt), before);
}

#[test]
fn threads_on_one_held_handle_all_land_with_their_versions() {
    threads_on_one_handle(true);
}

#[test]
fn threads_on_one_unheld_handle_all_land_with_their_versions() {
    threads_on_one_handle(false);
}

/// One group with writes that fail for different reasons: each fails alone, the others land.
#[test]
fn a_group_commit_checks_each_write_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let (r1, s1) = new_run("r1", "prod");
    let (r2, s2) = new_run("r2", "staging");
    store.create_run(r1, vec![s1]).expect("r1");
    store.create_run(r2, vec![s2]).expect("r2");
    let (busy, busy_started) = new_run("r3", "prod");
    let (fresh, fresh_started) = new_run("r4", "dev");
    let commit = |id: &str, expected, to: &str| {
        Write::Commit(Commit {
            id: RunId::from(id),
            expected,
            change: RunChange::to_state(to),
            events: vec![moved("build", to)],
        })
    };
    let results = store.write_all(vec![
        commit("r1", 1, "canary"),
        // r1 moved to version 2 in this very group.
        commit("r1", 1, "other"),
        commit("r2", 1, "canary"),
        Write::Create {
            run: Box::new(busy),
            events: vec![busy_started],
        },
        Write::Append {
            id: RunId::from("nope"),
            events: vec![moved("a", "b")],
        },
        Write::Commit(Commit {
            id: RunId::from("r2"),
            expected: 2,
            change: RunChange::status(RunStatus::Succeeded),
            events: vec![],
        }),
        // Ends r2 at version 2 (after the commit above in the group), freeing staging.
        Write::Commit(Commit {
            id: RunId::from("r2"),
            expected: 2,
            change: RunChange::status(RunStatus::Succeeded),
            events: vec![moved("canary", "done")],
        }),
        Write::Create {
            run: Box::new(fresh),
            events: vec![fresh_started],
        },
    ]);
    let kinds: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok((run, _)) => format!("ok v{}", run.as_ref().map_or(0, |r| r.version)),
            Err(StoreError::Conflict {
                expected, actual, ..
            }) => format!("conflict {expected}->{actual}"),
            Err(StoreError::EnvironmentBusy { active, .. }) => format!("busy {active}"),
            Err(StoreError::NotFound(id)) => format!("not found {id}"),
            Err(StoreError::Invalid(_)) => "invalid".to_owned(),
            Err(e) => format!("other {e}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ok v2",
            "conflict 1->2",
            "ok v2",
            "busy r1",
            "not found nope",
            "invalid",
            "ok v3",
            "ok v1"
        ]
    );
    assert_eq!(
        store.load_run(&RunId::from("r1")).expect("r1").state,
        "canary"
    );
    let r2 = store.load_run(&RunId::from("r2")).expect("r2");
    assert_eq!((r2.version, r2.status), (3, RunStatus::Succeeded));
    assert!(store.load_run(&RunId::from("r3")).is_err());
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
    // 2 starts + 3 moves + 1 start.
    assert_eq!(report.events, 6);
    // staging is free again: a new run can start there.
    let (r5, s5) = new_run("r5", "staging");
    store.create_run(r5, vec![s5]).expect("staging was freed");
}
