//! A session: the embedded store locked, sled open and caught up with the journal.
//!
//! Opening one is where recovery happens: replay the journal records sled has not applied (up to
//! 1,024 whole commits per sled batch), cut off a torn tail that was never acknowledged, and
//! rebuild sled from the journal when it is missing, will not open, has another key layout or
//! disagrees with the journal. Writing happens here too: a group of writes is checked, sealed
//! and appended with one `fdatasync`, and kept pending (with an overlay that later writes
//! consult) until the session applies them to sled, many in one batch. Everything the embedded
//! store does, it does inside one session.

use super::error::EmbeddedError;
use std::collections::HashMap;
use std::fs::{self, File};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use super::lock::{lock, lock_shared};
use super::options::{Options, DEFAULT_LOCK_TIMEOUT};

use serde::{Deserialize, Serialize};

use super::index::Index;
use super::journal::{self, Journal, JournalPoint, Pos, Record, RunMove, RunUpdate, Tail};
use super::keys::{
    active_key, chunk_key, chunk_prefix, definition_key, run_key, seq_key, step_back_key, time_key,
    APPLIED, CHUNK, LAYOUT, SPARSE, STEP_BACKS, TIMES,
};
use super::witness;
use crate::event::Event;
use crate::run::{Run, RunId};
use crate::store::group::{Ticket, Write, Written};
use crate::store::{commit_time, rules, seal_all, stamp_new_run, ChainCheck, StoreError};

/// Catch-up applies this many replayed commits per sled batch.
const REPLAY_BATCH: usize = 1024;
/// A session applies its written commits to sled once this many are pending (and before any
/// read, and when it closes).
const APPLY_AFTER: usize = 1024;

/// Where sled's state stands in the journal: everything before `at.pos` is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Applied {
    /// Flattened: the fields stand at the top of `state/applied`'s JSON, as they always have.
    #[serde(flatten)]
    at: JournalPoint,
    last_at: Option<jiff::Timestamp>,
    /// The latest event time so far: what the `t:` index is keyed by, so that it stays in
    /// seq order when a clock jump steps the times back. (State written before this field
    /// had no step back, so its `last_at` is that time.)
    #[serde(default)]
    max_at: Option<jiff::Timestamp>,
    /// How sled's keys are laid out ([`LAYOUT`](super::keys::LAYOUT)); state of another layout is rebuilt.
    #[serde(default = "first_layout")]
    layout: u32,
}

fn first_layout() -> u32 {
    1
}

impl Default for Applied {
    fn default() -> Applied {
        Applied {
            at: JournalPoint::start(),
            last_at: None,
            max_at: None,
            layout: LAYOUT,
        }
    }
}

/// The store, locked and open, with sled caught up with the journal.
#[derive(Debug)]
pub(crate) struct Session {
    /// `state/applied`, see [`witness::write`].
    witness: std::path::PathBuf,
    /// Declared before the lock so sled is flushed and closed before the lock is released.
    pub(crate) db: StateDb,
    pub(crate) journal: Journal,
    applied: Applied,
    /// Where the next commit goes (the journal's end, past any empty trailing segment).
    tail: Pos,
    /// Set when sled may lag this session's idea of it; the session is then reopened.
    pub(crate) poisoned: bool,
    /// The journal's tail segment, open for appending while the session lasts.
    writer: Option<(u32, File)>,
    /// Where the next write goes in the chain: `applied`, plus the pending commits.
    chain: ChainTip,
    /// Commits written to the journal and not yet applied to sled ([`Session::apply_pending`]).
    pending: Vec<Pending>,
    /// The runs and environment holders as the pending commits leave them.
    overlay: Overlay,
    /// The read index beside sled (`index.rs`), kept up with sled whenever pending commits are applied.
    index: Index,
    lock: File,
}

/// sled, flushed when closed.
#[derive(Debug)]
pub(crate) struct StateDb(sled::Db);

impl std::ops::Deref for StateDb {
    type Target = sled::Db;

    fn deref(&self) -> &sled::Db {
        &self.0
    }
}

impl Drop for StateDb {
    fn drop(&mut self) {
        // Not a durability step (the journal is): it saves the next command a replay.
        if let Err(e) = self.0.flush() {
            tracing::warn!("flushing the store's state failed (the journal is intact): {e}");
        }
    }
}

pub(crate) fn sled_err(e: sled::Error) -> StoreError {
    StoreError::Embedded(EmbeddedError::State(e.to_string()))
}

/// Why sled did not open.
enum StateOpen {
    /// Another handle in this process still holds sled's own file lock: a session that just
    /// closed can leave sled's IO threads finishing for a moment. Worth waiting for.
    Busy(String),
    /// Missing position, unreadable files, a panic inside sled: rebuild.
    Unusable(String),
}

/// Opens sled at `path`, reading its journal position; panics inside sled count as unusable.
fn open_state(path: &Path) -> Result<(sled::Db, Option<Applied>), StateOpen> {
    let opened = catch_unwind(AssertUnwindSafe(|| -> Result<_, StateOpen> {
        let db = sled::Config::new()
            .path(path)
            .flush_every_ms(None)
            .open()
            .map_err(|e| {
                let text = e.to_string();
                if text.contains("could not acquire lock") {
                    StateOpen::Busy(text)
                } else {
                    StateOpen::Unusable(text)
                }
            })?;
        let unusable = |e: sled::Error| StateOpen::Unusable(e.to_string());
        let applied = match db.get(APPLIED).map_err(unusable)? {
            Some(bytes) => {
                let applied = serde_json::from_slice::<Applied>(&bytes).map_err(|e| {
                    StateOpen::Unusable(format!("unreadable journal position: {e}"))
                })?;
                if applied.layout != LAYOUT {
                    return Err(StateOpen::Unusable(format!(
                        "state has key layout {}, this waygate uses {LAYOUT}",
                        applied.layout
                    )));
                }
                Some(applied)
            }
            None if db.is_empty() => None,
            None => {
                return Err(StateOpen::Unusable(
                    "state has data but no journal position".into(),
                ))
            }
        };
        Ok((db, applied))
    }));
    opened.unwrap_or_else(|_| Err(StateOpen::Unusable("sled panicked while opening".into())))
}

/// [`open_state`], waiting up to `timeout` while sled is [`StateOpen::Busy`].
fn open_state_waiting(
    path: &Path,
    timeout: Duration,
) -> Result<(sled::Db, Option<Applied>), StateOpen> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        match open_state(path) {
            Err(StateOpen::Busy(_)) if start.elapsed() < timeout => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// What [`Session::look`] saw.
pub(crate) struct Look {
    /// Every journal segment and its length.
    pub(crate) lengths: Vec<(u32, u64)>,
    /// The last event the state had applied, when the state could be read.
    pub(crate) recorded: Option<u64>,
}

impl Session {
    /// A look at the store that changes nothing: under a shared lock (held only for the look;
    /// none when the lock file cannot be read), the journal's segment lengths and the last
    /// event the state had applied, from the witness file sled's batches leave beside it (so
    /// sled is not opened: opening it writes). No replay, nothing cut off.
    pub(crate) fn look(dir: &Path, options: &Options) -> Result<Look, StoreError> {
        let journal = Journal::at(&dir.join("journal"), options.segment_limit);
        let _lock = lock_shared(dir, options)?;
        let lengths = journal.lengths()?;
        let recorded = witness::witnessed(dir);
        Ok(Look { lengths, recorded })
    }

    /// The last event sled has applied.
    pub(crate) fn recorded(&self) -> u64 {
        self.applied.at.next_seq.saturating_sub(1)
    }

    /// Locks the store and opens it with sled caught up, rebuilding sled if need be.
    pub(crate) fn open(dir: &Path, options: &Options) -> Result<Session, StoreError> {
        let lock = lock(dir, options)?;
        let journal = Journal::open(&dir.join("journal"), options.segment_limit)?;
        let state = dir.join("state");
        journal::create_dir(&state)?;
        let opened = open_state_waiting(&state, options.lock_timeout.min(DEFAULT_LOCK_TIMEOUT));
        journal::tighten(&state);
        let (db, applied) = match opened {
            Ok(opened) => opened,
            Err(StateOpen::Busy(why)) => {
                return Err(StoreError::Embedded(EmbeddedError::State(why)))
            }
            Err(StateOpen::Unusable(why)) => {
                tracing::warn!(
                    "store state in {} is unusable ({why}); rebuilding it from the journal",
                    state.display()
                );
                return Session::rebuild(lock, journal, &state);
            }
        };
        if applied.is_none() && journal.segment_len(1)?.unwrap_or(0) > 0 {
            tracing::warn!(
                "store state in {} is missing; rebuilding it from the journal",
                state.display()
            );
        }
        let mut session = Session::new(lock, journal, db, applied.unwrap_or_default(), &state);
        match session.catch_up() {
            Ok(()) => Ok(session.with_index()),
            Err(StoreError::Embedded(EmbeddedError::State(why))) => {
                tracing::warn!(
                    "store state in {} disagrees with the journal ({why}); rebuilding it",
                    state.display()
                );
                let Session {
                    db, journal, lock, ..
                } = session;
                // Close sled before deleting its files.
                drop(db);
                Session::rebuild(lock, journal, &state)
            }
            Err(e) => Err(e),
        }
    }

    fn new(lock: File, journal: Journal, db: sled::Db, applied: Applied, state: &Path) -> Session {
        let chain = ChainTip::of(&applied);
        let index = Index::open(&journal.store_dir());
        Session {
            witness: witness::path_in(state),
            db: StateDb(db),
            journal,
            applied,
            tail: Pos::START,
            poisoned: false,
            writer: None,
            chain,
            pending: Vec::new(),
            overlay: Overlay::default(),
            index,
            lock,
        }
    }

    /// Builds the state of a store whose journal was just written whole (a salvage): replays
    /// it into a fresh sled, checking the chain on the way, and closes.
    pub(crate) fn build(dir: &Path, options: &Options) -> Result<(), StoreError> {
        let lock = lock(dir, options)?;
        let journal = Journal::open(&dir.join("journal"), options.segment_limit)?;
        Session::rebuild(lock, journal, &dir.join("state")).map(drop)
    }

    /// Deletes sled's files and replays the whole journal into a fresh sled.
    fn rebuild(lock: File, journal: Journal, state: &Path) -> Result<Session, StoreError> {
        match fs::remove_dir_all(state) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) if state.is_file() => fs::remove_file(state).map_err(StoreError::io(state))?,
            Err(e) => {
                return Err(StoreError::Io {
                    path: state.to_owned(),
                    source: e,
                })
            }
        }
        journal::create_dir(state)?;
        let (db, _) =
            open_state(state).map_err(|(StateOpen::Busy(why) | StateOpen::Unusable(why))| {
                StoreError::Embedded(EmbeddedError::State(why))
            })?;
        journal::tighten(state);
        let mut session = Session::new(lock, journal, db, Applied::default(), state);
        session.catch_up()?;
        Ok(session.with_index())
    }

    /// Brings the read index up to the journal's end (after catch-up, which cuts off a torn
    /// tail). A failure leaves readers reading through sled; the session goes on.
    fn with_index(mut self) -> Session {
        let store = self.journal.store_dir();
        self.index.catch_up(&store, &self.journal, self.tail);
        self
    }

    /// Replays journal records sled has not applied, many commits per sled batch, and cuts off a
    /// torn tail. A damaged record in the way is an error; the records before it stay usable.
    fn catch_up(&mut self) -> Result<(), StoreError> {
        let from = self.applied.at.pos;
        // sled is written only after the journal is synced, so it is never legitimately ahead:
        // a journal shorter than what sled applied lost acknowledged events.
        let recorded = self.applied.at.next_seq.saturating_sub(1);
        match self.journal.segment_len(from.segment)? {
            None if from != Pos::START => {
                return Err(StoreError::Embedded(EmbeddedError::JournalTruncated {
                    recorded,
                    detail: format!("journal segment {} is gone", from.segment),
                }))
            }
            Some(len) if len < from.offset => {
                return Err(StoreError::Embedded(EmbeddedError::JournalTruncated {
                    recorded,
                    detail: format!(
                        "journal segment {} is {len} bytes where the state had applied {}",
                        from.segment, from.offset
                    ),
                }))
            }
            _ => {}
        }
        let journal = self.journal.clone();
        let mut batch: Vec<(Pos, Record)> = Vec::new();
        let mut ready: Vec<Pending> = Vec::new();
        let mut chain = ChainCheck::resume(self.applied.at.next_seq, &self.applied.at.last_hash);
        let read = journal.read_from(from, |pos, record, next| {
            if batch
                .first()
                .is_some_and(|(first, _)| first.segment != pos.segment)
            {
                // Commits never span segments: an unfinished one followed by a new segment.
                return Err(StoreError::Embedded(EmbeddedError::Corrupt {
                    segment: journal.segment_path(pos.segment).display().to_string(),
                    offset: pos.offset,
                    seq: Some(record.event.seq),
                    detail: "the previous segment ends inside a commit".into(),
                }));
            }
            if let Err(detail) = chain.check(&record.event) {
                return Err(StoreError::Embedded(EmbeddedError::Corrupt {
                    segment: journal.segment_path(pos.segment).display().to_string(),
                    offset: pos.offset,
                    seq: Some(record.event.seq),
                    detail,
                }));
            }
            let end = record.end;
            batch.push((pos, record));
            if end {
                ready.push(Pending {
                    records: std::mem::take(&mut batch),
                    next,
                });
                if ready.len() >= REPLAY_BATCH {
                    self.apply_many(std::mem::take(&mut ready))?;
                    self.tail = self.applied.at.pos;
                }
            }
            Ok(true)
        });
        // Whatever came before a damaged record stays usable: apply it first.
        if !ready.is_empty() {
            self.apply_many(ready)?;
            self.tail = self.applied.at.pos;
        }
        let tail = read?;
        if batch.is_empty() {
            if let Tail::End(end) = tail {
                self.tail = end;
            }
        }
        let cut = match tail {
            Tail::End(_) => batch.first().map(|(pos, _)| *pos),
            Tail::Torn(pos) => Some(batch.first().map_or(pos, |(p, _)| *p)),
            Tail::Stopped => None,
            Tail::Corrupt(pos, detail) => {
                return Err(StoreError::Embedded(EmbeddedError::Corrupt {
                    segment: journal.segment_path(pos.segment).display().to_string(),
                    offset: pos.offset,
                    seq: Some(self.applied.at.next_seq),
                    detail,
                }))
            }
        };
        if let Some(cut) = cut {
            tracing::warn!(
                "cutting off an unfinished commit at the journal's end ({} byte {})",
                journal.segment_path(cut.segment).display(),
                cut.offset
            );
            journal.truncate(cut)?;
            self.tail = cut;
        }
        self.chain = ChainTip::of(&self.applied);
        Ok(())
    }

    /// Applies commits (already checked against the chain: replayed ones by catch-up, fresh
    /// ones sealed by this session) to sled in **one** batch, together with the journal
    /// position after the last: sled is then either before all of them or after all of them.
    fn apply_many(&mut self, commits: Vec<Pending>) -> Result<(), StoreError> {
        if commits.is_empty() {
            return Ok(());
        }
        let mut writes = sled::Batch::default();
        let mut applied = self.applied.clone();
        let mut chunks: HashMap<RunId, Chunk> = HashMap::new();
        // Runs and environment holders as the commits so far leave them.
        let mut runs: HashMap<RunId, Run> = HashMap::new();
        let mut holders: HashMap<Vec<u8>, Vec<RunId>> = HashMap::new();
        for commit in commits {
            let mut update = None;
            for (pos, record) in commit.records {
                let event = &record.event;
                let chunk = loaded(&mut chunks, event.run_id.clone(), || {
                    self.last_chunk(&event.run_id)
                })?;
                chunk.push(&event.run_id, pos, &mut writes);
                if applied.last_at.is_some_and(|last| event.at < last) {
                    // A clock jump stepped the times back (docs/storage.md, Times and clocks).
                    writes.insert(step_back_key(event.seq).to_vec(), &[][..]);
                }
                let max_at = applied.max_at.or(applied.last_at).max(Some(event.at));
                if (event.seq - 1) % SPARSE == 0 {
                    writes.insert(seq_key(event.seq).to_vec(), pos.pack().to_vec());
                    writes.insert(time_key(max_at.unwrap_or(event.at), event.seq), &[][..]);
                }
                applied.at.next_seq = event.seq + 1;
                applied.at.last_hash.clone_from(&event.hash);
                applied.last_at = Some(event.at);
                applied.max_at = max_at;
                if let Some(change) = record.run {
                    update = Some((event.run_id.clone(), change));
                }
            }
            match update {
                Some((_, RunUpdate::Created(run))) => {
                    writes.insert(definition_key(run.id.as_str()), run.definition.as_bytes());
                    if !run.status.is_ended() {
                        for (key, _) in run.lock_keys().iter() {
                            let list =
                                loaded(&mut holders, active_key(key), || self.active_runs(key))?;
                            if !list.contains(&run.id) {
                                list.push(run.id.clone());
                            }
                        }
                    }
                    runs.insert(run.id.clone(), *run);
                }
                Some((id, RunUpdate::Changed(change))) => {
                    let mut run = match runs.remove(&id) {
                        Some(run) => run,
                        None => self.get_run_record(&id)?.ok_or_else(|| {
                            StoreError::Embedded(EmbeddedError::State(format!(
                                "journal moves run {id}, which state lacks"
                            )))
                        })?,
                    };
                    change.apply(&mut run);
                    if run.status.is_ended() {
                        for (key, _) in run.lock_keys().iter() {
                            let list =
                                loaded(&mut holders, active_key(key), || self.active_runs(key))?;
                            list.retain(|holder| *holder != id);
                        }
                    }
                    runs.insert(id, run);
                }
                None => {}
            }
            applied.at.pos = commit.next;
        }
        for (run, chunk) in chunks {
            chunk.finish(&run, &mut writes);
        }
        for (id, mut run) in runs {
            // The definition is under `d:`, written when the run was created.
            run.definition.clear();
            writes.insert(run_key(id.as_str()), to_json(&run)?);
        }
        for (key, list) in holders {
            if list.is_empty() {
                writes.remove(key);
            } else {
                writes.insert(key, holders_value(&list));
            }
        }
        writes.insert(APPLIED, to_json(&applied)?);
        self.db.apply_batch(writes).map_err(sled_err)?;
        witness::write(
            &self.witness,
            applied.at.next_seq.saturating_sub(1),
            &applied.at.last_hash,
        );
        self.applied = applied;
        Ok(())
    }

    /// Applies the commits this session has written but not yet applied to sled (one sled
    /// batch for all of them). Reads call it first; so does closing the session.
    pub(crate) fn apply_pending(&mut self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.pending);
        self.overlay = Overlay::default();
        self.index
            .apply_pending(pending.iter().map(|p| (&p.records[..], p.next)));
        if let Err(e) = self.apply_many(pending) {
            tracing::warn!("commits are durable but updating the store's state failed ({e}); the next command replays them");
            self.poisoned = true;
            return Err(e);
        }
        Ok(())
    }

    /// The last chunk of `run`'s event positions (an empty first one for a new run).
    fn last_chunk(&self, run: &RunId) -> Result<Chunk, StoreError> {
        let last = self.db.scan_prefix(chunk_prefix(run)).next_back();
        let Some(entry) = last else {
            return Ok(Chunk::default());
        };
        let (k, v) = entry.map_err(sled_err)?;
        let index = k
            .get(k.len().saturating_sub(4)..)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| {
                StoreError::Embedded(EmbeddedError::State(format!(
                    "run {run}'s event list is damaged"
                )))
            })?;
        Ok(Chunk {
            index,
            bytes: v.to_vec(),
            dirty: false,
        })
    }

    /// The run, its pinned definition included.
    pub(crate) fn get_run(&self, id: &RunId) -> Result<Option<Run>, StoreError> {
        let Some(mut run) = self.get_run_record(id)? else {
            return Ok(None);
        };
        self.fill_definition(&mut run)?;
        Ok(Some(run))
    }

    /// The run as `r:` holds it: without its definition.
    pub(crate) fn get_run_record(&self, id: &RunId) -> Result<Option<Run>, StoreError> {
        match self.db.get(run_key(id.as_str())).map_err(sled_err)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                StoreError::Embedded(EmbeddedError::State(format!("run {id} is unreadable: {e}")))
            }),
            None => Ok(None),
        }
    }

    /// Puts back the definition of a run read from `r:`.
    pub(crate) fn fill_definition(&self, run: &mut Run) -> Result<(), StoreError> {
        let definition = self
            .db
            .get(definition_key(run.id.as_str()))
            .map_err(sled_err)?
            .ok_or_else(|| {
                StoreError::Embedded(EmbeddedError::State(format!(
                    "run {}'s definition is missing",
                    run.id
                )))
            })?;
        run.definition = String::from_utf8(definition.to_vec()).map_err(|_| {
            StoreError::Embedded(EmbeddedError::State(format!(
                "run {}'s definition is not UTF-8",
                run.id
            )))
        })?;
        Ok(())
    }

    /// The unended runs holding the lock with this key (one of [`Run::lock_keys`]), as sled
    /// says, oldest first: one, or none; more only from a journal written before layout 4
    /// ([`super::keys::active_key`]).
    pub(crate) fn active_runs(&self, lock_key: &str) -> Result<Vec<RunId>, StoreError> {
        let holders = self.db.get(active_key(lock_key)).map_err(sled_err)?;
        Ok(holders.map_or_else(Vec::new, |h| {
            String::from_utf8_lossy(&h)
                .split(HOLDERS_SEPARATOR)
                .filter(|id| !id.is_empty())
                .map(|id| RunId(id.to_owned()))
                .collect()
        }))
    }

    /// Writes a group of queued writes (see [`super::group`]): checks each on its own against
    /// the state as the writes before it in the group leave it, seals and encodes the ones
    /// that pass, and appends them all with one `fdatasync`. They are then pending: sled
    /// learns of them in one batch with others ([`Session::apply_pending`]). Every ticket gets
    /// an answer; a failed append fails every write of the group.
    pub(crate) fn write_group(
        &mut self,
        batch: Vec<(Ticket, Write)>,
        now: jiff::Timestamp,
    ) -> Vec<(Ticket, Result<Written, StoreError>)> {
        let at = commit_time(now, self.chain.last_at);
        let mut chain = self.chain.clone();
        let mut group = Overlay::default();
        let mut out = Vec::with_capacity(batch.len());
        let mut staged = Vec::with_capacity(batch.len());
        let mut encoded = Vec::new();
        for (ticket, op) in batch {
            match self.stage(op, at, &mut chain, &mut group) {
                Ok((stage, bytes)) => {
                    encoded.extend(bytes);
                    staged.push((ticket, stage));
                }
                Err(e) => out.push((ticket, Err(e))),
            }
        }
        if staged.is_empty() {
            return out;
        }
        let (positions, end) = match self.journal.append(self.tail, &encoded, &mut self.writer) {
            Ok(appended) => appended,
            Err(e) => {
                out.extend(staged.into_iter().map(|(t, _)| (t, Err(e.duplicate()))));
                return out;
            }
        };
        // Durable from here on. sled learns of these commits later, in one batch with others
        // (`apply_pending`): until then the session's overlay answers for them, and if sled never
        // learns (a crash, a sled failure), the next open replays them from the journal.
        self.tail = end;
        self.chain = chain;
        self.overlay.absorb(group);
        let mut positions = positions.into_iter();
        for (ticket, Staged { records, written }) in staged {
            let mine: Vec<Pos> = positions.by_ref().take(records.len()).collect();
            let next = positions.as_slice().first().copied().unwrap_or(end);
            self.pending.push(Pending {
                records: mine.into_iter().zip(records).collect(),
                next,
            });
            out.push((ticket, Ok(written)));
        }
        if self.pending.len() >= APPLY_AFTER {
            // A failure is logged and marks the session for reopening; the writes stand.
            let _ = self.apply_pending();
        }
        out
    }

    /// Checks one write against the state (and the group's earlier writes, in `group`), then
    /// seals and encodes it after `chain`, which moves on.
    fn stage(
        &self,
        op: Write,
        at: jiff::Timestamp,
        chain: &mut ChainTip,
        group: &mut Overlay,
    ) -> Result<(Staged, Vec<Vec<u8>>), StoreError> {
        let overlay = Layered {
            group,
            session: &self.overlay,
        };
        let (id, events, run) = match op {
            Write::Create { run, events } => {
                let mut run = *run;
                let exists = overlay.run(self, &run.id)?.is_some();
                let holder = |key: &str| overlay.active(self, key);
                rules::check_create(&run, exists, holder, &events)?;
                stamp_new_run(&mut run, at);
                (run.id.clone(), events, Some((run, RunWrite::Created)))
            }
            Write::Commit(commit) => {
                let current = overlay.run(self, &commit.id)?;
                let (run, events) = commit.apply(current, at)?;
                (run.id.clone(), events, Some((run, RunWrite::Changed)))
            }
            Write::Append { id, events } => {
                rules::check_append(&id, overlay.run(self, &id)?.as_ref(), &events)?;
                (id, events, None)
            }
        };
        let sealed = seal_all(events, &id, at, chain.next_seq, &chain.last_hash);
        let mut update = run.as_ref().map(|(run, how)| match how {
            RunWrite::Created => RunUpdate::Created(Box::new(run.clone())),
            RunWrite::Changed => RunUpdate::Changed(RunMove::of(run)),
        });
        let last = sealed.len() - 1;
        let records: Vec<Record> = sealed
            .iter()
            .enumerate()
            .map(|(i, event)| Record {
                event: event.clone(),
                run: if i == last { update.take() } else { None },
                end: i == last,
            })
            .collect();
        let encoded = records
            .iter()
            .map(journal::encode)
            .collect::<Result<Vec<_>, _>>()?;
        // Passed: the group's later writes see this one.
        chain.next_seq += sealed.len() as u64;
        chain.last_hash.clone_from(&sealed[last].hash);
        chain.last_at = Some(at);
        let run = match run {
            Some((run, how)) => {
                let holders = holders_after(&overlay, self, &run, how)?;
                group.moved(&run, holders);
                Some(run)
            }
            None => None,
        };
        Ok((
            Staged {
                records,
                written: (run, sealed),
            },
            encoded,
        ))
    }

    pub(crate) fn read_events(&self, run: &RunId) -> Result<Vec<Event>, StoreError> {
        let damaged = || {
            StoreError::Embedded(EmbeddedError::State(format!(
                "run {run}'s event list is damaged"
            )))
        };
        let mut positions = Vec::new();
        for chunk in self.db.scan_prefix(chunk_prefix(run)) {
            let (_, list) = chunk.map_err(sled_err)?;
            for packed in list.chunks(12) {
                positions.push(Pos::unpack(packed).ok_or_else(damaged)?);
            }
        }
        let mut out = Vec::with_capacity(positions.len());
        for record in self.journal.read_many(&positions)? {
            if record.event.run_id != *run {
                return Err(damaged());
            }
            out.push(record.event);
        }
        Ok(out)
    }

    /// The last event whose time is earlier than the one before it (a clock jump), if any:
    /// after it, times only grow, so a scan up to a time may stop at the first one past it.
    pub(crate) fn last_step_back(&self) -> Result<Option<u64>, StoreError> {
        let Some(entry) = self.db.scan_prefix(STEP_BACKS).next_back() else {
            return Ok(None);
        };
        let (k, _) = entry.map_err(sled_err)?;
        let seq = k.get(2..).and_then(|s| <[u8; 8]>::try_from(s).ok());
        seq.map(u64::from_be_bytes).map(Some).ok_or_else(|| {
            StoreError::Embedded(EmbeddedError::State("bad clock-jump index".into()))
        })
    }

    /// Where to start reading for events at or after `since`: the last sparse entry before it.
    /// The index is keyed by the latest time up to each entry, so every event before the
    /// entry is earlier than `since` even where a clock jump stepped times back.
    pub(crate) fn start_for(&self, since: Option<jiff::Timestamp>) -> Result<Pos, StoreError> {
        let Some(since) = since else {
            return Ok(Pos::START);
        };
        let bound = time_key(since, 0);
        let Some(entry) = self.db.range(TIMES.to_vec()..bound).next_back() else {
            return Ok(Pos::START);
        };
        let (k, _) = entry.map_err(sled_err)?;
        let seq = k
            .get(k.len().saturating_sub(8)..)
            .and_then(|s| s.try_into().ok());
        let seq =
            u64::from_be_bytes(seq.ok_or_else(|| {
                StoreError::Embedded(EmbeddedError::State("bad time index".into()))
            })?);
        let pos = self.db.get(seq_key(seq)).map_err(sled_err)?;
        pos.as_deref().and_then(Pos::unpack).ok_or_else(|| {
            StoreError::Embedded(EmbeddedError::State(format!("seq index lacks {seq}")))
        })
    }
}

/// The chunk of a run's event positions that a commit adds to.
#[derive(Debug, Default)]
struct Chunk {
    index: u32,
    bytes: Vec<u8>,
    dirty: bool,
}

impl Chunk {
    /// Adds `pos`, writing the chunk out and starting the next one when it is full.
    fn push(&mut self, run: &RunId, pos: Pos, writes: &mut sled::Batch) {
        if self.bytes.len() >= CHUNK * 12 {
            self.finish(run, writes);
            self.index += 1;
            self.bytes.clear();
        }
        self.bytes.extend_from_slice(&pos.pack());
        self.dirty = true;
    }

    /// Writes the chunk into `writes` if it changed.
    fn finish(&self, run: &RunId, writes: &mut sled::Batch) {
        if self.dirty {
            writes.insert(chunk_key(run, self.index), self.bytes.clone());
        }
    }
}

/// A whole commit in the journal, waiting to be applied to sled, and the position after it.
#[derive(Debug)]
struct Pending {
    records: Vec<(Pos, Record)>,
    next: Pos,
}

/// The tip of the hash chain: where the next write goes (ahead of sled's `m:applied` while
/// commits are pending). Not a verifier ([`ChainCheck`]) nor a report's head
/// ([`crate::store::ChainHead`]).
#[derive(Debug, Clone)]
struct ChainTip {
    next_seq: u64,
    last_hash: String,
    last_at: Option<jiff::Timestamp>,
}

impl ChainTip {
    fn of(applied: &Applied) -> ChainTip {
        ChainTip {
            next_seq: applied.at.next_seq,
            last_hash: applied.at.last_hash.clone(),
            last_at: applied.last_at,
        }
    }
}

/// A group's overlay over the session's (pending commits) over sled.
struct Layered<'a> {
    group: &'a Overlay,
    session: &'a Overlay,
}

impl Layered<'_> {
    fn run(&self, session: &Session, id: &RunId) -> Result<Option<Run>, StoreError> {
        match self
            .group
            .runs
            .get(id)
            .or_else(|| self.session.runs.get(id))
        {
            Some(run) => Ok(Some(run.clone())),
            None => session.get_run(id),
        }
    }

    /// The unended runs holding `lock_key` (see [`Session::active_runs`]).
    fn holders(&self, session: &Session, lock_key: &str) -> Result<Vec<RunId>, StoreError> {
        match self
            .group
            .active
            .get(lock_key)
            .or_else(|| self.session.active.get(lock_key))
        {
            Some(holders) => Ok(holders.clone()),
            None => session.active_runs(lock_key),
        }
    }

    /// The unended run holding `lock_key`, the oldest if a journal written before layout 4
    /// left more than one.
    fn active(&self, session: &Session, lock_key: &str) -> Result<Option<RunId>, StoreError> {
        Ok(self.holders(session, lock_key)?.into_iter().next())
    }
}

/// The value of `key` in `map`, read with `load` the first time a batch asks for it.
fn loaded<K: std::hash::Hash + Eq, V>(
    map: &mut HashMap<K, V>,
    key: K,
    load: impl FnOnce() -> Result<V, StoreError>,
) -> Result<&mut V, StoreError> {
    Ok(match map.entry(key) {
        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => v.insert(load()?),
    })
}

/// The holders of each of `run`'s lock keys once it is written: a new unended run joins them,
/// and a run that has ended leaves them. A key keeps being held while any unended run holds it,
/// so of two runs of one pair that a journal written before layout 4 has both unended, the
/// first to end leaves the pair to the other.
fn holders_after(
    overlay: &Layered<'_>,
    session: &Session,
    run: &Run,
    how: RunWrite,
) -> Result<Vec<(String, Vec<RunId>)>, StoreError> {
    let mut out = Vec::new();
    for (key, _) in run.lock_keys().iter() {
        let mut holders = overlay.holders(session, key)?;
        match (how, run.status.is_ended()) {
            (RunWrite::Created, false) => holders.push(run.id.clone()),
            (RunWrite::Changed, true) => holders.retain(|holder| *holder != run.id),
            (RunWrite::Created, true) | (RunWrite::Changed, false) => continue,
        }
        out.push((key.to_owned(), holders));
    }
    Ok(out)
}

/// Between the holders of one `a:` key in sled (a run id has no line break).
const HOLDERS_SEPARATOR: char = '\n';

/// The `a:` value of these holders.
fn holders_value(holders: &[RunId]) -> Vec<u8> {
    holders
        .iter()
        .map(RunId::as_str)
        .collect::<Vec<_>>()
        .join(&HOLDERS_SEPARATOR.to_string())
        .into_bytes()
}

/// What a write did to its run: the journal records a new run whole and a change as a move,
/// and only a new run can take an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunWrite {
    Created,
    Changed,
}

/// A write that passed its checks, sealed, waiting for the group's append.
#[derive(Debug)]
struct Staged {
    records: Vec<Record>,
    written: Written,
}

/// What the writes of a group before this one did, as [`Session::stage`] must see it.
#[derive(Debug, Default)]
struct Overlay {
    runs: HashMap<RunId, Run>,
    /// By the keys of [`Run::lock_keys`]: the unended runs holding each.
    active: HashMap<String, Vec<RunId>>,
}

impl Overlay {
    /// Takes in what a group that is now durable did.
    fn absorb(&mut self, group: Overlay) {
        self.runs.extend(group.runs);
        self.active.extend(group.active);
    }

    /// Records `run` as a write of the group left it, with the holders of its lock keys after
    /// it ([`holders_after`]).
    fn moved(&mut self, run: &Run, holders: Vec<(String, Vec<RunId>)>) {
        self.active.extend(holders);
        self.runs.insert(run.id.clone(), run.clone());
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Embedded(EmbeddedError::State(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_keeps_its_json_layout() {
        // `state/applied` as the store has always written it: the journal point's fields at
        // the top, next to the others.
        let written = format!(
            r#"{{"pos":{{"segment":2,"offset":77}},"next_seq":9,"last_hash":"ab","last_at":null,"max_at":null,"layout":{LAYOUT}}}"#
        );
        let applied: Applied = serde_json::from_str(&written).expect("reads");
        assert_eq!(
            applied.at,
            JournalPoint {
                pos: Pos {
                    segment: 2,
                    offset: 77
                },
                next_seq: 9,
                last_hash: "ab".into(),
            }
        );
        assert_eq!(serde_json::to_string(&applied).expect("json"), written);
        // State written before `max_at` and `layout` existed still reads, as layout 1.
        let oldest =
            r#"{"pos":{"segment":1,"offset":0},"next_seq":1,"last_hash":"00","last_at":null}"#;
        let applied: Applied = serde_json::from_str(oldest).expect("reads");
        assert_eq!((applied.at.next_seq, applied.layout), (1, 1));
    }
}
