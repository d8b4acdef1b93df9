//! The engine: moves runs through their workflow, with the store as the only memory.
//!
//! Every operation reads the run and its events, works out what to do (guards are evaluated
//! here, the decision itself is [`waygate_core::decide::decide`]), and commits the outcome in
//! one atomic store call that names the version it read, so two operators or CI jobs acting
//! on one run never both win. Nothing is held between operations: a crash at any point leaves
//! a run that the next command picks up where the journal says it was.
//!
//! Entering a state and running its `on_enter` actions are two steps: the transition is
//! committed first, then the actions run, each recorded as `ActionStarted` and then
//! `ActionFinished` (or `ActionInterrupted` when an operator's signal stopped it). Whichever
//! command next acts on the run (`advance`, `drive`, `run`) first finishes the state's entry,
//! doing what the pure [`waygate_core::entry::decide_entry`] says from the journal of the
//! visit: actions run at least once; one stopped by a signal runs again, never counted as a
//! failure; one whose process died unrecorded (`kill -9`) runs again, and after
//! [`waygate_core::entry::CRASH_LIMIT`] such deaths is recorded as failed. Actions should
//! therefore be idempotent, as deploy scripts usually are (`docs/cli.md`, `drive`). "Died" is
//! told from "still running in another process" by the run's lock ([`crate::lock`]), which
//! the process running actions holds: see [`Engine::with_run_locks`]. Signals reach the
//! engine as a [`Shutdown`] ([`Engine::with_shutdown`]).

mod drive;
mod notify;
mod ops;
#[cfg(test)]
mod races;
mod step;
#[cfg(test)]
mod tests;
mod wake;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use petgraph::graph::NodeIndex;
use waygate_core::event::{Event, EventKind, NewEvent};
use waygate_core::model::Workflow;
use waygate_core::run::{Run, RunId, RunStatus};
use waygate_core::store::{RunChange, Store, StoreError};
use waygate_core::vars::{self, Resolved, VarsError};

use crate::clock::{Clock, ProcessClock};
use crate::context::GuardContext;
use crate::live::{LiveOutput, OutputSender};
use crate::lock::RunLocks;
use crate::shutdown::{Shutdown, Signal};

pub use drive::{DriveEnd, DriveOptions, Progress, ProgressSink};
pub use ops::{ApproveOutcome, Started};
pub use step::{DryRun, StepOutcome, TransitionReport};
pub use wake::Wakes;

/// Reads a process environment variable (injected so tests need not set real ones).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Everything the engine can fail with, other than guard outcomes.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Variable values could not be resolved.
    #[error(transparent)]
    Vars(#[from] VarsError),
    /// The workflow text pinned on the run does not validate (a newer waygate, say).
    #[error("the workflow pinned on run {run} does not validate: {message}")]
    Definition {
        /// The run.
        run: RunId,
        /// The first error.
        message: String,
    },
    /// The run has ended and takes no further moves.
    #[error("run {run} has already ended ({status})")]
    Ended {
        /// The run.
        run: RunId,
        /// How it ended.
        status: RunStatus,
    },
    /// `--to` named no transition out of the current state.
    #[error("run {run} is in `{state}`, which has no transition to `{to}` (it has: {known})")]
    NoSuchTransition {
        /// The run.
        run: RunId,
        /// Its state.
        state: String,
        /// What was asked for.
        to: String,
        /// The targets there are.
        known: String,
    },
    /// `rollback` or `abort` with a reason that is empty or only whitespace and invisible
    /// characters.
    #[error("the reason for the {0} is blank: say why (it is kept in the audit trail)")]
    BlankReason(&'static str),
    /// `rollback` on a workflow without a rollback state.
    #[error("workflow `{0}` has no `rollback` state; use `waygate abort` to end the run")]
    NoRollback(String),
    /// `rollback` on a run already on its rollback path: nothing changed.
    #[error(
        "a rollback is already under way: run {run} is in `{state}`, on its rollback path{}; \
         nothing changed (`waygate status {run}` shows where it stands)",
        since.as_deref().map(|s| format!(" (rolled back by {s})")).unwrap_or_default()
    )]
    RollbackUnderWay {
        /// The run.
        run: RunId,
        /// The state it is in.
        state: String,
        /// Who moved it into the rollback state, and when, if the history says.
        since: Option<String>,
    },
    /// `approve` named no Approval guard of the workflow.
    #[error(transparent)]
    UnknownGuard(waygate_core::approval::NotApprovable),
    /// The approval was refused (and recorded as refused).
    #[error("approval refused: {0}")]
    Refused(String),
    /// `override` was refused (nothing recorded).
    #[error("override refused: {0}")]
    Override(waygate_core::decide::OverrideRefusal),
    /// `approve --withdraw` found no approval of the actor's to withdraw (nothing recorded).
    #[error("nothing withdrawn: {0}")]
    NothingToWithdraw(String),
    /// The run left the visit an approval or withdrawal was meant for while it was being
    /// recorded: it applies to that visit only, which is over.
    #[error(
        "run {run} moved on to `{state}` while your {what} was being recorded; it applies only \
         to the visit of the state it was meant for (see `waygate history {run}`)"
    )]
    MovedMeanwhile {
        /// The run.
        run: RunId,
        /// Where it is now.
        state: String,
        /// "approval", "withdrawal" or "override".
        what: &'static str,
    },
    /// Another process is running the run's entry actions right now.
    #[error(
        "run {run} is busy: another waygate process is running the entry actions of `{state}`; \
         try again when it has finished"
    )]
    Busy {
        /// The run.
        run: RunId,
        /// The state whose actions are running.
        state: String,
    },
    /// The directory the run was started in cannot be used: its commands run there.
    #[error(
        "run {run} runs in {dir}, the directory it was started in, but {problem}; restore it, \
         or end the run with `waygate abort {run} --reason TEXT`"
    )]
    Workdir {
        /// The run.
        run: RunId,
        /// Its recorded directory.
        dir: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The directory a run would be started in cannot be recorded.
    #[error("cannot start a run in {dir}: {problem}")]
    StartDir {
        /// The directory.
        dir: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The run lock could not be taken or tested.
    #[error("run lock: {0}")]
    Lock(String),
    /// A blocking store task panicked or was cancelled.
    #[error("store task failed: {0}")]
    Join(String),
    /// An operator's signal stopped the command before it was done. What was running stopped
    /// with it (an action's process group is killed and the stop recorded as
    /// `ActionInterrupted`); nothing is left half-committed, and the run can be resumed.
    #[error("run {run}: interrupted by {signal} in `{state}`")]
    Interrupted {
        /// The run.
        run: RunId,
        /// The state it is in.
        state: String,
        /// The signal.
        signal: Signal,
        /// The entry action (from 0) it stopped, if one was running.
        action: Option<usize>,
    },
}

impl EngineError {
    /// Conflicts (exit 5): the run moved, the environment is busy, or a rollback is already
    /// under way.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            EngineError::Store(StoreError::Conflict { .. } | StoreError::EnvironmentBusy { .. })
                | EngineError::Busy { .. }
                | EngineError::RollbackUnderWay { .. }
                | EngineError::MovedMeanwhile { .. }
        )
    }

    /// An operator's signal stopped the command.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, EngineError::Interrupted { .. })
    }

    /// The run had ended already.
    pub fn is_ended(&self) -> bool {
        matches!(
            self,
            EngineError::Ended { .. } | EngineError::Store(StoreError::RunEnded { .. })
        )
    }
}

/// Moves runs; one per command invocation.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    actor: String,
    workdir: PathBuf,
    getenv: EnvLookup,
    overrides: BTreeMap<String, String>,
    clock: Arc<dyn Clock>,
    locks: Option<Arc<dyn RunLocks>>,
    shutdown: Shutdown,
    /// Stored entry times found in this process's future, already warned about.
    jumps_reported: Arc<Mutex<HashSet<(RunId, Timestamp)>>>,
    output: Option<OutputSender>,
    approve_command: notify::ApproveCommand,
    /// Values steps of each run published as secrets in this process (`secret_outputs`):
    /// never stored, so kept here for the run's later steps.
    published_secrets: Arc<Mutex<HashMap<RunId, PublishedSecrets>>>,
    script: Option<Arc<dyn crate::script::Script>>,
    /// Wakes waiting drives of a run this engine (or one sharing these) writes to.
    wakes: Arc<Wakes>,
    /// Where a new run's id comes from: [`RunId::generate`]; a test gives ids that collide.
    run_ids: RunIds,
}

/// A source of fresh run ids for runs created at a time.
pub type RunIds = Arc<dyn Fn(Timestamp) -> RunId + Send + Sync>;

/// One run's values published as secrets, by template variable.
type PublishedSecrets = Arc<Mutex<BTreeMap<String, String>>>;

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("actor", &self.actor)
            .field("workdir", &self.workdir)
            .finish()
    }
}

/// A run with everything needed to act on it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The run as stored.
    pub run: Run,
    /// Its pinned workflow: the one model this process keeps of that definition (core's
    /// `validate::pinned_workflow`), shared by every load of every run pinning it, so a
    /// thousand waiting drives of one workflow hold one copy.
    pub workflow: Arc<Workflow>,
    /// Its current state in the workflow.
    pub state: NodeIndex,
    /// Every event of the run, oldest first.
    pub events: Vec<Event>,
    /// Where the run's commands run and its relative paths resolve: the directory it was
    /// started in ([`Run::workdir`]), or for a run recorded without one, this process's.
    pub workdir: PathBuf,
    /// When the run's stay in its current state counts from, for waits, watches and
    /// deadlines: the stored entry time, unless the clocks contradict it (a clock that ran
    /// ahead or behind stamped it: [`waygate_core::clock_jump::entered_at`]).
    pub entered_at: Timestamp,
    /// Variable values, secrets re-read from the process environment.
    pub resolved: Resolved,
    /// Why some values are missing (a secret's variable not set in this process), if they are.
    /// Reading commands do not need them; evaluating guards and running actions does.
    pub vars_error: Option<VarsError>,
}

/// Fails when `run` has ended: nothing more happens to an ended run.
pub(super) fn ensure_run_active(run: &Run) -> Result<(), EngineError> {
    if run.status.is_ended() {
        return Err(EngineError::Ended {
            run: run.id.clone(),
            status: run.status,
        });
    }
    Ok(())
}

impl Loaded {
    /// Fails when the run has ended.
    pub fn ensure_active(&self) -> Result<(), EngineError> {
        ensure_run_active(&self.run)
    }

    /// Fails when some variable needed to evaluate guards or run actions has no value.
    pub fn ensure_vars(&self) -> Result<(), EngineError> {
        match &self.vars_error {
            Some(e) => Err(EngineError::Vars(e.clone())),
            None => Ok(()),
        }
    }

    /// Fails unless the run's recorded directory is still there: guards and actions run in it,
    /// and nowhere else.
    pub fn ensure_workdir(&self) -> Result<(), EngineError> {
        let Some(dir) = &self.run.workdir else {
            return Ok(());
        };
        let problem = match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => "it is no longer a directory".to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "it no longer exists".to_owned(),
            Err(e) => format!("it cannot be used ({e})"),
        };
        Err(EngineError::Workdir {
            run: self.run.id.clone(),
            dir: dir.clone(),
            problem,
        })
    }

    /// Events since the run entered its current state (this visit only, told by the events
    /// themselves, never by times from two clocks: [`waygate_core::visit::current_visit`]).
    pub fn visit_events(&self) -> impl Iterator<Item = &Event> {
        waygate_core::visit::current_visit(&self.events).iter()
    }

    /// When the current state's deadline falls, if it has one (counted from
    /// [`Loaded::entered_at`]).
    pub fn deadline(&self) -> Option<Timestamp> {
        waygate_core::decide::deadline_at(&self.workflow, self.state, self.entered_at)
    }
}

impl Engine {
    /// An engine acting as `actor` on `store`, running commands in the current directory and
    /// reading secrets from the process environment.
    pub fn new(store: Arc<dyn Store>, actor: impl Into<String>) -> Engine {
        Engine {
            store,
            actor: actor.into(),
            workdir: PathBuf::from("."),
            getenv: Arc::new(|k| std::env::var(k).ok()),
            overrides: BTreeMap::new(),
            clock: Arc::new(ProcessClock::starting_now()),
            locks: None,
            shutdown: Shutdown::never(),
            jumps_reported: Arc::default(),
            output: None,
            approve_command: notify::plain_approve_command(),
            published_secrets: Arc::default(),
            script: None,
            wakes: Arc::default(),
            run_ids: Arc::new(RunId::generate),
        }
    }

    /// Takes new runs' ids from `ids` instead of [`RunId::generate`] (tests that force two
    /// starts onto one id).
    pub fn with_run_ids(mut self, ids: RunIds) -> Engine {
        self.run_ids = ids;
        self
    }

    /// Shares `wakes` with other engines of this process: a write by any of them to a run
    /// wakes the drives of that run waiting in all of them at once ([`Wakes`]).
    pub fn with_wakes(mut self, wakes: Arc<Wakes>) -> Engine {
        self.wakes = wakes;
        self
    }

    /// Takes guard verdicts and entry action results from `script` instead of evaluating
    /// guards and running actions: nothing runs, everything else is as ever
    /// ([`crate::script`]).
    pub fn with_script(mut self, script: Arc<dyn crate::script::Script>) -> Engine {
        self.script = Some(script);
        self
    }

    /// Runs entry actions only while holding the run's lock in `locks`, so that two processes
    /// never run the same action at once and a dead one's action is told from a running one.
    /// Without locks (a single process, as in tests) actions run unguarded. Which kind of
    /// lock it is comes with the store (see [`crate::lock`]); the engine does not know.
    pub fn with_run_locks(mut self, locks: Arc<dyn RunLocks>) -> Engine {
        self.locks = Some(locks);
        self
    }

    /// Whether another process is running run `id`'s entry actions now (holds its lock).
    pub fn actions_running(&self, id: &RunId) -> Result<bool, EngineError> {
        match &self.locks {
            Some(locks) => locks
                .is_held(id)
                .map_err(|e| EngineError::Lock(e.to_string())),
            None => Ok(false),
        }
    }

    /// `--var` values given to this process. A run pins its non-secret values at start, so
    /// these matter only for secrets, which are never stored: `waygate run --var token=..`
    /// must be able to use the token for the whole drive.
    pub fn with_overrides(mut self, overrides: BTreeMap<String, String>) -> Engine {
        self.overrides = overrides;
        self
    }

    /// Reads process environment variables through `getenv` instead.
    pub fn with_env(mut self, getenv: EnvLookup) -> Engine {
        self.getenv = getenv;
        self
    }

    /// Stops cleanly when `shutdown` fires: guard evaluations and waits are dropped (their
    /// processes killed), an action running is stopped (SIGTERM to its process group, SIGKILL
    /// after the grace) and recorded as interrupted, and the operation returns
    /// [`EngineError::Interrupted`]. Store commits are never cut in half.
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Engine {
        self.shutdown = shutdown;
        self
    }

    /// Sends what commands (actions and `Command` guards) print while they run to `sender`,
    /// line by line, redacted ([`crate::live`]). Without one only the evidence is kept.
    pub fn with_output(mut self, sender: OutputSender) -> Engine {
        self.output = Some(sender);
        self
    }

    /// Uses `clock` for "now". The default is the process's clock
    /// ([`ProcessClock::starting_now`]): the wall time once, then a monotonic clock, so a
    /// wall-clock jump during a wait neither stretches nor skips it.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Engine {
        self.clock = clock;
        self
    }

    /// The acting person or job.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Runs a store call off the async threads: the store is blocking (its trait is
    /// synchronous), so every async caller, the CLI's commands included, goes through here.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let store = self.store.clone();
        let joined = tokio::task::spawn_blocking(move || f(store.as_ref())).await;
        joined
            .map_err(|e| EngineError::Join(e.to_string()))?
            .map_err(EngineError::from)
    }

    /// Run `id` as the store holds it (no workflow, no events), read off the async threads.
    pub async fn load_run(&self, id: &RunId) -> Result<Run, EngineError> {
        let id = id.clone();
        self.blocking(move |store| store.load_run(&id)).await
    }

    /// Loads run `id` with its pinned workflow, its events and its variable values.
    pub async fn load(&self, id: &RunId) -> Result<Loaded, EngineError> {
        let owned = id.clone();
        let (run, events) = self
            .blocking(move |s| s.load_run_with_events(&owned))
            .await?;
        self.assemble(run, events)
    }

    /// A run and its events as read elsewhere (from a server, say), with its pinned workflow
    /// and its variable values, as [`Engine::load`] gives them.
    pub fn assemble(&self, run: Run, events: Vec<Event>) -> Result<Loaded, EngineError> {
        // Read with the rules that make a model only: a run an earlier waygate started under
        // looser rules stays readable and drivable (core's `validate::pinned`); read once per
        // process and kept, as a run is loaded several times a step.
        let read = waygate_core::validate::pinned_workflow(
            &run.definition_hash,
            &run.file,
            &run.definition,
        );
        let workflow = match read {
            Ok(workflow) => workflow,
            Err(diagnostics) => {
                let message = diagnostics
                    .iter()
                    .find(|d| d.is_error())
                    .map_or_else(|| "unknown error".to_owned(), ToString::to_string);
                return Err(EngineError::Definition {
                    run: run.id.clone(),
                    message,
                });
            }
        };
        let Some(state) = workflow.state_id(&run.state) else {
            return Err(EngineError::Definition {
                run: run.id.clone(),
                message: format!(
                    "the run is in `{}`, which the workflow does not have",
                    run.state
                ),
            });
        };
        let getenv = self.getenv.clone();
        let resolve = |getenv: &EnvLookup| {
            vars::resolve(&workflow, &run.env, &self.overrides, Some(&run.vars), |k| {
                getenv(k)
            })
        };
        let (resolved, vars_error) = match resolve(&getenv) {
            Ok(r) => (r, None),
            Err(e) => {
                // Fall back to the pinned values alone so the run can still be read.
                let pinned: EnvLookup = Arc::new(|_| Some(String::new()));
                let mut r = resolve(&pinned).unwrap_or_default();
                r.values.retain(|k, _| run.vars.contains_key(k));
                (r, Some(e))
            }
        };
        let entered_at = self.entered_at(&run, &events);
        let workdir = run
            .workdir
            .as_ref()
            .map_or_else(|| self.workdir.clone(), PathBuf::from);
        Ok(Loaded {
            workdir,
            run,
            workflow,
            state,
            events,
            entered_at,
            resolved,
            vars_error,
        })
    }

    /// The guard context for `loaded` as it is now.
    pub fn context(&self, loaded: &Loaded) -> GuardContext {
        let run = &loaded.run;
        // The values the run's steps published so far are variables like the others
        // (`${steps.NAME.KEY}`).
        // Those published as secrets are known only to this process, and secret.
        let published = waygate_core::outputs::published(&loaded.workflow, &loaded.events);
        let sink = self
            .published_secrets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(run.id.clone())
            .or_default()
            .clone();
        let kept = sink
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let mut secret_names: HashSet<String> =
            loaded.resolved.secret_names.iter().cloned().collect();
        secret_names.extend(kept.keys().cloned());
        let vars: HashMap<String, String> = loaded
            .resolved
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(published)
            .chain(kept)
            .collect();
        let mut ctx = GuardContext::new(
            run.id.as_str(),
            &run.env,
            &run.initiator,
            vars,
            secret_names,
        );
        ctx.published_secrets = sink;
        ctx.state_entered_at = loaded.entered_at;
        ctx.approvals = waygate_core::approval::visit_records(&loaded.events, &run.state);
        ctx.looks = looks(loaded.visit_events());
        ctx.workdir = loaded.workdir.clone();
        ctx.clock = self.clock.clone();
        ctx.state = run.state.clone();
        ctx.script = self.script.clone();
        ctx.live = self
            .output
            .as_ref()
            .map(|sender| LiveOutput::new(sender.clone(), &run.state));
        ctx
    }

    /// Commits `change` with `events` on the run as loaded (conflict if it moved since).
    async fn commit(
        &self,
        run: &Run,
        change: RunChange,
        events: Vec<EventKind>,
    ) -> Result<Run, EngineError> {
        let (id, version) = (run.id.clone(), run.version);
        let events = self.events(events);
        let began = std::time::Instant::now();
        let (run, _) = self
            .blocking(move |s| s.commit(&id, version, change, events))
            .await?;
        self.wakes.wake(&run.id);
        metrics::histogram!("waygate_store_commit_seconds").record(began.elapsed().as_secs_f64());
        Ok(run)
    }

    /// Appends events that do not move the run.
    async fn append(&self, run: &Run, events: Vec<EventKind>) -> Result<(), EngineError> {
        if events.is_empty() {
            return Ok(());
        }
        let id = run.id.clone();
        let events = self.events(events);
        self.blocking(move |s| s.append(&id, events)).await?;
        self.wakes.wake(&run.id);
        Ok(())
    }

    fn events(&self, kinds: Vec<EventKind>) -> Vec<NewEvent> {
        kinds
            .into_iter()
            .map(|k| NewEvent::new(self.actor.clone(), k))
            .collect()
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Where `run`'s stay in its state counts from, by the rule of
    /// [`waygate_core::clock_jump::entered_at`]; a clock jump is reported once per process.
    fn entered_at(&self, run: &Run, events: &[Event]) -> Timestamp {
        let now = self.now();
        let (before, visit) = events.split_at(waygate_core::visit::visit_start(events));
        let (at, jump) = waygate_core::clock_jump::entered_at(
            run.state_entered_at,
            before.iter().map(|e| e.at),
            visit.iter().map(|e| e.at),
            now,
        );
        if let Some(jump) = jump {
            let first = self
                .jumps_reported
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert((run.id.clone(), run.state_entered_at));
            if first {
                tracing::warn!(
                    "run {} in `{}`: {jump}; its time in the state counts from {at} instead \
                     (docs/storage.md, Times and clocks)",
                    run.id,
                    run.state
                );
            }
        }
        at
    }
}

/// When each guard was evaluated among `events` (recorded `GuardsEvaluated`), for `Watch`.
fn looks<'e>(events: impl Iterator<Item = &'e Event>) -> HashMap<String, Vec<Timestamp>> {
    let mut looks: HashMap<String, Vec<Timestamp>> = HashMap::new();
    for event in events {
        if let EventKind::GuardsEvaluated { guards, .. } = &event.kind {
            for guard in guards {
                looks.entry(guard.name.clone()).or_default().push(event.at);
            }
        }
    }
    looks
}
