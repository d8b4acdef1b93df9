//! Where runs and the audit trail live: the [`Store`] trait and its implementations.
//!
//! Callers (the executor, the CLI) see only the trait, so a PostgreSQL backend can follow
//! without changing them. [`EmbeddedStore`] is the default: an append-only, checksummed,
//! hash-chained journal is the truth and sled holds the state derived from it (see
//! `docs/storage.md`). [`MemoryStore`] has the same semantics, for tests.
//!
//! The trait is synchronous: store calls are short and block on disk, so async callers go
//! through `spawn_blocking` (the executor's `Engine::blocking`).
//!
//! What every implementation shares is written once: the commit rules and what a write does
//! to a run ([`rules`]), the hash chain (`crate::event`), the errors any backend can mean
//! ([`StoreError`]; the embedded store's own are [`EmbeddedError`]) and the behaviours each
//! must show (`conformance`, behind the `testing` feature). `docs/storage.md`, "The Store
//! seam".

use std::path::PathBuf;
use std::time::Duration;

use crate::event::{Event, NewEvent};
use crate::run::{Run, RunId, RunStatus};

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod embedded;
pub mod group;
mod memory;
pub mod rules;
#[cfg(test)]
mod tests;

pub use embedded::{
    EmbeddedError, EmbeddedStore, Held, LockHolder, LockWait, Options, SalvageReport, StopWaiting,
    WaitNotice, DEFAULT_LOCK_TIMEOUT, DEFAULT_SEGMENT_LIMIT,
};
pub use group::{Commit, Write, Written};
pub use memory::{MemoryStore, TimeSource};

pub(crate) use rules::{commit_time, seal_all, sort_by_creation, stamp_new_run};

/// Persistence for runs and their events. Every method is all-or-nothing; the ones that write
/// are durable before they return.
pub trait Store: Send + Sync {
    /// Creates `run` with its first events (normally one `RunStarted`).
    ///
    /// The store sets `version` to 1 and stamps `started_at`, `state_entered_at` and
    /// `updated_at` with the commit time. Fails with [`StoreError::EnvironmentBusy`] when
    /// (workflow, env) already has a run that has not ended.
    fn create_run(&self, run: Run, events: Vec<NewEvent>) -> Result<(Run, Vec<Event>), StoreError> {
        let id = run.id.clone();
        let (run, events) = self.write(Write::Create {
            run: Box::new(run),
            events,
        })?;
        Ok((returned(run, &id)?, events))
    }

    /// The run `id`, or [`StoreError::NotFound`].
    fn load_run(&self, id: &RunId) -> Result<Run, StoreError>;

    /// Moves run `id` from `expected_version` by `change`, recording `events` (at least one) in
    /// the same atomic, durable commit. The version goes up by one.
    ///
    /// Fails with [`StoreError::Conflict`] if the run is no longer at `expected_version`, and
    /// with [`StoreError::RunEnded`] if it has ended. A change to an ended status frees the
    /// run's environment.
    fn commit(
        &self,
        id: &RunId,
        expected_version: u64,
        change: RunChange,
        events: Vec<NewEvent>,
    ) -> Result<(Run, Vec<Event>), StoreError> {
        let (run, events) = self.write(Write::Commit(Commit {
            id: id.clone(),
            expected: expected_version,
            change,
            events,
        }))?;
        Ok((returned(run, id)?, events))
    }

    /// Records events that do not move the run (`GuardsEvaluated`, `Approved`, `ActionStarted`,
    /// `ActionFinished`, `ActionInterrupted`); the run's version is unchanged. Durable before
    /// return. Once the run has ended, only `ActionFinished` or `ActionInterrupted` (of an action
    /// running when it ended) is taken; anything else is [`StoreError::RunEnded`].
    fn append(&self, id: &RunId, events: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        let write = Write::Append {
            id: id.clone(),
            events,
        };
        Ok(self.write(write)?.1)
    }

    /// Makes one write: what [`Store::create_run`], [`Store::commit`] and [`Store::append`]
    /// do, which are this call. A backend implements the write once, here; the run after it
    /// comes back for a create or a commit, with the sealed events.
    fn write(&self, write: Write) -> Result<Written, StoreError>;

    /// Runs matching `filter`, in creation order (start time, then id).
    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError>;

    /// Every event of run `id`, oldest first ([`StoreError::NotFound`] for an unknown run).
    fn run_events(&self, id: &RunId) -> Result<Vec<Event>, StoreError>;

    /// The run and its events, read together: one look at the store instead of two (for the
    /// embedded store, one lock and one sled open), and the two agree with each other.
    fn load_run_with_events(&self, id: &RunId) -> Result<(Run, Vec<Event>), StoreError> {
        Ok((self.load_run(id)?, self.run_events(id)?))
    }

    /// Events of all runs matching `filter`, in `seq` order.
    fn scan_events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError>;

    /// Recomputes every event's checksum and the hash chain. A damaged store is a report with
    /// `first_bad` set, not an error. Read-only: it changes nothing in the store.
    fn verify(&self) -> Result<VerifyReport, StoreError>;

    /// Whether a file at `path` (which need not exist yet) would lie among the store's own
    /// files, symlinks and `..` resolved. A command that writes a file of its own (the audit
    /// report) refuses such a path: the store keeps its directory for itself, and would take
    /// a file there for one of its own (a journal segment) and overwrite it. A store that keeps
    /// no files of its own holds no path.
    fn holds_path(&self, path: &std::path::Path) -> Result<bool, StoreError> {
        let _ = path;
        Ok(false)
    }

    /// [`Store::verify`], also looking for the event whose hash is `expect_head` (a head an
    /// auditor recorded earlier) in the intact chain: [`VerifyReport::reached`].
    fn verify_reaching(&self, expect_head: &str) -> Result<VerifyReport, StoreError> {
        let mut report = self.verify()?;
        let last = report.head.as_ref().map_or(0, |h| h.seq);
        report.reached = self
            .scan_events(&EventFilter::default())?
            .into_iter()
            .find(|e| e.hash == expect_head && e.seq <= last)
            .map(|e| e.seq);
        Ok(report)
    }
}

/// A shared handle is a store: one more handle on the same store (as a second process would
/// open), for tests that race handles.
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    // `create_run`, `commit` and `append` are `write` on every store.
    fn write(&self, write: Write) -> Result<Written, StoreError> {
        (**self).write(write)
    }
    fn load_run(&self, id: &RunId) -> Result<Run, StoreError> {
        (**self).load_run(id)
    }
    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
        (**self).list_runs(filter)
    }
    fn run_events(&self, id: &RunId) -> Result<Vec<Event>, StoreError> {
        (**self).run_events(id)
    }
    fn load_run_with_events(&self, id: &RunId) -> Result<(Run, Vec<Event>), StoreError> {
        (**self).load_run_with_events(id)
    }
    fn scan_events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        (**self).scan_events(filter)
    }
    fn verify(&self) -> Result<VerifyReport, StoreError> {
        (**self).verify()
    }
    fn verify_reaching(&self, expect_head: &str) -> Result<VerifyReport, StoreError> {
        (**self).verify_reaching(expect_head)
    }
    // Every method forwards, those with a default too: a default here would answer for the
    // handle, not the store (a handle on an embedded store would hold no path).
    fn holds_path(&self, path: &std::path::Path) -> Result<bool, StoreError> {
        (**self).holds_path(path)
    }
}

/// The run a create or a commit wrote, as the backend returned it.
fn returned(run: Option<Run>, id: &RunId) -> Result<Run, StoreError> {
    run.ok_or_else(|| StoreError::Invalid(format!("the store wrote run {id} but returned no run")))
}

/// What a commit changes on the run besides its version and `updated_at`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunChange {
    /// The new state; `state_entered_at` becomes the commit time.
    pub state: Option<String>,
    /// The new status. An ended status (see [`RunStatus::is_ended`]) stamps `ended_at` and frees
    /// the environment.
    pub status: Option<RunStatus>,
}

impl RunChange {
    /// A move to `state`.
    pub fn to_state(state: impl Into<String>) -> RunChange {
        RunChange {
            state: Some(state.into()),
            status: None,
        }
    }

    /// A status change only.
    pub fn status(status: RunStatus) -> RunChange {
        RunChange {
            state: None,
            status: Some(status),
        }
    }

    /// Also set the status.
    pub fn with_status(mut self, status: RunStatus) -> RunChange {
        self.status = Some(status);
        self
    }
}

/// Which runs [`Store::list_runs`] returns; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only this environment.
    pub env: Option<String>,
    /// Only runs with this status; `Active` takes every run that has not ended
    /// ([`RunStatus::falls_under`]).
    pub status: Option<RunStatus>,
}

impl RunFilter {
    /// Whether `run` passes the filter.
    pub fn matches(&self, run: &Run) -> bool {
        wanted(&self.workflow, &run.workflow)
            && wanted(&self.env, &run.env)
            && self.status.is_none_or(|s| run.status.falls_under(s))
    }
}

/// Which events [`Store::scan_events`] returns; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events of runs of this workflow.
    pub workflow: Option<String>,
    /// Only events of runs in this environment.
    pub env: Option<String>,
    /// Only this run's events.
    pub run: Option<RunId>,
    /// Only events by this actor, in any case ([`crate::actor::same_actor`]: `bob` finds
    /// what `Bob` did, as the approval rules count them as one person).
    pub actor: Option<String>,
    /// Only this kind (`Transitioned`, ...).
    pub kind: Option<String>,
    /// Only events at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// Only events at or before this time.
    pub until: Option<jiff::Timestamp>,
}

impl EventFilter {
    /// Whether `event`, of a run in (`workflow`, `env`), passes the filter.
    pub fn matches(&self, event: &Event, workflow: &str, env: &str) -> bool {
        wanted_str(&self.workflow, workflow)
            && wanted_str(&self.env, env)
            && wanted(&self.run, &event.run_id)
            && self
                .actor
                .as_deref()
                .is_none_or(|a| crate::actor::same_actor(a, &event.actor))
            && wanted_str(&self.kind, event.kind_name())
            && self.since.is_none_or(|t| event.at >= t)
            && self.until.is_none_or(|t| event.at <= t)
    }
}

/// True when there is no wish, or `have` is it.
fn wanted<T: PartialEq>(want: &Option<T>, have: &T) -> bool {
    want.as_ref().is_none_or(|w| w == have)
}

/// [`wanted`] for text held as `String`, compared with a `&str`.
fn wanted_str(want: &Option<String>, have: &str) -> bool {
    want.as_deref().is_none_or(|w| w == have)
}

/// The result of [`Store::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifyReport {
    /// Events checked (up to and including the first bad one).
    pub events: u64,
    /// The first event that fails, if any.
    pub first_bad: Option<BadEvent>,
    /// The last event of the intact chain (before `first_bad`, if any); `None` when there is
    /// none. An auditor keeps it outside the store and later asks whether the chain still
    /// reaches it ([`Store::verify_reaching`]): the one thing a consistently shortened or
    /// rewritten store cannot fake.
    pub head: Option<ChainHead>,
    /// What the next write does before it writes, when the journal ends in a write that never
    /// finished (never acknowledged): it cuts it off. `verify` itself changes nothing.
    pub unfinished: Option<String>,
    /// For [`Store::verify_reaching`]: the seq of the event with the expected hash, if the
    /// intact chain still holds it.
    pub reached: Option<u64>,
}

impl VerifyReport {
    /// True when every event checked out.
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// The last event of a chain: its seq and hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChainHead {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash (lowercase hex).
    pub hash: String,
}

/// The first event that fails verification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BadEvent {
    /// Its sequence number (inferred from its predecessor when the record is unreadable).
    pub seq: u64,
    /// What is wrong: "checksum mismatch", "hash mismatch", "prev_hash does not chain", ...
    pub problem: String,
    /// Where it is on disk, for the embedded store: segment file and byte offset.
    pub location: Option<String>,
}

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The run moved since it was read: another command committed first.
    #[error("run {run} moved: expected version {expected}, it is at {actual}")]
    Conflict {
        /// The run.
        run: RunId,
        /// The version the caller read.
        expected: u64,
        /// The version the run is at.
        actual: u64,
    },
    /// The lock the new run needs ((workflow, env), or its environment's shared lock) is
    /// held by a run that has not ended.
    #[error("{}", busy_message(workflow, env, lock.as_deref(), active))]
    EnvironmentBusy {
        /// The workflow.
        workflow: String,
        /// The environment.
        env: String,
        /// The shared lock its environment names, if it names one.
        lock: Option<String>,
        /// The run holding it.
        active: RunId,
    },
    /// No such run.
    #[error("no run {0}")]
    NotFound(RunId),
    /// A run with this id exists already.
    #[error("run {0} already exists")]
    DuplicateRun(RunId),
    /// The run has ended; it takes no further commits.
    #[error("run {run} has ended ({status})")]
    RunEnded {
        /// The run.
        run: RunId,
        /// How it ended.
        status: RunStatus,
    },
    /// The caller asked for something the store does not do (e.g. a commit without events),
    /// or a backend answered a write with less than it owes (no run after a commit).
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// Another process held the store's lock for longer than we were willing to wait (or the
    /// wait was stopped, see `StopWaiting`).
    #[error(
        "the store at {location} is held by another process (waited {:.1}s); \
         try again when it is free",
        waited.as_secs_f64()
    )]
    Locked {
        /// Where the store is (a directory, for the embedded store).
        location: String,
        /// How long we waited.
        waited: Duration,
    },
    /// A failure only the embedded store can have: a damaged journal record (segment and
    /// offset), a journal that lost acknowledged events, sled failing.
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    /// There is no store where one was asked for, and the command does not create one.
    #[error("no store at {location}; `waygate start` and `waygate run` create one")]
    NoStore {
        /// Where it was looked for (a directory).
        location: String,
    },
    /// What is at the location is not a store, and none is created there.
    #[error("{location} {why}")]
    NotAStore {
        /// Where.
        location: String,
        /// What it is instead, and what to do.
        why: String,
    },
    /// The store was written by a different format version of waygate.
    #[error("store at {location} has format `{found}`; this waygate reads `{expected}`")]
    UnsupportedVersion {
        /// Where the store is (a directory, for the embedded store).
        location: String,
        /// The format the store says it has (the embedded store's FORMAT file).
        found: String,
        /// What we understand.
        expected: String,
    },
    /// The store cannot be reached or refuses us: a database server that does not answer,
    /// refuses the login, or has no such database. Nothing was read or written.
    #[error("cannot reach the store at {location}: {why}")]
    Unavailable {
        /// Where the store is (a database URL, password left out).
        location: String,
        /// What went wrong, in the server's or the network's words.
        why: String,
    },
    /// A database server failed an operation. `why` says whether a write may have happened
    /// (a connection lost while a commit was under way: the next command tells).
    #[error("the store at {location} failed: {why}")]
    Backend {
        /// Where the store is (a database URL, password left out).
        location: String,
        /// What went wrong.
        why: String,
    },
    /// A command that writes met a store this user may not write to (the lock file could
    /// not be opened or created for writing: permissions, a read-only file system).
    #[error(
        "the store at {location} is not writable by this user ({}: {source}); this command \
         writes to it: run it as a user who may write there (the store's owner), or use a \
         command that only reads (status, history, runs, audit)",
        path.display()
    )]
    NotWritable {
        /// The store directory.
        location: String,
        /// The file that could not be opened for writing.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// True for the errors that mean "someone else got there first": the run moved
    /// ([`StoreError::Conflict`]) or the environment is busy ([`StoreError::EnvironmentBusy`]).
    /// The CLI's exit code 5.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict { .. } | StoreError::EnvironmentBusy { .. }
        )
    }

    /// True for a damaged store: a record that cannot be read, or a journal that lost
    /// events the store had recorded. `audit verify` says where; a command that shows what
    /// the store holds (the audit report) says so and goes on rather than stopping.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StoreError::Embedded(
                EmbeddedError::Corrupt { .. } | EmbeddedError::JournalTruncated { .. }
            )
        )
    }

    /// The same error again, for each write of a group that failed together (`io::Error` is
    /// not `Clone`: it is rebuilt from its kind and message).
    pub fn duplicate(&self) -> StoreError {
        match self {
            StoreError::Conflict {
                run,
                expected,
                actual,
            } => StoreError::Conflict {
                run: run.clone(),
                expected: *expected,
                actual: *actual,
            },
            StoreError::EnvironmentBusy {
                workflow,
                env,
                lock,
                active,
            } => StoreError::EnvironmentBusy {
                workflow: workflow.clone(),
                env: env.clone(),
                lock: lock.clone(),
                active: active.clone(),
            },
            StoreError::Embedded(e) => StoreError::Embedded(e.clone()),
            StoreError::NotFound(id) => StoreError::NotFound(id.clone()),
            StoreError::DuplicateRun(id) => StoreError::DuplicateRun(id.clone()),
            StoreError::RunEnded { run, status } => StoreError::RunEnded {
                run: run.clone(),
                status: *status,
            },
            StoreError::Invalid(why) => StoreError::Invalid(why.clone()),
            StoreError::Locked { location, waited } => StoreError::Locked {
                location: location.clone(),
                waited: *waited,
            },
            StoreError::UnsupportedVersion {
                location,
                found,
                expected,
            } => StoreError::UnsupportedVersion {
                location: location.clone(),
                found: found.clone(),
                expected: expected.clone(),
            },
            StoreError::Unavailable { location, why } => StoreError::Unavailable {
                location: location.clone(),
                why: why.clone(),
            },
            StoreError::Backend { location, why } => StoreError::Backend {
                location: location.clone(),
                why: why.clone(),
            },
            StoreError::Io { path, source } => StoreError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            StoreError::NotWritable {
                location,
                path,
                source,
            } => StoreError::NotWritable {
                location: location.clone(),
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            StoreError::NoStore { location } => StoreError::NoStore {
                location: location.clone(),
            },
            StoreError::NotAStore { location, why } => StoreError::NotAStore {
                location: location.clone(),
                why: why.clone(),
            },
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}

/// Verifies an in-order sequence of events: gap-free seq from 1, hashes, chain (the rule of
/// `docs/storage.md`, "Events and the hash chain", for every backend's `verify`).
#[derive(Debug)]
pub struct ChainCheck {
    next_seq: u64,
    prev_hash: String,
}

impl Default for ChainCheck {
    fn default() -> ChainCheck {
        ChainCheck::new()
    }
}

impl ChainCheck {
    /// A chain from its first event.
    pub fn new() -> ChainCheck {
        ChainCheck {
            next_seq: 1,
            prev_hash: crate::event::GENESIS_HASH.to_owned(),
        }
    }

    /// Continues a chain whose next event is `next_seq`, after `prev_hash`.
    pub(crate) fn resume(next_seq: u64, prev_hash: &str) -> ChainCheck {
        ChainCheck {
            next_seq,
            prev_hash: prev_hash.to_owned(),
        }
    }

    /// The seq the next event should have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Checks `event`; on failure, what is wrong with it.
    pub fn check(&mut self, event: &Event) -> Result<(), String> {
        self.check_link(event, event.hash_matches(&mut Vec::new()))
    }

    /// [`ChainCheck::check`] of an event whose own hash was checked already (`hash_ok`, by
    /// [`Event::hash_is_right`], perhaps on another thread): what is left is sequential.
    pub fn check_link(&mut self, event: &Event, hash_ok: bool) -> Result<(), String> {
        self.check_fields(event.seq, &event.prev_hash, &event.hash, hash_ok)
    }

    /// [`ChainCheck::check_link`] of an event given by the fields the links need: its `seq`,
    /// `prev_hash` and `hash` (a store that checked the hash on the stored bytes,
    /// [`crate::event::StoredEvent`], without decoding the event).
    pub fn check_fields(
        &mut self,
        seq: u64,
        prev_hash: &str,
        hash: &str,
        hash_ok: bool,
    ) -> Result<(), String> {
        if let Some(fault) =
            crate::event::link_fault(self.next_seq, &self.prev_hash, seq, prev_hash, hash_ok)
        {
            return Err(fault);
        }
        self.next_seq += 1;
        self.prev_hash.clear();
        self.prev_hash.push_str(hash);
        Ok(())
    }
}

/// The refusal of a run whose lock is held.
fn busy_message(workflow: &str, env: &str, lock: Option<&str>, active: &RunId) -> String {
    match lock {
        Some(lock) => format!(
            "lock `{lock}` (environment `{env}` of workflow `{workflow}`) is held by run {active}"
        ),
        None => format!("environment `{env}` of workflow `{workflow}` is busy with run {active}"),
    }
}
