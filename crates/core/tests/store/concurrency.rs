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
