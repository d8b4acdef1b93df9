//! Import: a whole chain copied into a new embedded store as it is, seq, times, actors and
//! hashes kept (`waygate store copy`, from either backend). Unlike a salvage nothing is
//! renumbered or chained anew, so the copy verifies with the same head as its source.
//!
//! Each event is a commit of its own in the new journal; a run's first event carries the run
//! as it ends up (its creation record), so replaying the journal gives each run's final
//! record, and its environment's lock if it is still active.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use super::dir::{create_store, inspect, Found};
use super::journal::{self, BulkAppend, Journal, Record, RunUpdate};
use super::lock::lock;
use super::options::Options;
use super::session::Session;
use crate::event::Event;
use crate::run::{Run, RunId};
use crate::store::{ChainCheck, StoreError};

/// Writes `runs` and `events` (a whole chain from seq 1, checked here) into a new store in
/// `to`, a missing or empty directory.
pub(crate) fn import(
    to: &Path,
    options: &Options,
    runs: &[Run],
    events: &[Event],
) -> Result<(), StoreError> {
    let refuse = |why: String| StoreError::NotAStore {
        location: to.display().to_string(),
        why,
    };
    match inspect(to)? {
        Found::Missing | Found::Empty => {}
        Found::Store | Found::Other => {
            return Err(refuse(
                "is not empty; a copy goes only into a missing or empty directory".into(),
            ))
        }
    }
    let mut check = ChainCheck::new();
    for event in events {
        check
            .check(event)
            .map_err(|why| refuse(format!("cannot take event {}: {why}", event.seq)))?;
    }
    let by_id: BTreeMap<&RunId, &Run> = runs.iter().map(|r| (&r.id, r)).collect();
    create_store(to, options)?;
    let journal = Journal::open(&to.join("journal"), options.segment_limit)?;
    let lock = lock(to, options)?;
    if !journal.segments()?.is_empty() {
        return Err(refuse(
            "is not empty: something else wrote a store there meanwhile".into(),
        ));
    }
    let mut out = BulkAppend::new(&journal);
    let mut seen: HashSet<&RunId> = HashSet::new();
    for event in events {
        let run = match by_id.get(&event.run_id) {
            Some(run) if seen.insert(&run.id) => Some(RunUpdate::Created(Box::new((*run).clone()))),
            Some(_) => None,
            None if event.run_id.as_str().is_empty() => None,
            None => {
                return Err(refuse(format!(
                    "cannot take event {}: its run {} is not among the runs copied",
                    event.seq, event.run_id
                )))
            }
        };
        out.push(&Record {
            event: event.clone(),
            run,
            end: true,
        })?;
    }
    out.finish()?;
    journal::sync_dir(to)?;
    drop(lock);
    Session::build(to, options)?;
    Ok(())
}
