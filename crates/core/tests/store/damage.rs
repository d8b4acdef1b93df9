//! Damaged stores: lost or garbage sled state, tampered and torn journals, format versions.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use waygate_core::store::EmbeddedError;

use waygate_core::run::RunId;
use waygate_core::store::{
    EmbeddedStore, EventFilter, Options, RunChange, RunFilter, Store, StoreError,
};

use crate::common::{
    action, copy_dir, moved, new_run, populated, records, segment, snapshot, to_canary, to_prod,
};

#[test]
fn deleted_state_is_rebuilt_from_the_journal_with_the_same_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = snapshot(&populated(dir.path()));
    fs::remove_dir_all(dir.path().join("state")).expect("rm state");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    assert_eq!(snapshot(&store), before);
    assert!(store.verify().expect("verify").is_ok());
}

fn overwrite_all(dir: &Path) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            overwrite_all(&path);
        } else {
            let len = fs::metadata(&path).expect("meta").len().max(64) as usize;
            let garbage: Vec<u8> = (0..len).map(|i| (i * 7 + 13) as u8).collect();
            fs::write(&path, garbage).expect("garbage");
        }
    }
}

#[test]
fn garbage_state_is_rebuilt_from_the_journal_with_the_same_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = snapshot(&populated(dir.path()));
    overwrite_all(&dir.path().join("state"));
    let store = EmbeddedStore::open(dir.path()).expect("open");
    assert_eq!(snapshot(&store), before);
    // And it keeps working: busy environments are still busy, commits continue the chain.
    let (run, started) = crate::common::new_run("r9", "prod");
    assert!(matches!(
        store.create_run(run, vec![started]),
        Err(StoreError::EnvironmentBusy { .. })
    ));
    let r1 = RunId::from("r1");
    to_prod(&store, &r1, 2, vec![]).expect("commit");
    assert!(store.verify().expect("verify").is_ok());
}

/// Changes `bob` to `cob` inside the payload of the record holding event `seq` (seq = index + 1,
/// one event per record), optionally fixing its checksum.
fn tamper(dir: &Path, seq: usize, fix_crc: bool) {
    let path = segment(dir);
    let mut bytes = fs::read(&path).expect("read");
    let (offset, len) = records(&bytes)[seq - 1];
    let payload = offset + 8..offset + 8 + len;
    let text = String::from_utf8_lossy(&bytes[payload.clone()]).into_owned();
    let at = text.find("\"bob\"").expect("actor bob in the record") + 1;
    bytes[payload.start + at] = b'c';
    if fix_crc {
        let crc = crc32fast::hash(&bytes[payload.clone()]);
        bytes[offset + 4..offset + 8].copy_from_slice(&crc.to_le_bytes());
    }
    fs::write(&path, bytes).expect("write");
}

#[test]
fn a_flipped_byte_fails_the_checksum_and_verify_names_its_seq() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = populated(dir.path());
    tamper(dir.path(), 5, false);
    let report = store.verify().expect("verify");
    let bad = report.first_bad.expect("a bad event");
    assert_eq!(bad.seq, 5, "{bad:?}");
    assert!(bad.problem.contains("checksum"), "{bad:?}");
    // Commands that do not need that record keep working.
    assert_eq!(store.load_run(&RunId::from("r3")).expect("load").version, 2);
    assert_eq!(
        store.run_events(&RunId::from("r3")).expect("events").len(),
        3
    );
    assert!(matches!(
        store.run_events(&RunId::from("r2")),
        Err(StoreError::Embedded(EmbeddedError::Corrupt { .. }))
    ));
}

#[test]
fn a_flipped_byte_with_a_fixed_checksum_breaks_the_chain_and_verify_names_its_seq() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = populated(dir.path());
    tamper(dir.path(), 5, true);
    let bad = store
        .verify()
        .expect("verify")
        .first_bad
        .expect("a bad event");
    assert_eq!(bad.seq, 5, "{bad:?}");
    assert!(bad.problem.contains("hash"), "{bad:?}");
}

#[test]
fn a_torn_record_at_the_tail_is_cut_off_and_earlier_events_stay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = snapshot(&populated(dir.path()));
    let path = segment(dir.path());
    let bytes = fs::read(&path).expect("read");
    let (offset, len) = records(&bytes)[0];
    // A commit that never finished: half of a record after the last acknowledged one.
    let mut torn = bytes.clone();
    torn.extend_from_slice(&bytes[offset..offset + (8 + len) / 2]);
    fs::write(&path, &torn).expect("write");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    assert_eq!(snapshot(&store), before);
    assert_eq!(fs::metadata(&path).expect("meta").len(), bytes.len() as u64);
    assert!(store.verify().expect("verify").is_ok());
}

#[test]
fn cutting_an_applied_last_record_in_half_is_reported_then_loses_only_that_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(populated(dir.path()));
    let path = segment(dir.path());
    let bytes = fs::read(&path).expect("read");
    let &(offset, len) = records(&bytes).last().expect("records");
    fs::write(&path, &bytes[..offset + (8 + len) / 2]).expect("cut");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    // The commit had been acknowledged and applied: its loss is an error, not a torn tail.
    assert!(matches!(
        store.load_run(&RunId::from("r3")),
        Err(StoreError::Embedded(EmbeddedError::JournalTruncated {
            recorded: 9,
            ..
        }))
    ));
    // Once the state is deleted (the loss accepted), the torn record is cut off as a tail.
    fs::remove_dir_all(dir.path().join("state")).expect("rm state");
    // r3's last commit (its move to canary, event 9) is gone; everything before it is intact.
    let r3 = store.load_run(&RunId::from("r3")).expect("load");
    assert_eq!((r3.version, r3.state.as_str()), (1, "build"));
    assert_eq!(
        store.run_events(&RunId::from("r3")).expect("events").len(),
        2
    );
    assert_eq!(
        store.run_events(&RunId::from("r1")).expect("events").len(),
        3
    );
    assert_eq!(store.verify().expect("verify").events, 8);
    let (_, events) = to_canary(&store, &r3);
    assert_eq!(events[0].seq, 9);
    assert!(store.verify().expect("verify").is_ok());
}

#[test]
fn an_unknown_format_version_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(EmbeddedStore::open(dir.path()).expect("open"));
    fs::write(dir.path().join("FORMAT"), "waygate-store 99\n").expect("write");
    let err = EmbeddedStore::open(dir.path()).expect_err("must refuse");
    assert!(
        matches!(err, StoreError::UnsupportedVersion { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("waygate-store 99"), "{err}");
}

/// A waiting operation is told who holds the store: the pid and command line of the holder.
#[test]
fn a_waiting_operation_is_told_who_holds_the_store() {
    use std::sync::{Arc, Mutex};
    use waygate_core::store::{LockWait, WaitNotice};
    let dir = tempfile::tempdir().expect("tempdir");
    let holder = EmbeddedStore::open(dir.path()).expect("open");
    let told: Arc<Mutex<Vec<LockWait>>> = Arc::default();
    let seen = told.clone();
    let other = EmbeddedStore::open_with(
        dir.path(),
        Options {
            lock_timeout: Duration::from_millis(1500),
            on_wait: Some(WaitNotice(Arc::new(move |w: &LockWait| {
                seen.lock().expect("lock").push(w.clone());
            }))),
            ..Options::default()
        },
    )
    .expect("open");
    let held = holder.hold().expect("hold");
    other.list_runs(&Default::default()).expect_err("locked");
    drop(held);
    let told = told.lock().expect("lock");
    assert_eq!(told.len(), 1, "told once: {told:?}");
    assert!(told[0].waited >= Duration::from_secs(1));
    if std::path::Path::new("/proc/locks").exists() {
        let holder = &told[0].holders;
        assert_eq!(holder.len(), 1, "{holder:?}");
        assert_eq!(holder[0].pid, Some(std::process::id()));
        assert!(!holder[0].shared);
        let command = holder[0].command.as_deref().unwrap_or_default();
        assert!(command.contains("store"), "the test binary: {command}");
    }
}

#[test]
fn a_held_store_makes_others_wait_then_fail_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let holder = EmbeddedStore::open(dir.path()).expect("open");
    let other = EmbeddedStore::open_with(
        dir.path(),
        Options {
            lock_timeout: Duration::from_millis(200),
            ..Options::default()
        },
    )
    .expect("open");
    let held = holder.hold().expect("hold");
    let err = other.list_runs(&Default::default()).expect_err("locked");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("held by another process"), "{err}");
    drop(held);
    assert!(other
        .list_runs(&Default::default())
        .expect("free again")
        .is_empty());
}

#[test]
fn damage_before_later_commits_is_reported_not_cut_off_even_when_rebuilding() {
    for variant in ["payload", "length"] {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(populated(dir.path()));
        let path = segment(dir.path());
        let mut bytes = fs::read(&path).expect("read");
        let (offset, len) = records(&bytes)[4];
        match variant {
            "payload" => bytes[offset + 8 + len / 2] ^= 0x01,
            _ => bytes[offset..offset + 4].copy_from_slice(&u32::MAX.to_le_bytes()),
        }
        fs::write(&path, &bytes).expect("write");
        // Both derived states gone, so reading the run means a rebuild across the damage
        // (with the read index in place, `load_run` answers from what it derived before).
        fs::remove_dir_all(dir.path().join("state")).expect("rm state");
        fs::remove_dir_all(dir.path().join("index")).expect("rm index");
        let store = EmbeddedStore::open(dir.path()).expect("open");
        match store.load_run(&RunId::from("r1")) {
            Err(StoreError::Embedded(EmbeddedError::Corrupt {
                seq: Some(5),
                offset: at,
                ..
            })) => {
                assert_eq!(at, offset as u64, "{variant}")
            }
            other => panic!("{variant}: expected Corrupt at event 5, got {other:?}"),
        }
        let bad = store.verify().expect("verify").first_bad.expect("bad");
        assert_eq!(bad.seq, 5, "{variant}: {bad:?}");
        assert_eq!(
            fs::read(&path).expect("read"),
            bytes,
            "{variant}: the journal was cut"
        );
    }
}

/// The crash point between the journal's fdatasync and sled's batch: the journal has commits
/// sled never saw. Simulated by putting back a copy of sled taken before them.
#[test]
fn state_that_lags_the_journal_catches_up_by_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(populated(dir.path()));
    let old_state = dir.path().join("old-state");
    copy_dir(&dir.path().join("state"), &old_state);
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let r1 = RunId::from("r1");
    to_prod(&store, &r1, 2, vec![]).expect("c");
    let (run, started) = crate::common::new_run("r4", "qa");
    store.create_run(run, vec![started]).expect("create");
    let after = snapshot(&store);
    fs::remove_dir_all(dir.path().join("state")).expect("rm");
    fs::rename(&old_state, dir.path().join("state")).expect("restore");
    assert_eq!(snapshot(&store), after);
    assert!(store.verify().expect("verify").is_ok());
}

/// A torn multi-record commit: its first record reached the disk, its last (with the end mark)
/// did not, and sled never saw it. The whole commit is cut off; nothing half-done shows.
#[test]
fn a_commit_missing_its_end_record_is_cut_off_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = snapshot(&populated(dir.path()));
    let old_state = dir.path().join("old-state");
    copy_dir(&dir.path().join("state"), &old_state);
    let path = segment(dir.path());
    let old_len = fs::metadata(&path).expect("meta").len();
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let r1 = RunId::from("r1");
    to_prod(&store, &r1, 2, vec![action("prod")]).expect("commit");
    let bytes = fs::read(&path).expect("read");
    let &(first, len) = records(&bytes)
        .iter()
        .rev()
        .nth(1)
        .expect("two new records");
    assert_eq!(first as u64, old_len);
    fs::write(&path, &bytes[..first + 8 + len]).expect("cut before the end record");
    fs::remove_dir_all(dir.path().join("state")).expect("rm");
    fs::rename(&old_state, dir.path().join("state")).expect("restore");
    assert_eq!(snapshot(&store), before);
    assert_eq!(fs::metadata(&path).expect("meta").len(), old_len);
    assert!(store.verify().expect("verify").is_ok());
    to_prod(&store, &r1, 2, vec![]).expect("retry");
}

/// Regression: sled's IO threads can hold its file lock for a moment after a session closes;
/// the next session took that for an unusable sled and rebuilt it (which, with damage in the
/// journal, even failed). It must wait instead. A damaged record makes any rebuild visible.
#[test]
fn back_to_back_sessions_wait_for_sled_instead_of_rebuilding() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(populated(dir.path()));
    tamper(dir.path(), 5, false);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let dir = dir.path().to_owned();
            std::thread::spawn(move || {
                let store = EmbeddedStore::open(&dir).expect("open");
                for _ in 0..50 {
                    let run = store
                        .load_run(&RunId::from("r3"))
                        .expect("load without a rebuild");
                    assert_eq!(run.version, 2);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no rebuild");
    }
}

/// The very last record altered after it was acknowledged: it looks like a torn write, but sled
/// has applied it, so it is not cut off; verify names it and readers that need it refuse.
#[test]
fn a_tampered_last_record_is_reported_not_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = populated(dir.path());
    let len = fs::metadata(segment(dir.path())).expect("meta").len();
    tamper(dir.path(), 9, false);
    let bad = store
        .verify()
        .expect("verify")
        .first_bad
        .expect("a bad event");
    assert_eq!(bad.seq, 9, "{bad:?}");
    let scan = store.scan_events(&waygate_core::store::EventFilter::default());
    assert!(
        matches!(
            scan,
            Err(StoreError::Embedded(EmbeddedError::Corrupt { .. }))
        ),
        "{scan:?}"
    );
    assert_eq!(store.load_run(&RunId::from("r3")).expect("load").version, 2);
    assert_eq!(fs::metadata(segment(dir.path())).expect("meta").len(), len);
}

/// The parallel `verify` gives exactly the sequential report (count, seq, words, location)
/// for every kind of damage, at many places: the start, the middle and the end of segments,
/// across the boundary between the ranges its threads check.
#[test]
fn parallel_verify_reports_exactly_what_a_sequential_pass_does() {
    let pristine = tempfile::tempdir().expect("tempdir");
    let options = Options {
        segment_limit: 16 * 1024,
        ..Options::default()
    };
    {
        let store = EmbeddedStore::open_with(pristine.path(), options.clone()).expect("open");
        let _held = store.hold().expect("hold");
        let (run, started) = new_run("r1", "prod");
        let run = store.create_run(run, vec![started]).expect("create").0;
        for _ in 0..60 {
            store
                .append(&run.id, vec![action("build"), action("build")])
                .expect("append");
        }
    }
    let first = segment(pristine.path());
    let bytes = fs::read(&first).expect("segment");
    let records = records(&bytes);
    // A hash both passes look for: event 6's.
    let (offset, len) = records[5];
    let record: serde_json::Value =
        serde_json::from_slice(&bytes[offset + 8..offset + 8 + len]).expect("record");
    let expect = record["event"]["hash"].as_str().expect("hash").to_owned();
    let segments = fs::read_dir(pristine.path().join("journal"))
        .expect("journal")
        .count();
    assert!(segments >= 3, "{segments} segments");
    let last = pristine
        .path()
        .join("journal")
        .join(format!("{segments:08}.seg"));
    type Damage = Box<dyn Fn(&Path)>;
    let flip = |file: PathBuf, at: usize| -> Damage {
        Box::new(move |dir: &Path| {
            let path = dir.join("journal").join(file.file_name().expect("name"));
            let mut bytes = fs::read(&path).expect("read");
            let at = at.min(bytes.len() - 1);
            bytes[at] ^= 0x20;
            fs::write(&path, bytes).expect("write");
        })
    };
    let mut cases: Vec<(String, Damage)> = vec![("none".into(), Box::new(|_: &Path| {}))];
    for index in [
        0,
        1,
        records.len() / 2,
        records.len() / 2 + 1,
        records.len() - 1,
    ] {
        let (offset, len) = records[index];
        cases.push((
            format!("payload of record {index}"),
            flip(first.clone(), offset + 8 + len / 2),
        ));
        cases.push((
            format!("length of record {index}"),
            flip(first.clone(), offset + 3),
        ));
        cases.push((
            format!("checksum of record {index}"),
            flip(first.clone(), offset + 5),
        ));
    }
    cases.push((
        "last segment's last byte".into(),
        flip(last.clone(), usize::MAX),
    ));
    let torn = last.clone();
    cases.push((
        "torn tail".into(),
        Box::new(move |dir: &Path| {
            let path = dir.join("journal").join(torn.file_name().expect("name"));
            let len = fs::metadata(&path).expect("meta").len();
            fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(len - 7))
                .expect("cut");
        }),
    ));
    cases.push((
        "a missing middle segment".into(),
        Box::new(|dir: &Path| {
            fs::remove_file(dir.join("journal").join("00000002.seg")).expect("remove");
        }),
    ));
    for (name, damage) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), dir.path());
        damage(dir.path());
        let store = EmbeddedStore::open_with(dir.path(), options.clone()).expect("open");
        let (parallel, sequential) = store.verify_both_ways(Some(&expect)).expect("verify");
        assert_eq!(parallel, sequential, "{name}");
        // A bad last record of the last segment is a write that never finished: not damage,
        // but what the next write cuts off.
        let unfinished = name == "torn tail" || name == "last segment's last byte";
        assert_eq!(
            parallel.is_ok(),
            name == "none" || unfinished,
            "{name}: {parallel:?}"
        );
        assert_eq!(parallel.unfinished.is_some(), unfinished, "{name}");
        let (_, sequential) = store.verify_both_ways(None).expect("verify");
        assert_eq!(sequential.reached, None);
    }
}

/// Cutting whole commits off the end of the journal leaves a valid, shorter hash chain: only
/// the state, which had applied them, can tell. The store refuses to pretend nothing happened.
#[test]
fn a_journal_cut_at_a_record_boundary_is_reported_not_rebuilt_silently() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(populated(dir.path()));
    let path = segment(dir.path());
    let bytes = fs::read(&path).expect("read");
    let (last, _) = *records(&bytes).last().expect("records");
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(last as u64))
        .expect("truncate");

    let store = EmbeddedStore::open(dir.path()).expect("open");
    let loaded = store.load_run(&RunId::from("r3"));
    match &loaded {
        Err(e @ StoreError::Embedded(EmbeddedError::JournalTruncated { recorded: 9, .. })) => {
            let message = e.to_string();
            assert!(
                message.contains("state had recorded events up to 9"),
                "{message}"
            );
            assert!(message.contains("delete the store's `state`"), "{message}");
        }
        other => panic!("expected JournalTruncated, got {other:?}"),
    }
    let bad = store
        .verify()
        .expect("verify")
        .first_bad
        .expect("the missing event is reported");
    assert_eq!(bad.seq, 9, "{bad:?}");
    assert!(bad.problem.starts_with("missing:"), "{bad:?}");
    assert_eq!(
        fs::metadata(&path).expect("meta").len(),
        last as u64,
        "nothing was written"
    );

    // Accepting the loss deliberately: without the state, the journal as it is stands.
    fs::remove_dir_all(dir.path().join("state")).expect("rm state");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    assert_eq!(store.load_run(&RunId::from("r3")).expect("load").version, 1);
    let report = store.verify().expect("verify");
    assert!(report.is_ok());
    assert_eq!(report.events, 8);
}

/// A salvage carries every readable event into a new store: a lost creation record takes its
/// run's later events with it (nothing to attach them to), and all of it is recorded.
#[test]
fn salvage_carries_what_is_readable_and_records_every_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = populated(dir.path());
    let path = segment(dir.path());
    let mut bytes = fs::read(&path).expect("read");
    // Event 4 is r2's RunStarted, the record that creates r2.
    let (offset, len) = records(&bytes)[3];
    bytes[offset + 8 + len / 2] ^= 0x20;
    fs::write(&path, &bytes).expect("damage");
    // Beside the damaged store, never inside it (refused: it stays as it is).
    let beside = tempfile::tempdir().expect("tempdir");
    let to = beside.path().join("saved");
    let report = store.salvage(&to, "ops").expect("salvage");
    assert_eq!(fs::read(&path).expect("read"), bytes, "the source changed");
    assert_eq!((report.carried, report.runs), (6, 2));
    let lost: Vec<(u64, u64)> = report.lost.iter().map(|l| (l.first, l.last)).collect();
    assert_eq!(lost, [(4, 4), (5, 6)], "{:?}", report.lost);
    assert!(report.lost[1].why.contains("run r2"), "{:?}", report.lost);

    let saved = EmbeddedStore::open_existing(&to).expect("open the salvaged store");
    let verified = saved.verify().expect("verify");
    assert!(verified.is_ok(), "{verified:?}");
    assert_eq!(verified.head.as_ref().map(|h| h.seq), Some(7));
    let ids: Vec<String> = saved
        .list_runs(&RunFilter::default())
        .expect("list")
        .into_iter()
        .map(|r| r.id.0)
        .collect();
    assert_eq!(ids, ["r1", "r3"]);
    // Times, actors and kinds are kept; seqs and hashes are new.
    let kept = |store: &EmbeddedStore| -> Vec<_> {
        store
            .run_events(&RunId::from("r1"))
            .expect("events")
            .into_iter()
            .map(|e| (e.at, e.actor, e.kind))
            .collect()
    };
    assert_eq!(kept(&saved), kept(&store));
    let salvaged = saved
        .scan_events(&EventFilter {
            kind: Some("StoreSalvaged".into()),
            ..EventFilter::default()
        })
        .expect("scan");
    assert_eq!(salvaged.len(), 1);
    assert_eq!(salvaged[0].actor, "ops");
    // Writes continue the new chain; the run holding dev can be ended.
    saved
        .commit(
            &RunId::from("r3"),
            2,
            RunChange::status(waygate_core::run::RunStatus::Aborted),
            vec![moved("canary", "canary")],
        )
        .expect("commit in the salvaged store");
    assert!(saved.verify().expect("verify").is_ok());
    // Never into a store or a non-empty directory.
    assert!(matches!(
        store.salvage(&to, "ops"),
        Err(StoreError::NotAStore { .. })
    ));
}

/// Two salvages into one directory at once: exactly one writes the new store, the other is
/// refused, and the store written is whole.
#[test]
fn two_salvages_into_one_directory_at_once_leave_one_whole_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    populated(dir.path());
    let beside = tempfile::tempdir().expect("tempdir");
    let to = beside.path().join("saved");
    let results: Vec<Result<_, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (from, to) = (dir.path(), &to);
                scope.spawn(move || {
                    EmbeddedStore::open_existing(from)
                        .expect("open")
                        .salvage(to, "ops")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("joined"))
            .collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    let saved = EmbeddedStore::open_existing(&to).expect("open");
    let report = saved.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, 10);
}
