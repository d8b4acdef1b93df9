//! Racing commits through separate handles on one store directory.

use std::sync::{Arc, Barrier};

use waygate_core::event::EventKind;
use waygate_core::store::{EmbeddedStore, RunChange, Store, StoreError};

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
