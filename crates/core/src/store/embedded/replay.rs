//! The journal replayed into memory, without sled and without writing anything: how a reader
//! without write access reads the embedded store (it cannot open sled, which needs to write,
//! nor take the lock for writing). It reads the whole journal, so it costs what a rebuild
//! costs, in memory; see `docs/storage.md`, "Reading without write access".

use super::error::EmbeddedError;
use std::collections::BTreeMap;
use std::path::Path;

use super::journal::{Journal, Pos, Record, RunUpdate, Tail};
use super::lock::lock_shared;
use super::options::Options;
use crate::event::Event;
use crate::run::{Run, RunId};
use crate::store::{ChainCheck, MemoryStore, StoreError};

/// Replays every finished commit of the journal in `dir` (under a shared lock when the lock
/// file can be opened, so no commit is half-read) into a [`MemoryStore`], which then answers
/// reads with the same semantics. A torn or unfinished write at the end was never
/// acknowledged and is left out; a damaged record is [`EmbeddedError::Corrupt`](super::EmbeddedError::Corrupt).
pub(crate) fn replay(dir: &Path, options: &Options) -> Result<MemoryStore, StoreError> {
    let _lock = lock_shared(dir, options)?;
    let journal = Journal::at(&dir.join("journal"), options.segment_limit);
    let mut chain = ChainCheck::new();
    let mut runs: BTreeMap<RunId, Run> = BTreeMap::new();
    let mut events: Vec<Event> = Vec::new();
    let mut commit: Vec<Record> = Vec::new();
    let corrupt = |pos: Pos, seq: Option<u64>, detail: String| {
        StoreError::Embedded(EmbeddedError::Corrupt {
            segment: journal.segment_path(pos.segment).display().to_string(),
            offset: pos.offset,
            seq,
            detail,
        })
    };
    let tail = journal.read_from(Pos::START, |pos, record, _| {
        chain
            .check(&record.event)
            .map_err(|detail| corrupt(pos, Some(record.event.seq), detail))?;
        let end = record.end;
        commit.push(record);
        if end {
            for record in commit.drain(..) {
                apply(&mut runs, record.run, &record.event);
                events.push(record.event);
            }
        }
        Ok(true)
    })?;
    if let Tail::Corrupt(pos, detail) = tail {
        return Err(corrupt(pos, Some(chain.next_seq()), detail));
    }
    Ok(MemoryStore::restored(runs, events))
}

/// What a commit's last record did to its run.
fn apply(runs: &mut BTreeMap<RunId, Run>, update: Option<RunUpdate>, event: &Event) {
    match update {
        Some(RunUpdate::Created(run)) => {
            runs.insert(run.id.clone(), *run);
        }
        Some(RunUpdate::Changed(change)) => {
            if let Some(run) = runs.get_mut(&event.run_id) {
                change.apply(run);
            }
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunStatus;
    use crate::store::conformance::{approved, create, moved};
    use crate::store::{EmbeddedStore, EventFilter, RunChange, RunFilter, Store};

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
        let replayed = replay(dir.path(), &Options::default()).expect("replay");
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
}
