//! sled's key layout: a long run's event list in chunks, and state of an older layout.

use waygate_core::run::RunId;
use waygate_core::store::{EmbeddedStore, Store, StoreError};

use crate::common::{action, new_run, snapshot};

/// 700 events in one run: three chunks of positions, written across commits of different
/// sizes, read back in order through a held session, a fresh handle and a rebuild.
#[test]
fn a_long_run_reads_back_in_order_across_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let (run, started) = new_run("long", "prod");
    let id = store.create_run(run, vec![started]).expect("create").0.id;
    let mut sizes = [1usize, 3, 250, 7, 255, 1, 182].into_iter().cycle();
    let mut total = 1;
    {
        let _held = store.hold().expect("hold");
        while total < 700 {
            let n = sizes.next().unwrap_or(1).min(700 - total);
            store
                .append(&id, (0..n).map(|_| action("build")).collect())
                .expect("append");
            total += n;
        }
        let events = store.run_events(&id).expect("events");
        assert_eq!(events.len(), 700);
    }
    let events = store.run_events(&id).expect("events");
    assert_eq!(events.len(), 700);
    assert!(events.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    let before = snapshot(&store);
    drop(store);
    std::fs::remove_dir_all(dir.path().join("state")).expect("delete state");
    let rebuilt = EmbeddedStore::open(dir.path()).expect("reopen");
    assert_eq!(snapshot(&rebuilt), before);
}

/// State written by a layout this code does not use (`m:applied` without the layout field, as
/// layout 1 wrote it, or naming layout 2, definitions inside run records) is rebuilt from the
/// journal, not misread.
#[test]
fn state_of_an_older_layout_is_rebuilt() {
    for old in [None, Some(2)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::common::populated(dir.path());
        let before = snapshot(&store);
        drop(store);
        {
            let db = sled::open(dir.path().join("state")).expect("sled");
            let applied = db.get(b"m:applied").expect("get").expect("applied");
            let mut value: serde_json::Value = serde_json::from_slice(&applied).expect("json");
            let object = value.as_object_mut().expect("object");
            match old {
                None => object.remove("layout"),
                Some(n) => object.insert("layout".into(), n.into()),
            };
            db.insert(b"m:applied", serde_json::to_vec(&value).expect("json"))
                .expect("insert");
            // What this layout reads and the old one would not have written.
            db.remove(b"e:r1\0\0\0\0\0").expect("remove");
            db.remove(b"d:r1").expect("remove");
            db.flush().expect("flush");
        }
        let store = EmbeddedStore::open(dir.path()).expect("reopen");
        assert_eq!(snapshot(&store), before, "{old:?}");
        assert_eq!(
            store.run_events(&RunId::from("r1")).expect("events").len(),
            3
        );
    }
}

/// State of layout 3 holds a run under a shared lock under `a:lock:NAME` alone. Rebuilt from
/// the journal, the run holds its (workflow, env) lock too: a second run of the pair, whose
/// file no longer names the lock, is refused naming it, and ending it frees both.
#[test]
fn a_run_under_a_shared_lock_in_state_of_layout_3_holds_its_pair_after_the_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let (mut run, started) = new_run("r1", "prod");
    run.lock = Some("shared".into());
    let holder = store.create_run(run, vec![started]).expect("create").0;
    drop(store);
    {
        let db = sled::open(dir.path().join("state")).expect("sled");
        let applied = db.get(b"m:applied").expect("get").expect("applied");
        let mut value: serde_json::Value = serde_json::from_slice(&applied).expect("json");
        value["layout"] = 3.into();
        db.insert(b"m:applied", serde_json::to_vec(&value).expect("json"))
            .expect("insert");
        // As layout 3 wrote it: the shared lock's holder only.
        assert!(db.remove(b"a:web\0prod").expect("remove").is_some());
        assert!(db.get(b"a:lock:shared").expect("get").is_some());
        db.flush().expect("flush");
    }
    let store = EmbeddedStore::open(dir.path()).expect("reopen");
    let (second, started) = new_run("r2", "prod");
    match store.create_run(second.clone(), vec![started.clone()]) {
        Err(StoreError::EnvironmentBusy { lock, active, .. }) => {
            assert_eq!((lock, active), (None, holder.id.clone()));
        }
        other => panic!("expected EnvironmentBusy, got {other:?}"),
    }
    waygate_core::store::conformance::end(&store, &holder);
    store.create_run(second, vec![started]).expect("free again");
}

/// A journal as a waygate before layout 4 could write it: two unended runs of one pair
/// (`conformance::two_active_runs_of_one_pair`), each created by a commit of one record.
fn journal_with_two_active_runs_of_one_pair(dir: &std::path::Path) {
    let mut bytes = Vec::new();
    let (runs, events) = waygate_core::store::conformance::two_active_runs_of_one_pair();
    for (run, event) in runs.into_iter().zip(events) {
        let record = serde_json::json!({ "event": event, "run": { "created": run }, "end": true });
        let payload = serde_json::to_vec(&record).expect("json");
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
    }
    std::fs::create_dir_all(dir.join("journal")).expect("journal dir");
    std::fs::write(dir.join("FORMAT"), "waygate-store 1\n").expect("FORMAT");
    std::fs::write(dir.join("journal").join("00000001.seg"), bytes).expect("segment");
}

/// Two unended runs of one (workflow, env) from a journal written before layout 4 both hold
/// the pair once rebuilt: whichever ends first, the pair stays held until the other has
/// ended too (the first to end freed it while the other was going, and a third run got in).
#[test]
fn two_active_runs_of_one_pair_from_an_older_journal_hold_it_until_both_have_ended() {
    for first in ["r1", "r2"] {
        let dir = tempfile::tempdir().expect("tempdir");
        journal_with_two_active_runs_of_one_pair(dir.path());
        let store = EmbeddedStore::open(dir.path()).expect("open");
        assert!(store.verify().expect("verify").is_ok());
        let (third, started) = new_run("r3", "prod");
        let end = |store: &EmbeddedStore, id: &str| {
            let run = store.load_run(&RunId::from(id)).expect("load");
            waygate_core::store::conformance::end(store, &run);
        };
        let refused =
            |store: &EmbeddedStore| match store.create_run(third.clone(), vec![started.clone()]) {
                Err(StoreError::EnvironmentBusy { .. }) => {}
                other => panic!("{first} ended first: expected EnvironmentBusy, got {other:?}"),
            };
        refused(&store);
        end(&store, first);
        refused(&store);
        // Through sled too, not only the session's overlay.
        drop(store);
        let store = EmbeddedStore::open(dir.path()).expect("reopen");
        refused(&store);
        let other = if first == "r1" { "r2" } else { "r1" };
        end(&store, other);
        store
            .create_run(third.clone(), vec![started.clone()])
            .expect("free once both have ended");
    }
}
