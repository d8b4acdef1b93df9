//! The journal replayed into memory, without sled and without writing anything: how a reader
//! without write access reads the embedded store (it cannot open sled, which needs to write,
//! nor take the lock for writing). It reads the whole journal, so it costs what a rebuild
//! costs, in memory; see `docs/storage.md`, "Reading without write access".

use super::EmbeddedError;
use std::collections::BTreeMap;
use std::path::Path;

use super::embedded::Options;
use super::journal::{Journal, Pos, Record, RunUpdate, Tail};
use super::lock::lock_shared;
use super::{ChainCheck, MemoryStore, StoreError};
use crate::event::Event;
use crate::run::{Run, RunId};

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
