//! The default store: the journal is the truth, sled holds the state derived from it.
//!
//! Every operation takes the store's lock, opens sled, replays whatever the journal has that
//! sled has not applied, does its work and lets go, so commands hold the store only while they
//! read or commit. Writes go through a group commit (`group.rs`): commits that arrive while
//! one is syncing share the next `fdatasync` (the durability point). The session then applies
//! its commits to sled later, many per batch, together with the journal position they end at
//! (before any read, and when it closes); sled is never ahead of the journal and can always be
//! rebuilt from it. `docs/storage.md` walks through the crash points.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

mod dir;
mod error;
mod import;
mod index;
mod journal;
mod keys;
mod lock;
mod options;
mod replay;
mod salvage;
mod session;
mod verify;
mod witness;

pub use error::EmbeddedError;
pub use lock::{LockHolder, LockWait, StopWaiting, WaitNotice};
pub use options::{Options, DEFAULT_LOCK_TIMEOUT, DEFAULT_SEGMENT_LIMIT};
pub use salvage::SalvageReport;

use dir::{create_store, inspect, not_empty, Found};

use super::group::{GroupQueue, Ticket, Write, Written};
use index::Wanted;
use journal::{Journal, Pos, Tail};
use lock::{is_read_only, lock, lock_shared};
use replay::replay;
use session::{sled_err, Session};

use super::{
    sort_by_creation, BadEvent, ChainCheck, ChainHead, EventFilter, MemoryStore, RunFilter, Store,
    StoreError, TimeSource, VerifyReport,
};
use crate::event::Event;
use crate::run::{Run, RunId};

/// The journal + sled store in a directory. See the module docs.
///
/// One handle can be shared by many threads (`Arc<EmbeddedStore>`): their writes go through a
/// group commit (see `docs/storage.md`), so commits that arrive while another is syncing share
/// the next `fdatasync`.
#[derive(Debug)]
pub struct EmbeddedStore {
    dir: PathBuf,
    options: Options,
    /// Where commit times come from; the system clock unless [`EmbeddedStore::with_clock`].
    clock: Clock,
    /// Writes waiting for, or being written in, a group commit.
    queue: GroupQueue,
    /// A session kept open by [`EmbeddedStore::hold`]; `None` between one-shot operations.
    held: Mutex<Option<Session>>,
    /// Live [`Held`] guards; the session closes when the last one drops.
    holds: Mutex<usize>,
}

/// Keeps an [`EmbeddedStore`] locked and open until dropped (benchmarks, batch imports).
#[derive(Debug)]
pub struct Held<'a> {
    store: &'a EmbeddedStore,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut holds = self.store.holds.lock().unwrap_or_else(|p| p.into_inner());
        *holds = holds.saturating_sub(1);
        if *holds == 0 {
            let session = self.store.held().take();
            if let Some(mut session) = session {
                // A failure is logged; the journal has the commits and the next open replays.
                let _ = session.apply_pending();
            }
        }
    }
}

impl EmbeddedStore {
    /// Opens the store in `dir`, creating one if `dir` is missing or empty (what commands that
    /// start runs do). Never creates one in a file or in a non-empty directory that is not a
    /// store ([`StoreError::NotAStore`]). Does not keep the store locked: each operation locks
    /// it for its own duration.
    pub fn open(dir: impl AsRef<Path>) -> Result<EmbeddedStore, StoreError> {
        EmbeddedStore::open_with(dir, Options::default())
    }

    /// [`EmbeddedStore::open`] with non-default [`Options`].
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<EmbeddedStore, StoreError> {
        let dir = dir.as_ref().to_owned();
        match inspect(&dir)? {
            Found::Store => {}
            Found::Missing | Found::Empty => create_store(&dir, &options)?,
            Found::Other => return Err(not_empty(&dir)),
        }
        Ok(EmbeddedStore::new(dir, options))
    }

    /// Opens the store in `dir`, which must exist already: [`StoreError::NoStore`] otherwise.
    /// Touches nothing on disk (what every command that does not start a run uses).
    pub fn open_existing(dir: impl AsRef<Path>) -> Result<EmbeddedStore, StoreError> {
        EmbeddedStore::open_existing_with(dir, Options::default())
    }

    /// [`EmbeddedStore::open_existing`] with non-default [`Options`].
    pub fn open_existing_with(
        dir: impl AsRef<Path>,
        options: Options,
    ) -> Result<EmbeddedStore, StoreError> {
        let dir = dir.as_ref().to_owned();
        match inspect(&dir)? {
            Found::Store => Ok(EmbeddedStore::new(dir, options)),
            Found::Missing | Found::Empty | Found::Other => Err(StoreError::NoStore {
                location: dir.display().to_string(),
            }),
        }
    }

    fn new(dir: PathBuf, options: Options) -> EmbeddedStore {
        EmbeddedStore {
            dir,
            options,
            clock: Clock(None),
            queue: GroupQueue::default(),
            held: Mutex::new(None),
            holds: Mutex::new(0),
        }
    }

    /// Carries everything readable of this store, damaged or not, into a new store in `to`
    /// (missing or empty), recording what was lost as a `StoreSalvaged` event by `actor`. This
    /// store is not changed. See `salvage.rs` and `docs/storage.md`, "Salvage".
    pub fn salvage(&self, to: impl AsRef<Path>, actor: &str) -> Result<SalvageReport, StoreError> {
        salvage::salvage(
            &self.dir,
            &self.options,
            to.as_ref(),
            actor,
            self.clock.now(),
        )
    }

    /// Stamps commits with `clock` instead of the system time (tests, and benchmark fixtures
    /// that spread a history over a year). Commit times still never go backwards.
    pub fn with_clock(mut self, clock: TimeSource) -> EmbeddedStore {
        self.clock = Clock(Some(clock));
        self
    }

    /// Creates a store in `dir` (missing or empty) holding `runs` and `events` exactly as they
    /// are: a whole chain from seq 1, with seq, times, actors and hashes kept, each run as it
    /// ends up (`waygate store copy`). Refused for a directory that is not empty, or a chain
    /// that does not verify.
    pub fn import(
        dir: impl AsRef<Path>,
        options: Options,
        runs: &[Run],
        events: &[Event],
    ) -> Result<EmbeddedStore, StoreError> {
        import::import(dir.as_ref(), &options, runs, events)?;
        EmbeddedStore::open_existing_with(dir, options)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `writes` in order as one group commit (more may join it): each is checked and
    /// all-or-nothing on its own, exactly as if made one by one through [`Store`], and the
    /// whole group costs one `fdatasync`. For bulk imports and benchmark fixtures. Returns one
    /// result per write, in order.
    pub fn write_all(&self, writes: Vec<Write>) -> Vec<Result<Written, StoreError>> {
        self.submit(writes)
    }

    fn submit(&self, ops: Vec<Write>) -> Vec<Result<Written, StoreError>> {
        self.queue.submit(ops, |batch| {
            let tickets: Vec<Ticket> = batch.iter().map(|(t, _)| *t).collect();
            // Read under the lock, so that commits on one host are stamped in the order
            // they are made even when one waited for the lock.
            match self.with_session(|s| Ok(s.write_group(batch, self.clock.now()))) {
                Ok(results) => results,
                // The session did not open (lock timeout, damage): every write fails with it.
                Err(e) => tickets
                    .into_iter()
                    .map(|t| (t, Err(e.duplicate())))
                    .collect(),
            }
        })
    }

    /// Locks and opens the store until the returned guard (and any other from this handle)
    /// drops, so a run of operations pays for opening once. Other processes and handles wait
    /// (and time out) meanwhile.
    pub fn hold(&self) -> Result<Held<'_>, StoreError> {
        let mut holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        let mut held = self.held();
        if held.is_none() {
            *held = Some(Session::open(&self.dir, &self.options)?);
        }
        *holds += 1;
        Ok(Held { store: self })
    }

    fn held(&self) -> MutexGuard<'_, Option<Session>> {
        // Sessions are consistent between operations, so a poisoned lock is safe to reuse.
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with_session<T>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut held = self.held();
        if let Some(session) = held.as_mut() {
            let out = f(session);
            if session.poisoned {
                drop(held.take());
                *held = Session::open(&self.dir, &self.options).ok();
            }
            return out;
        }
        drop(held);
        let mut session = Session::open(&self.dir, &self.options)?;
        let out = f(&mut session);
        // Spares the next command a replay; a failure is logged and changes nothing durable.
        let _ = session.apply_pending();
        out
    }

    /// [`EmbeddedStore::with_session`] for reads: sled first takes in the session's pending
    /// commits, so reads see every acknowledged write. Without write access to the store (the
    /// lock file or sled cannot be opened for writing), `or` answers instead from the journal
    /// replayed into memory (`replay.rs`): reading needs no write access.
    fn read<T>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, StoreError>,
        or: impl FnOnce(&MemoryStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let out = self.with_session(|s| {
            s.apply_pending()?;
            f(s)
        });
        match out {
            Err(StoreError::NotWritable { .. }) => or(&replay(&self.dir, &self.options)?),
            Err(StoreError::Io { source, .. }) if is_read_only(&source) => {
                or(&replay(&self.dir, &self.options)?)
            }
            other => other,
        }
    }

    /// One run (with its events, as `wanted` says) from the read index (`index.rs`), without opening
    /// sled, under the shared lock: `None` when the index cannot answer for it, and the caller
    /// reads through sled, which also names any damage. Not while this handle holds the store:
    /// the held session answers then (its commits may not be in the index yet, and its
    /// exclusive lock shuts out a shared one).
    fn indexed(&self, id: &RunId, wanted: Wanted) -> Result<Option<(Run, Vec<Event>)>, StoreError> {
        if self.held().is_some() {
            return Ok(None);
        }
        let Some(_lock) = lock_shared(&self.dir, &self.options)? else {
            return Ok(None);
        };
        let journal = Journal::at(&self.dir.join("journal"), self.options.segment_limit);
        Ok(index::read_run(&self.dir, &journal, id, wanted))
    }

    /// Test hook: what the read index answers for run `id` (`None`: it cannot).
    #[doc(hidden)]
    pub fn read_from_index(&self, id: &RunId) -> Result<Option<(Run, Vec<Event>)>, StoreError> {
        self.indexed(id, Wanted::RunAndEvents)
    }

    /// Test hook: run `id` and its events read through sled, never from the read index.
    #[doc(hidden)]
    pub fn read_through_state(&self, id: &RunId) -> Result<(Run, Vec<Event>), StoreError> {
        self.read(
            |s| {
                let run = s
                    .get_run(id)?
                    .ok_or_else(|| StoreError::NotFound(id.clone()))?;
                Ok((run, s.read_events(id)?))
            },
            |m| m.load_run_with_events(id),
        )
    }

    /// Verifies the journal with a thread per core (at least two), up to `lengths`.
    fn verify_journal(
        &self,
        journal: &Journal,
        lengths: Option<&[(u32, u64)]>,
        expect: Option<&str>,
    ) -> Result<VerifyReport, StoreError> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        verify::verify(journal, threads, lengths, expect)
    }

    /// `verify`, read-only: the journal as it is (nothing cut off, nothing replayed into sled),
    /// up to where it ended when looked at under the lock, so appends made meanwhile are not
    /// judged half-written and the lock is held only for that look, not for the whole pass.
    /// The state's journal position, read at the same time, is the witness of a journal that
    /// lost its tail; a store whose state cannot be read (no write access) goes without it.
    fn verify_expecting(&self, expect: Option<&str>) -> Result<VerifyReport, StoreError> {
        let journal = Journal::at(&self.dir.join("journal"), self.options.segment_limit);
        let (lengths, recorded) = {
            let held = self.held();
            match held.as_ref() {
                Some(session) => (journal.lengths()?, Some(session.recorded())),
                None => {
                    drop(held);
                    let look = Session::look(&self.dir, &self.options)?;
                    (look.lengths, look.recorded)
                }
            }
        };
        let mut report = self.verify_journal(&journal, Some(&lengths), expect)?;
        let head = report.head.as_ref().map_or(0, |h| h.seq);
        if let Some(recorded) = recorded.filter(|r| *r > head) {
            if report.first_bad.is_none() {
                let first_missing = head + 1;
                report.first_bad = Some(BadEvent {
                    seq: first_missing,
                    problem: format!(
                        "missing: the journal ends after event {head}, but the state had recorded \
                         events up to {recorded}; events {first_missing} to {recorded} were removed"
                    ),
                    location: None,
                });
            }
        }
        Ok(report)
    }

    /// Test hook: the journal as it is (no catch-up, nothing cut off) verified by the parallel
    /// pass and by a plain sequential one, which must agree: `(parallel, sequential)`.
    #[doc(hidden)]
    pub fn verify_both_ways(
        &self,
        expect: Option<&str>,
    ) -> Result<(VerifyReport, VerifyReport), StoreError> {
        let _lock = lock(&self.dir, &self.options)?;
        let journal = Journal::open(&self.dir.join("journal"), self.options.segment_limit)?;
        Ok((
            self.verify_journal(&journal, None, expect)?,
            verify_sequential(&journal, expect)?,
        ))
    }
}

/// `verify` the simple way: one pass over the journal (the parallel pass's reference).
fn verify_sequential(journal: &Journal, expect: Option<&str>) -> Result<VerifyReport, StoreError> {
    let mut check = ChainCheck::new();
    let mut bad = None;
    let mut events = 0;
    let mut head: Option<ChainHead> = None;
    let mut found = None;
    // The chain as the last finished commit leaves it, and where the records after it start.
    let mut finished: (u64, Option<ChainHead>) = (0, None);
    let mut after_end: Option<Pos> = None;
    let tail = journal.read_from(Pos::START, |pos, record, _| {
        events += 1;
        match check.check(&record.event) {
            Ok(()) => {
                let here = ChainHead {
                    seq: record.event.seq,
                    hash: record.event.hash.clone(),
                };
                if found.is_none() && expect == Some(here.hash.as_str()) {
                    found = Some(here.seq);
                }
                if record.end {
                    finished = (events, Some(here.clone()));
                    after_end = None;
                } else if after_end.is_none() {
                    after_end = Some(pos);
                }
                head = Some(here);
                Ok(true)
            }
            Err(problem) => {
                let location = Some(location(journal, pos));
                bad = Some(BadEvent {
                    seq: record.event.seq,
                    problem,
                    location,
                });
                Ok(false)
            }
        }
    })?;
    let cut = match tail {
        Tail::Stopped => None,
        Tail::End(_) => after_end,
        Tail::Torn(pos) => Some(after_end.unwrap_or(pos)),
        Tail::Corrupt(pos, problem) => {
            events += 1;
            bad = Some(BadEvent {
                seq: check.next_seq(),
                problem,
                location: Some(location(journal, pos)),
            });
            None
        }
    };
    let mut report = VerifyReport {
        events,
        first_bad: bad,
        head,
        unfinished: None,
        reached: found,
    };
    if let Some(cut) = cut {
        (report.events, report.head) = finished;
        report.unfinished = Some(format!(
            "an unfinished write at {} (never acknowledged): the next write cuts it off",
            location(journal, cut)
        ));
        let last = report.head.as_ref().map_or(0, |h| h.seq);
        report.reached = found.filter(|seq| *seq <= last);
    }
    Ok(report)
}

/// The commit clock: the system time, or a [`TimeSource`].
#[derive(Clone)]
struct Clock(Option<TimeSource>);

impl Clock {
    fn now(&self) -> jiff::Timestamp {
        self.0.as_ref().map_or_else(jiff::Timestamp::now, |c| c())
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Clock(custom)"
        } else {
            "Clock(system)"
        })
    }
}

fn location(journal: &Journal, pos: Pos) -> String {
    format!(
        "{} at byte {}",
        journal.segment_path(pos.segment).display(),
        pos.offset
    )
}

impl Store for EmbeddedStore {
    /// Queues `op` for the next group commit and waits until it is durable (or failed).
    fn write(&self, op: Write) -> Result<Written, StoreError> {
        self.submit(vec![op]).pop().unwrap_or_else(|| {
            Err(StoreError::Embedded(EmbeddedError::State(
                "a write got no answer".into(),
            )))
        })
    }

    fn load_run(&self, id: &RunId) -> Result<Run, StoreError> {
        if let Some((run, _)) = self.indexed(id, Wanted::Run)? {
            return Ok(run);
        }
        self.read(
            |s| {
                s.get_run(id)?
                    .ok_or_else(|| StoreError::NotFound(id.clone()))
            },
            |m| m.load_run(id),
        )
    }

    fn load_run_with_events(&self, id: &RunId) -> Result<(Run, Vec<Event>), StoreError> {
        if let Some(found) = self.indexed(id, Wanted::RunAndEvents)? {
            return Ok(found);
        }
        self.read_through_state(id)
    }

    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
        self.read(
            |s| {
                let mut out = Vec::new();
                for entry in s.db.scan_prefix(keys::RUNS) {
                    let (_, bytes) = entry.map_err(sled_err)?;
                    let mut run: Run = serde_json::from_slice(&bytes).map_err(|e| {
                        StoreError::Embedded(EmbeddedError::State(format!(
                            "a run record is unreadable: {e}"
                        )))
                    })?;
                    if filter.matches(&run) {
                        s.fill_definition(&mut run)?;
                        out.push(run);
                    }
                }
                sort_by_creation(&mut out);
                Ok(out)
            },
            |m| m.list_runs(filter),
        )
    }

    fn run_events(&self, id: &RunId) -> Result<Vec<Event>, StoreError> {
        if let Some((_, events)) = self.indexed(id, Wanted::RunAndEvents)? {
            return Ok(events);
        }
        self.read(
            |s| {
                if s.get_run(id)?.is_none() {
                    return Err(StoreError::NotFound(id.clone()));
                }
                s.read_events(id)
            },
            |m| m.run_events(id),
        )
    }

    fn scan_events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        self.read(
            |s| {
                if let Some(id) = &filter.run {
                    let Some(run) = s.get_run(id)? else {
                        return Ok(Vec::new());
                    };
                    let mut events = s.read_events(id)?;
                    events.retain(|e| filter.matches(e, &run.workflow, &run.env));
                    return Ok(events);
                }
                let start = s.start_for(filter.since)?;
                let last_step_back = s.last_step_back()?;
                let mut runs: HashMap<RunId, Option<(String, String)>> = HashMap::new();
                let mut out = Vec::new();
                let journal = s.journal.clone();
                let tail = journal.read_from(start, |_, record, _| {
                    let event = record.event;
                    if filter.until.is_some_and(|until| event.at > until) {
                        // Times only grow after the last clock jump; before it, an earlier
                        // time may still follow.
                        let ordered_from_here = last_step_back.is_none_or(|j| event.seq >= j);
                        return Ok(!ordered_from_here);
                    }
                    if !runs.contains_key(&event.run_id) {
                        let run = s.get_run_record(&event.run_id)?;
                        runs.insert(event.run_id.clone(), run.map(|r| (r.workflow, r.env)));
                    }
                    let of = match runs.get(&event.run_id) {
                        Some(Some((workflow, env))) => Some((workflow.as_str(), env.as_str())),
                        // An event of the store itself (`StoreSalvaged`), of no run.
                        _ if event.run_id.as_str().is_empty() => Some(("", "")),
                        _ => None,
                    };
                    if of.is_some_and(|(workflow, env)| filter.matches(&event, workflow, env)) {
                        out.push(event);
                    }
                    Ok(true)
                })?;
                // Catch-up already cut off any torn write, so a bad record here is damage.
                let bad = match tail {
                    Tail::Corrupt(pos, detail) => Some((pos, detail)),
                    Tail::Torn(pos) => Some((pos, "last record fails its checksum".to_owned())),
                    Tail::End(_) | Tail::Stopped => None,
                };
                if let Some((pos, detail)) = bad {
                    return Err(StoreError::Embedded(EmbeddedError::Corrupt {
                        segment: journal.segment_path(pos.segment).display().to_string(),
                        offset: pos.offset,
                        seq: None,
                        detail,
                    }));
                }
                Ok(out)
            },
            |m| m.scan_events(filter),
        )
    }

    fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.verify_expecting(None)
    }

    fn verify_reaching(&self, expect_head: &str) -> Result<VerifyReport, StoreError> {
        self.verify_expecting(Some(expect_head))
    }
    fn holds_path(&self, path: &Path) -> Result<bool, StoreError> {
        dir::within(path, &self.dir)
    }
}
