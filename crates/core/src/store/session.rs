//! A session: the embedded store locked, sled open and caught up with the journal.
//!
//! Opening one is where recovery happens: replay the journal records sled has not applied (one
//! sled batch per commit), cut off a torn tail that was never acknowledged, and rebuild sled from
//! the journal when it is missing, will not open or disagrees with the journal. Everything the
//! embedded store does, it does inside one session.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use super::embedded::Options;

use serde::{Deserialize, Serialize};

use super::journal::{self, Journal, Pos, Record, RunUpdate, Tail};
use super::{commit_time, seal_all, ChainCheck, StoreError};
use crate::event::{Event, NewEvent, GENESIS_HASH};
use crate::run::{Run, RunId};

/// Every this many events, the seq→position and time→seq indexes get an entry.
const SPARSE: u64 = 256;
const APPLIED: &[u8] = b"m:applied";

/// Takes `DIR/LOCK` (flock, exclusive), retrying with backoff for up to `timeout`.
pub(crate) fn lock(dir: &Path, timeout: Duration) -> Result<File, StoreError> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(StoreError::io(&path))?;
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        // SAFETY: flock on a descriptor we own, kept open by `file`; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(file);
        }
        let err = std::io::Error::last_os_error();
        let busy = err.raw_os_error() == Some(libc::EWOULDBLOCK)
            || err.raw_os_error() == Some(libc::EINTR);
        if !busy {
            return Err(StoreError::Io { path, source: err });
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(StoreError::Locked {
                dir: dir.to_owned(),
                waited,
            });
        }
        std::thread::sleep(delay.min(timeout - waited));
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Where sled's state stands in the journal: everything before `pos` is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Applied {
    pos: Pos,
    next_seq: u64,
    last_hash: String,
    last_at: Option<jiff::Timestamp>,
}

impl Default for Applied {
    fn default() -> Applied {
        Applied {
            pos: Pos::START,
            next_seq: 1,
            last_hash: GENESIS_HASH.to_owned(),
            last_at: None,
        }
    }
}

/// The store, locked and open, with sled caught up with the journal.
#[derive(Debug)]
pub(crate) struct Session {
    /// Declared before the lock so sled is flushed and closed before the lock is released.
    pub(crate) db: StateDb,
    pub(crate) journal: Journal,
    applied: Applied,
    /// Where the next commit goes (the journal's end, past any empty trailing segment).
    tail: Pos,
    /// Set when sled may lag this session's idea of it; the session is then reopened.
    pub(crate) poisoned: bool,
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
    StoreError::State(e.to_string())
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
        let applied =
            match db.get(APPLIED).map_err(unusable)? {
                Some(bytes) => Some(serde_json::from_slice::<Applied>(&bytes).map_err(|e| {
                    StateOpen::Unusable(format!("unreadable journal position: {e}"))
                })?),
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

impl Session {
    /// Locks the store and opens it with sled caught up, rebuilding sled if need be.
    pub(crate) fn open(dir: &Path, options: &Options) -> Result<Session, StoreError> {
        let lock = lock(dir, options.lock_timeout)?;
        let journal = Journal::open(&dir.join("journal"), options.segment_limit)?;
        let state = dir.join("state");
        let (db, applied) = match open_state_waiting(&state, options.lock_timeout) {
            Ok(opened) => opened,
            Err(StateOpen::Busy(why)) => return Err(StoreError::State(why)),
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
        let mut session = Session::new(lock, journal, db, applied.unwrap_or_default());
        match session.catch_up() {
            Ok(()) => Ok(session),
            Err(StoreError::State(why)) => {
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

    fn new(lock: File, journal: Journal, db: sled::Db, applied: Applied) -> Session {
        Session {
            db: StateDb(db),
            journal,
            applied,
            tail: Pos::START,
            poisoned: false,
            lock,
        }
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
        let (db, _) = open_state(state)
            .map_err(|(StateOpen::Busy(why) | StateOpen::Unusable(why))| StoreError::State(why))?;
        let mut session = Session::new(lock, journal, db, Applied::default());
        session.catch_up()?;
        Ok(session)
    }

    /// Replays journal records sled has not applied, one sled batch per commit, and cuts off a
    /// torn tail. A damaged record in the way is an error; the records before it stay usable.
    fn catch_up(&mut self) -> Result<(), StoreError> {
        let from = self.applied.pos;
        match self.journal.segment_len(from.segment)? {
            None if from != Pos::START => {
                return Err(StoreError::State(format!(
                    "journal segment {} is gone",
                    from.segment
                )))
            }
            Some(len) if len < from.offset => {
                return Err(StoreError::State("state is ahead of the journal".into()))
            }
            _ => {}
        }
        let journal = self.journal.clone();
        let mut batch: Vec<(Pos, Record)> = Vec::new();
        let tail = journal.read_from(from, |pos, record, next| {
            if batch
                .first()
                .is_some_and(|(first, _)| first.segment != pos.segment)
            {
                // Commits never span segments: an unfinished one followed by a new segment.
                return Err(StoreError::Corrupt {
                    segment: journal.segment_path(pos.segment).display().to_string(),
                    offset: pos.offset,
                    seq: Some(record.event.seq),
                    detail: "the previous segment ends inside a commit".into(),
                });
            }
            let end = record.end;
            batch.push((pos, record));
            if end {
                self.apply(std::mem::take(&mut batch), next)?;
            }
            Ok(true)
        })?;
        let cut = match tail {
            Tail::End(end) => batch.first().map(|(pos, _)| *pos).or_else(|| {
                self.tail = end;
                None
            }),
            Tail::Torn(pos) => Some(batch.first().map_or(pos, |(p, _)| *p)),
            Tail::Stopped => None,
            Tail::Corrupt(pos, detail) => {
                return Err(StoreError::Corrupt {
                    segment: journal.segment_path(pos.segment).display().to_string(),
                    offset: pos.offset,
                    seq: Some(self.applied.next_seq),
                    detail,
                })
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
        Ok(())
    }

    /// Applies one commit's records to sled in one batch, with the position after them.
    fn apply(&mut self, batch: Vec<(Pos, Record)>, next: Pos) -> Result<(), StoreError> {
        let mut writes = sled::Batch::default();
        let mut applied = self.applied.clone();
        let mut locations: HashMap<RunId, Vec<u8>> = HashMap::new();
        let mut update = None;
        for (pos, record) in batch {
            let event = &record.event;
            let mut check = ChainCheck::resume(applied.next_seq, &applied.last_hash);
            if let Err(detail) = check.check(event) {
                return Err(StoreError::Corrupt {
                    segment: self.journal.segment_path(pos.segment).display().to_string(),
                    offset: pos.offset,
                    seq: Some(event.seq),
                    detail,
                });
            }
            let list = match locations.entry(event.run_id.clone()) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let old = self
                        .db
                        .get(key(b"e:", event.run_id.as_str()))
                        .map_err(sled_err)?;
                    v.insert(old.map(|o| o.to_vec()).unwrap_or_default())
                }
            };
            list.extend_from_slice(&pos.pack());
            if (event.seq - 1) % SPARSE == 0 {
                writes.insert(seq_key(event.seq).to_vec(), pos.pack().to_vec());
                writes.insert(time_key(event.at, event.seq), &[][..]);
            }
            applied.next_seq = event.seq + 1;
            applied.last_hash.clone_from(&event.hash);
            applied.last_at = Some(event.at);
            if let Some(change) = record.run {
                update = Some((event.run_id.clone(), change));
            }
        }
        for (run, list) in locations {
            writes.insert(key(b"e:", run.as_str()), list);
        }
        match update {
            Some((_, RunUpdate::Created(run))) => {
                writes.insert(key(b"r:", run.id.as_str()), to_json(&run)?);
                if !run.status.is_ended() {
                    writes.insert(
                        active_key(&run.workflow, &run.env),
                        run.id.as_str().as_bytes(),
                    );
                }
            }
            Some((id, RunUpdate::Changed(change))) => {
                let mut run = self.get_run(&id)?.ok_or_else(|| {
                    StoreError::State(format!("journal moves run {id}, which state lacks"))
                })?;
                change.apply(&mut run);
                writes.insert(key(b"r:", id.as_str()), to_json(&run)?);
                let active = active_key(&run.workflow, &run.env);
                let holder = self.db.get(&active).map_err(sled_err)?;
                if run.status.is_ended() && holder.as_deref() == Some(id.as_str().as_bytes()) {
                    writes.remove(active);
                }
            }
            None => {}
        }
        applied.pos = next;
        writes.insert(APPLIED, to_json(&applied)?);
        self.db.apply_batch(writes).map_err(sled_err)?;
        self.applied = applied;
        self.tail = next;
        Ok(())
    }

    pub(crate) fn get_run(&self, id: &RunId) -> Result<Option<Run>, StoreError> {
        match self.db.get(key(b"r:", id.as_str())).map_err(sled_err)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::State(format!("run {id} is unreadable: {e}"))),
            None => Ok(None),
        }
    }

    pub(crate) fn active_run(
        &self,
        workflow: &str,
        env: &str,
    ) -> Result<Option<RunId>, StoreError> {
        let holder = self.db.get(active_key(workflow, env)).map_err(sled_err)?;
        Ok(holder.map(|h| RunId(String::from_utf8_lossy(&h).into_owned())))
    }

    /// Seals `events` for `run`, appends them durably and applies them.
    pub(crate) fn write(
        &mut self,
        run: &RunId,
        events: Vec<NewEvent>,
        update: impl FnOnce(jiff::Timestamp) -> Option<RunUpdate>,
    ) -> Result<Vec<Event>, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Invalid(
                "a commit must record at least one event".into(),
            ));
        }
        let at = commit_time(jiff::Timestamp::now(), self.applied.last_at);
        let sealed = seal_all(
            events,
            run,
            at,
            self.applied.next_seq,
            &self.applied.last_hash,
        );
        let mut update = update(at);
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
        let (positions, next) = self.journal.append(self.tail, &encoded)?;
        // Durable from here on: a failure below only delays sled, which the next open fixes.
        if let Err(e) = self.apply(positions.into_iter().zip(records).collect(), next) {
            tracing::warn!("commit is durable but updating the store's state failed ({e}); the next command replays it");
            self.poisoned = true;
        }
        Ok(sealed)
    }

    pub(crate) fn read_events(&self, run: &RunId) -> Result<Vec<Event>, StoreError> {
        let damaged = || StoreError::State(format!("run {run}'s event list is damaged"));
        let list = self
            .db
            .get(key(b"e:", run.as_str()))
            .map_err(sled_err)?
            .unwrap_or_default();
        let positions = list
            .chunks(12)
            .map(Pos::unpack)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(damaged)?;
        let mut out = Vec::with_capacity(positions.len());
        for record in self.journal.read_many(&positions)? {
            if record.event.run_id != *run {
                return Err(damaged());
            }
            out.push(record.event);
        }
        Ok(out)
    }

    /// Where to start reading for events at or after `since`: the last sparse entry before it.
    pub(crate) fn start_for(&self, since: Option<jiff::Timestamp>) -> Result<Pos, StoreError> {
        let Some(since) = since else {
            return Ok(Pos::START);
        };
        let bound = time_key(since, 0);
        let Some(entry) = self.db.range(b"t:".to_vec()..bound).next_back() else {
            return Ok(Pos::START);
        };
        let (k, _) = entry.map_err(sled_err)?;
        let seq = k
            .get(k.len().saturating_sub(8)..)
            .and_then(|s| s.try_into().ok());
        let seq =
            u64::from_be_bytes(seq.ok_or_else(|| StoreError::State("bad time index".into()))?);
        let pos = self.db.get(seq_key(seq)).map_err(sled_err)?;
        pos.as_deref()
            .and_then(Pos::unpack)
            .ok_or_else(|| StoreError::State(format!("seq index lacks {seq}")))
    }
}

fn key(prefix: &[u8], id: &str) -> Vec<u8> {
    [prefix, id.as_bytes()].concat()
}

fn active_key(workflow: &str, env: &str) -> Vec<u8> {
    [b"a:", workflow.as_bytes(), b"\0", env.as_bytes()].concat()
}

fn seq_key(seq: u64) -> [u8; 10] {
    let mut out = [0; 10];
    out[..2].copy_from_slice(b"s:");
    out[2..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// `t:` ‖ nanoseconds since the epoch (sign bit flipped, so bytes sort as times) ‖ seq.
fn time_key(at: jiff::Timestamp, seq: u64) -> Vec<u8> {
    let nanos = (at.as_nanosecond() as u128) ^ (1 << 127);
    [&b"t:"[..], &nanos.to_be_bytes(), &seq.to_be_bytes()].concat()
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::State(e.to_string()))
}
