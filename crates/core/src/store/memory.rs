//! An in-memory [`Store`] with the embedded store's semantics, for unit tests of the executor
//! and the CLI: same conflicts, same environment lock, same hash chain, nothing on disk.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    commit_time, rules, seal_all, sort_by_creation, stamp_new_run, ChainCheck, Commit, EventFilter,
    RunFilter, Store, StoreError, VerifyReport, Write, Written,
};
use crate::event::{Event, NewEvent, GENESIS_HASH};
use crate::run::{Run, RunId};

/// Where a [`MemoryStore`] reads the time, so tests can drive it with a paused clock.
pub type TimeSource = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// A [`Store`] in memory. Cloning is not offered: share it behind an `Arc`.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    clock: Option<TimeSource>,
    runs: BTreeMap<RunId, Run>,
    /// The unended run holding each lock, by the keys of [`Run::lock_keys`].
    active: HashMap<String, RunId>,
    events: Vec<Event>,
}

impl Inner {
    fn last_hash(&self) -> String {
        self.events
            .last()
            .map_or_else(|| GENESIS_HASH.to_owned(), |e| e.hash.clone())
    }

    /// The time the next write is stamped with.
    fn now(&self) -> jiff::Timestamp {
        let now = self
            .clock
            .as_ref()
            .map_or_else(jiff::Timestamp::now, |c| c());
        commit_time(now, self.events.last().map(|e| e.at))
    }

    fn seal(&mut self, run: &RunId, events: Vec<NewEvent>, at: jiff::Timestamp) -> Vec<Event> {
        let next = self.events.len() as u64 + 1;
        let sealed = seal_all(events, run, at, next, &self.last_hash());
        self.events.extend(sealed.iter().cloned());
        sealed
    }

    fn create(&mut self, mut run: Run, events: Vec<NewEvent>) -> Result<Written, StoreError> {
        let holder = |key: &str| Ok(self.active.get(key).cloned());
        rules::check_create(&run, self.runs.contains_key(&run.id), holder, &events)?;
        let id = run.id.clone();
        let at = self.now();
        let sealed = self.seal(&id, events, at);
        stamp_new_run(&mut run, at);
        if !run.status.is_ended() {
            for (key, _) in run.lock_keys().iter() {
                self.active.insert(key.to_owned(), id.clone());
            }
        }
        self.runs.insert(id, run.clone());
        Ok((Some(run), sealed))
    }

    fn commit(&mut self, commit: Commit) -> Result<Written, StoreError> {
        let id = commit.id.clone();
        let at = self.now();
        let (run, events) = commit.apply(self.runs.get(&id).cloned(), at)?;
        let sealed = self.seal(&id, events, at);
        if run.status.is_ended() {
            for (key, _) in run.lock_keys().iter() {
                if self.active.get(key) == Some(&id) {
                    self.active.remove(key);
                }
            }
        }
        self.runs.insert(id, run.clone());
        Ok((Some(run), sealed))
    }

    fn append(&mut self, id: &RunId, events: Vec<NewEvent>) -> Result<Written, StoreError> {
        rules::check_append(id, self.runs.get(id), &events)?;
        let at = self.now();
        Ok((None, self.seal(id, events, at)))
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// An empty store that stamps events with `clock` instead of the system time.
    pub fn with_clock(clock: TimeSource) -> MemoryStore {
        let store = MemoryStore::default();
        store.lock().clock = Some(clock);
        store
    }

    /// A store holding `runs` and `events` as they are (a journal replayed by a reader without
    /// write access, `embedded/replay.rs`): nothing is stamped or sealed again.
    pub(crate) fn restored(runs: BTreeMap<RunId, Run>, events: Vec<Event>) -> MemoryStore {
        let mut active = HashMap::new();
        for run in runs.values().filter(|r| !r.status.is_ended()) {
            for (key, _) in run.lock_keys().iter() {
                active.insert(key.to_owned(), run.id.clone());
            }
        }
        MemoryStore {
            inner: Mutex::new(Inner {
                clock: None,
                runs,
                active,
                events,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every write is one step), so
        // a poisoned lock is safe to keep using.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Test hook: replace event `seq`'s actor without fixing its hash, to exercise `verify`.
    #[doc(hidden)]
    pub fn tamper_actor(&self, seq: u64, actor: &str) {
        let mut inner = self.lock();
        if let Some(event) = inner.events.iter_mut().find(|e| e.seq == seq) {
            event.actor = actor.to_owned();
        }
    }
}

impl Store for MemoryStore {
    fn write(&self, write: Write) -> Result<Written, StoreError> {
        let mut inner = self.lock();
        match write {
            Write::Create { run, events } => inner.create(*run, events),
            Write::Commit(commit) => inner.commit(commit),
            Write::Append { id, events } => inner.append(&id, events),
        }
    }

    fn load_run(&self, id: &RunId) -> Result<Run, StoreError> {
        self.lock()
            .runs
            .get(id)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(id.clone()))
    }

    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
        let mut runs: Vec<Run> = self
            .lock()
            .runs
            .values()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect();
        sort_by_creation(&mut runs);
        Ok(runs)
    }

    fn run_events(&self, id: &RunId) -> Result<Vec<Event>, StoreError> {
        let inner = self.lock();
        if !inner.runs.contains_key(id) {
            return Err(StoreError::NotFound(id.clone()));
        }
        Ok(inner
            .events
            .iter()
            .filter(|e| e.run_id == *id)
            .cloned()
            .collect())
    }

    fn load_run_with_events(&self, id: &RunId) -> Result<(Run, Vec<Event>), StoreError> {
        let inner = self.lock();
        let run = inner
            .runs
            .get(id)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let events = inner
            .events
            .iter()
            .filter(|e| e.run_id == *id)
            .cloned()
            .collect();
        Ok((run, events))
    }

    fn scan_events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        let inner = self.lock();
        let mut out = Vec::new();
        for event in &inner.events {
            let (workflow, env) = match inner.runs.get(&event.run_id) {
                Some(run) => (run.workflow.as_str(), run.env.as_str()),
                // An event of the store itself (`StoreSalvaged`), of no run.
                None if event.run_id.as_str().is_empty() => ("", ""),
                None => continue,
            };
            if filter.matches(event, workflow, env) {
                out.push(event.clone());
            }
        }
        Ok(out)
    }

    fn verify(&self) -> Result<VerifyReport, StoreError> {
        let inner = self.lock();
        let mut check = ChainCheck::new();
        for (i, event) in inner.events.iter().enumerate() {
            if let Err(problem) = check.check(event) {
                let first_bad = super::BadEvent {
                    seq: event.seq,
                    problem,
                    location: None,
                };
                return Ok(VerifyReport {
                    events: i as u64 + 1,
                    first_bad: Some(first_bad),
                    head: i.checked_sub(1).map(|p| head_of(&inner.events[p])),
                    ..VerifyReport::default()
                });
            }
        }
        Ok(VerifyReport {
            events: inner.events.len() as u64,
            head: inner.events.last().map(head_of),
            ..VerifyReport::default()
        })
    }
}

fn head_of(event: &Event) -> super::ChainHead {
    super::ChainHead {
        seq: event.seq,
        hash: event.hash.clone(),
    }
}
