//! The read index (`index/` beside sled): it answers one run as sled does, or not at all.
//!
//! Each test puts the index in a state a crash, a copy, an old version or damage can leave
//! and checks that what it answers equals what sled answers, and that where it cannot vouch
//! for an answer it gives none (the store then reads through sled).

use std::fs;
use std::path::{Path, PathBuf};
use waygate_core::store::EmbeddedError;

use waygate_core::run::RunId;
use waygate_core::store::{EmbeddedStore, RunChange, RunFilter, Store, StoreError};

use crate::common::{action, copy_dir, moved, new_run, populated, records, segment, to_prod};

/// Every run: the index answers, and exactly as sled does.
fn agrees(store: &EmbeddedStore) {
    let runs = store.list_runs(&RunFilter::default()).expect("list");
    assert!(!runs.is_empty());
    // `list_runs` opened a session, which brought the index up to date.
    for run in runs {
        let fast = store.read_from_index(&run.id).expect("index");
        let slow = store.read_through_state(&run.id).expect("state");
        assert_eq!(fast.as_ref(), Some(&slow), "{}", run.id);
    }
}

/// A write to run `id` (an action in `state`) finds whatever the index lacks or got wrong,
/// and the next session brings it back: then it [`agrees`].
fn agrees_after_a_write(store: &EmbeddedStore, id: &str, state: &str) {
    store
        .append(&RunId::from(id), vec![action(state)])
        .expect("append");
    agrees(store);
}

/// What the index answers for each of `ids` as the store stands now, before anything else
/// opens it (which would bring the index up to date).
fn answers(store: &EmbeddedStore, ids: &[&str]) -> Vec<Option<String>> {
    ids.iter()
        .map(|id| {
            store
                .read_from_index(&RunId::from(*id))
                .expect("index")
                .map(|answer| format!("{answer:?}"))
        })
        .collect()
}

fn through_state(store: &EmbeddedStore, ids: &[&str]) -> Vec<Option<String>> {
    ids.iter()
        .map(|id| {
            let answer = store.read_through_state(&RunId::from(*id)).expect("state");
            Some(format!("{answer:?}"))
        })
        .collect()
}

fn head(dir: &Path) -> PathBuf {
    dir.join("index").join("HEAD")
}

/// `HEAD` rewritten with `edit` applied to its JSON, sealed again (CRC-32 first).
fn edit_head(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = fs::read(head(dir)).expect("HEAD");
    let mut json: serde_json::Value = serde_json::from_slice(&bytes[4..]).expect("HEAD json");
    edit(&mut json);
    let json = serde_json::to_vec(&json).expect("json");
    let mut out = crc32fast::hash(&json).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    fs::write(head(dir), out).expect("write HEAD");
}

fn run_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("index").join("runs")];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Each of `files` with its bytes now, to put back later.
fn contents(files: Vec<PathBuf>) -> Vec<(PathBuf, Vec<u8>)> {
    files
        .into_iter()
        .map(|f| {
            let bytes = fs::read(&f).expect("read");
            (f, bytes)
        })
        .collect()
}

#[test]
fn the_index_answers_every_run_as_the_state_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = populated(dir.path());
    // A longer run, ended, and an environment freed and taken again.
    let r3 = store.load_run(&RunId::from("r3")).expect("r3");
    let (r3, _) = store
        .commit(
            &r3.id,
            r3.version,
            RunChange::status(waygate_core::run::RunStatus::Succeeded),
            vec![action("canary"), action("canary")],
        )
        .expect("end r3");
    assert!(r3.status.is_ended());
    let (run, started) = new_run("r4", "dev");
    store.create_run(run, vec![started]).expect("r4");
    agrees(&store);
    // Every store method that reads one run goes through it.
    let r1 = RunId::from("r1");
    let (run, events) = store.read_from_index(&r1).expect("index").expect("answer");
    assert_eq!(store.load_run(&r1).expect("load"), run);
    assert_eq!(store.run_events(&r1).expect("events"), events);
    assert_eq!(
        store.load_run_with_events(&r1).expect("both"),
        (run, events)
    );
    // A run that does not exist: the index does not say so on its own.
    let nobody = RunId::from("nobody");
    assert_eq!(store.read_from_index(&nobody).expect("index"), None);
    assert!(matches!(
        store.load_run(&nobody),
        Err(StoreError::NotFound(_))
    ));
}

/// A store written before the index existed (or whose index was deleted) reads through sled
/// until a session builds the index; from then on the index answers.
#[test]
fn a_store_without_an_index_gets_one_at_its_next_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(populated(dir.path()));
    fs::remove_dir_all(dir.path().join("index")).expect("rm index");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let ids = ["r1", "r2", "r3"];
    assert_eq!(answers(&store, &ids), vec![None, None, None]);
    // Reading through sled works meanwhile, and its session builds the index.
    let slow = through_state(&store, &ids);
    assert_eq!(answers(&store, &ids), slow);
    // An index of another layout is rebuilt too.
    edit_head(dir.path(), |h| h["layout"] = 0.into());
    assert_eq!(answers(&store, &ids), vec![None, None, None]);
    agrees(&store);
}

/// A session that dies after writing run files and before `HEAD` leaves run files ahead of
/// `HEAD`: readers and the next session must count each commit once.
#[test]
fn run_files_ahead_of_head_count_each_commit_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = populated(dir.path());
    let old_head = fs::read(head(dir.path())).expect("HEAD");
    let r1 = store.load_run(&RunId::from("r1")).expect("r1");
    to_prod(&store, &r1.id, r1.version, vec![action("prod")]).expect("commit");
    store.append(&r1.id, vec![action("prod")]).expect("append");
    // r2 has ended? No: each run holds its own environment; r4 is created after the old HEAD.
    let (run, started) = new_run("r4", "qa");
    store.create_run(run, vec![started]).expect("r4");
    fs::write(head(dir.path()), &old_head).expect("old HEAD back");
    let ids = ["r1", "r2", "r3", "r4"];
    let fast = answers(&store, &ids);
    let slow = through_state(&store, &ids);
    assert_eq!(fast, slow);
    // The session above caught the index up from the old HEAD: nothing counted twice.
    assert_eq!(answers(&store, &ids), slow);
    // Positions a dead session appended and no run file counts are written over.
    for file in run_files(dir.path()) {
        if file.extension().is_some_and(|e| e == "pos") {
            let mut bytes = fs::read(&file).expect("pos");
            bytes.extend_from_slice(&[0xab; 30]);
            fs::write(&file, bytes).expect("garbage");
        }
    }
    assert_eq!(answers(&store, &ids), slow);
    agrees_after_a_write(&store, "r1", "prod");
}

/// A copy of the store (another journal directory) or an index from another boot of the
/// machine (written without fsync, so a crash of the machine may have left any part of it) is
/// not trusted: rebuilt at the next session.
#[test]
fn an_index_from_another_boot_or_a_copied_store_is_not_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(populated(dir.path()));
    let ids = ["r1", "r2", "r3"];
    let copy = tempfile::tempdir().expect("tempdir");
    copy_dir(dir.path(), copy.path());
    let store = EmbeddedStore::open(copy.path()).expect("open copy");
    assert_eq!(answers(&store, &ids), vec![None, None, None]);
    agrees(&store);

    let store = EmbeddedStore::open(dir.path()).expect("open");
    assert!(answers(&store, &ids).iter().all(Option::is_some));
    edit_head(dir.path(), |h| h["boot"] = "another boot".into());
    assert_eq!(answers(&store, &ids), vec![None, None, None]);
    agrees(&store);
}

/// A journal that lost its end: the index does not answer from what it remembers; the state
/// path reports the loss.
#[test]
fn a_journal_shorter_than_the_index_is_not_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(populated(dir.path()));
    let segment = segment(dir.path());
    let bytes = fs::read(&segment).expect("segment");
    // Cut at a record boundary: a valid, shorter chain.
    let records = records(&bytes);
    let (cut, _) = records[records.len() - 2];
    fs::write(&segment, &bytes[..cut]).expect("cut");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    the_loss_is_reported(&store);
}

/// The journal lost events the index knew: the index answers for no run, and reading one
/// through the state reports the loss.
fn the_loss_is_reported(store: &EmbeddedStore) {
    assert_eq!(answers(store, &["r1", "r2", "r3"]), vec![None, None, None]);
    let err = store
        .load_run_with_events(&RunId::from("r1"))
        .expect_err("lost events");
    assert!(
        matches!(
            err,
            StoreError::Embedded(EmbeddedError::JournalTruncated { .. })
        ),
        "{err}"
    );
}

/// A damaged index file: that run reads through sled, and the next session rebuilds the index.
#[test]
fn a_damaged_index_file_is_not_served_and_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(populated(dir.path()));
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let ids = ["r1", "r2", "r3"];
    let good = answers(&store, &ids);
    assert!(good.iter().all(Option::is_some));
    for file in run_files(dir.path()) {
        let mut bytes = fs::read(&file).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        fs::write(&file, bytes).expect("damage");
    }
    let damaged = answers(&store, &ids);
    for (damaged, good) in damaged.iter().zip(&good) {
        // A flipped bit in a `.run` file fails its checksum; in a `.pos` file it points at a
        // record of another run or at no record: either way, no answer.
        assert!(damaged.is_none() || damaged == good, "{damaged:?}");
    }
    assert_eq!(through_state(&store, &ids), good);
    // A write finds the damage, drops HEAD, and the next session rebuilds the index.
    agrees_after_a_write(&store, "r3", "canary");
}

/// Commits a holding process made and sled has not taken in are in no index file: a reader
/// finds them in the journal past `HEAD`.
#[test]
fn commits_past_head_are_read_from_the_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = populated(dir.path());
    let old_head = fs::read(head(dir.path())).expect("HEAD");
    let old_files = contents(run_files(dir.path()));
    let r1 = store.load_run(&RunId::from("r1")).expect("r1");
    to_prod(&store, &r1.id, r1.version, vec![action("prod")]).expect("commit");
    let (run, started) = new_run("r4", "qa");
    store.create_run(run, vec![started]).expect("r4");
    // The index as it was before those commits: they are only in the journal.
    fs::write(head(dir.path()), &old_head).expect("HEAD back");
    for file in run_files(dir.path()) {
        fs::remove_file(file).expect("rm");
    }
    for (file, bytes) in &old_files {
        fs::write(file, bytes).expect("put back");
    }
    let fast = answers(&store, &["r1", "r2", "r3"]);
    // r4 has no run file yet: the index cannot answer for it.
    assert_eq!(answers(&store, &["r4"]), vec![None]);
    let slow = through_state(&store, &["r1", "r2", "r3"]);
    assert_eq!(fast, slow);
    assert!(fast[0].as_deref().is_some_and(|a| a.contains("prod")));
    agrees(&store);
}

/// A crash right after a new segment was created leaves it empty at the journal's end: the
/// next commit goes there, and the index follows it rather than giving up.
#[test]
fn an_empty_segment_at_the_end_is_where_the_index_goes_on() {
    use waygate_core::store::Options;
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options {
        segment_limit: 2048,
        ..Options::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), options.clone()).expect("open");
    let (run, started) = new_run("r1", "prod");
    let (mut run, _) = store.create_run(run, vec![started]).expect("create");
    for _ in 0..6 {
        run = store
            .commit(
                &run.id,
                run.version,
                RunChange::to_state("canary"),
                vec![moved("build", "canary"), action("canary")],
            )
            .expect("commit")
            .0;
    }
    let journal = dir.path().join("journal");
    let last = fs::read_dir(&journal)
        .expect("journal")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".seg")?
                .parse::<u32>()
                .ok()
        })
        .max()
        .expect("segments");
    assert!(last > 1, "the test needs more than one segment");
    fs::write(journal.join(format!("{:08}.seg", last + 1)), b"").expect("empty segment");
    drop(store);
    let store = EmbeddedStore::open_with(dir.path(), options).expect("open again");
    to_prod(&store, &run.id, run.version, vec![action("prod")])
        .expect("commit into the empty segment");
    let fast = store.read_from_index(&run.id).expect("index");
    assert_eq!(
        fast,
        Some(store.read_through_state(&run.id).expect("state"))
    );
    assert_eq!(fast.map(|(run, _)| run.state), Some("prod".to_owned()));
}

/// The journal cut back to exactly where an old index ends (an index from before the lost
/// commits, e.g. kept by an older waygate): nothing in the index shows the loss, but sled's
/// witness does, so the index does not answer and the state path reports it.
#[test]
fn a_journal_cut_back_to_where_an_old_index_ends_is_not_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = populated(dir.path());
    let segment = dir.path().join("journal").join("00000001.seg");
    let old_len = fs::metadata(&segment).expect("segment").len();
    let old_head = fs::read(head(dir.path())).expect("HEAD");
    let old_files = contents(run_files(dir.path()));
    let r1 = store.load_run(&RunId::from("r1")).expect("r1");
    to_prod(&store, &r1.id, r1.version, vec![]).expect("commit");
    fs::write(head(dir.path()), &old_head).expect("HEAD back");
    for (file, bytes) in &old_files {
        fs::write(file, bytes).expect("put back");
    }
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("segment");
    file.set_len(old_len).expect("cut");
    the_loss_is_reported(&store);
}
