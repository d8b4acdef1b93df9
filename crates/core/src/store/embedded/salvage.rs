//! Salvage: everything readable of a damaged embedded store, carried into a new store, the
//! loss recorded there as an event (`waygate store salvage --to DIR`).
//!
//! A damaged record mid-journal breaks the hash chain, and a chain cannot be continued past
//! a gap, so a store that must replay across the damage (a rebuild) cannot be written to any
//! more. Salvage reads the damaged store without changing it, skips what cannot be read
//! (resynchronising on the next record that decodes, passes its checksum and its own hash, and
//! follows in seq), and writes a new journal: the events it could read, in order, with their
//! times, actors and kinds, renumbered and chained anew, their runs as their records say;
//! then one `StoreSalvaged` event that names the source and every lost range of seqs. The new
//! store's state is rebuilt from that journal on its first open. See `docs/storage.md`,
//! "Salvage".

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::dir::{create_store, inspect, within, Found, SALVAGING};
use super::journal::{self, decode, BulkAppend, Decoded, Journal, Record, RunUpdate};
use super::lock::{lock, lock_shared};
use super::options::Options;
use super::session::Session;
use crate::event::{Event, EventKind, LostEvents, NewEvent, GENESIS_HASH};
use crate::run::RunId;
use crate::store::{commit_time, ChainHead, StoreError};

/// What a salvage did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalvageReport {
    /// The new store.
    pub to: PathBuf,
    /// Events carried over.
    pub carried: u64,
    /// Runs carried over.
    pub runs: u64,
    /// What could not be carried, by seq in the damaged store.
    pub lost: Vec<LostEvents>,
    /// Records (or bytes, counted as one) after the journal's last whole commit, left out: a
    /// write that never finished (never acknowledged, as the next write would have cut it
    /// off), or a last commit damaged after it was written; the journal alone cannot tell.
    pub unfinished: u64,
    /// The new store's head: the `StoreSalvaged` event.
    pub head: ChainHead,
}

/// What the damaged journal yielded: the records to carry, in order, and what was lost.
struct Read {
    records: Vec<Record>,
    lost: Vec<LostEvents>,
    unfinished: u64,
}

/// Salvages the store in `from` into `to` (missing or empty), as `actor` at `now`.
pub(crate) fn salvage(
    from: &Path,
    options: &Options,
    to: &Path,
    actor: &str,
    now: jiff::Timestamp,
) -> Result<SalvageReport, StoreError> {
    if within(to, from)? {
        return Err(StoreError::NotAStore {
            location: to.display().to_string(),
            why: format!(
                "is inside the store it salvages ({}); a salvage writes to a new place and \
                 leaves the damaged store as it is",
                from.display()
            ),
        });
    }
    match inspect(to)? {
        Found::Missing | Found::Empty => {}
        Found::Store | Found::Other => {
            return Err(StoreError::NotAStore {
                location: to.display().to_string(),
                why: "is not empty; a salvage writes only into a missing or empty directory".into(),
            })
        }
    }
    let read = {
        // Writers wait while it reads, so no commit is half-read; the source is not changed.
        let _lock = lock_shared(from, options)?;
        read_all(&Journal::at(&from.join("journal"), options.segment_limit))?
    };
    create_store(to, options)?;
    let journal = Journal::open(&to.join("journal"), options.segment_limit)?;
    // Under the new store's lock, and only into an empty journal: two salvages into one
    // directory at once, or a command that got there first, must not mix their records.
    let lock = lock(to, options)?;
    if !journal.segments()?.is_empty() {
        return Err(StoreError::NotAStore {
            location: to.display().to_string(),
            why: "is not empty: something else wrote a store there meanwhile".into(),
        });
    }
    // Only now, owning the empty journal (a second salvage into `to` must not mark the
    // first one's finished store): until the last record is on disk, `to` is marked
    // half-written. A salvage stopped part-way (kill -9, power cut) leaves a shorter chain
    // that verifies on its own and lacks the loss record, so it must not pass for a store
    // (`inspect` refuses it).
    let marker = to.join(SALVAGING);
    journal::create_options(&marker)
        .write(true)
        .open(&marker)
        .and_then(|f| f.sync_all())
        .map_err(StoreError::io(&marker))?;
    journal::sync_dir(to)?;
    let mut out = BulkAppend::new(&journal);
    let mut prev = GENESIS_HASH.to_owned();
    let mut last_at = None;
    let mut runs = BTreeSet::new();
    let carried = read.records.len() as u64;
    let salvaged = Record {
        event: Event::seal(
            0,
            RunId(String::new()),
            now,
            NewEvent::new(
                actor,
                EventKind::StoreSalvaged {
                    from: from.display().to_string(),
                    carried,
                    lost: read.lost.clone(),
                },
            ),
            GENESIS_HASH,
        ),
        run: None,
        end: true,
    };
    for (i, mut record) in read.records.into_iter().chain([salvaged]).enumerate() {
        let old = record.event;
        let at = if old.run_id.as_str().is_empty() {
            commit_time(old.at, last_at)
        } else {
            old.at
        };
        runs.insert(old.run_id.clone());
        record.event = Event::seal(
            i as u64 + 1,
            old.run_id,
            at,
            NewEvent::new(old.actor, old.kind),
            &prev,
        );
        prev.clone_from(&record.event.hash);
        last_at = Some(at);
        out.push(&record)?;
    }
    out.finish()?;
    fs::remove_file(&marker).map_err(StoreError::io(&marker))?;
    journal::sync_dir(to)?;
    drop(lock);
    Session::build(to, options)?;
    runs.remove(&RunId(String::new()));
    Ok(SalvageReport {
        to: to.to_owned(),
        carried,
        runs: runs.len() as u64,
        lost: read.lost,
        unfinished: read.unfinished,
        head: ChainHead {
            seq: carried + 1,
            hash: prev,
        },
    })
}

/// Reads every record that can be trusted on its own: it decodes, passes its checksum, its
/// hash matches its content and its seq follows the last one read. Gaps in seq are the loss.
fn read_all(journal: &Journal) -> Result<Read, StoreError> {
    let mut records: Vec<Record> = Vec::new();
    let mut lost = Vec::new();
    let mut last_seq = 0;
    // Where unreadable bytes began since the last good record, to say where the loss was.
    let mut damage: Option<String> = None;
    let mut known: BTreeSet<RunId> = BTreeSet::new();
    let mut orphans: BTreeMap<RunId, Vec<u64>> = BTreeMap::new();
    let segments = journal.segments()?;
    let mut dangling = 0;
    for segment in segments {
        let path = journal.segment_path(segment);
        let buf = fs::read(&path).map_err(StoreError::io(&path))?;
        let mut at = 0;
        while at < buf.len() {
            let here = || format!("{} at byte {at}", path.display());
            match decode(&buf[at..]) {
                Decoded::Record(record, len) => {
                    let event = &record.event;
                    if event.seq <= last_seq || event.compute_hash() != event.hash {
                        damage.get_or_insert_with(|| {
                            format!("a record altered or out of order at {}", here())
                        });
                        at += len as usize;
                        continue;
                    }
                    if event.seq > last_seq + 1 {
                        lost.push(LostEvents {
                            first: last_seq + 1,
                            last: event.seq - 1,
                            why: damage.take().unwrap_or_else(|| {
                                format!("missing from the journal before {}", here())
                            }),
                        });
                        // The commit the loss interrupted ends here: its end mark was lost.
                        if let Some(last) = records.last_mut() {
                            last.end = true;
                        }
                    }
                    damage = None;
                    last_seq = event.seq;
                    at += len as usize;
                    if let Some(RunUpdate::Created(run)) = &record.run {
                        known.insert(run.id.clone());
                    }
                    let run = record.event.run_id.clone();
                    let salvaged_before = run.as_str().is_empty();
                    if known.contains(&run) || salvaged_before {
                        records.push(*record);
                    } else {
                        // Its run's creation record was lost: nothing to attach it to.
                        orphans.entry(run).or_default().push(last_seq);
                        if record.end {
                            if let Some(last) = records.last_mut() {
                                last.end = true;
                            }
                        }
                    }
                }
                Decoded::End => break,
                Decoded::Torn | Decoded::Corrupt(_) => {
                    damage.get_or_insert_with(|| format!("unreadable bytes at {}", here()));
                    at += 1;
                }
            }
        }
        dangling = usize::from(damage.is_some());
    }
    // Records after the last end mark at the journal's end, and bytes that never formed a
    // record there, are a write that never finished: never acknowledged, not a loss.
    let mut unfinished = dangling as u64;
    while records.last().is_some_and(|r| !r.end) {
        records.pop();
        unfinished += 1;
    }
    for (run, seqs) in orphans {
        lost.push(LostEvents {
            first: seqs[0],
            last: seqs[seqs.len() - 1],
            why: format!(
                "{} event(s) of run {run}, whose creation record was lost",
                seqs.len()
            ),
        });
    }
    Ok(Read {
        records,
        lost,
        unfinished,
    })
}
