//! `drive`: step a run until it ends, waiting out what must be waited out.
//!
//! Between steps the loop sleeps until the earliest instant a waiting guard named (a `Wait`
//! elapsing, a `Window` opening, a `Watch`'s next interval) or the state's deadline, whichever
//! comes first. Approvals name no instant, and other commands may act on the run meanwhile
//! (`approve`, `advance`, `rollback`): one in this process through an engine sharing the
//! drive's [`super::Wakes`] (the server's API) wakes it at once; for other processes the loop
//! also looks at the run every [`DriveOptions::poll`]. Sleeping costs no CPU beyond those looks.
//! An operator's signal (the engine's [`crate::shutdown::Shutdown`]: Ctrl-C, SIGTERM, SIGHUP)
//! is honoured at every await that can take long: evaluations in flight are dropped, which
//! kills their process groups; an action running is stopped (SIGTERM to its group, SIGKILL
//! after a grace) and recorded as interrupted (so the next `drive` runs it again, not as a
//! failure); store commits are never cut in half
//! (they run to completion on their blocking thread, and the journal is atomic anyway).

use std::time::Duration;

use jiff::Timestamp;
use waygate_core::ending::How;
use waygate_core::event::{Cause, EventKind};
use waygate_core::outcome::Outcome;
use waygate_core::run::{RunId, RunStatus};
use waygate_core::store::StoreError;

use super::step::{elapsed, StepOutcome, TransitionReport, WhenBlocked};
use super::{Engine, EngineError};
use crate::shutdown::Signal;

/// How `drive` behaves.
#[derive(Debug, Clone, Copy)]
pub struct DriveOptions {
    /// Stop with [`DriveEnd::Waiting`] instead of waiting.
    pub no_wait: bool,
    /// How often to look for changes made by other processes while waiting.
    pub poll: Duration,
}

impl Default for DriveOptions {
    fn default() -> Self {
        DriveOptions {
            no_wait: false,
            poll: Duration::from_secs(2),
        }
    }
}

/// How a `drive` ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum DriveEnd {
    /// The run ended.
    Ended {
        /// Final state.
        state: String,
        /// How it ended.
        status: RunStatus,
        /// In a terminal state, failed in place (no failure path), or aborted by another
        /// command ([`waygate_core::ending`] owns the rule).
        how: How,
    },
    /// `--no-wait` and something is waiting.
    Waiting,
    /// Guards fail and the state has no `on_failure`.
    Blocked {
        /// The state it is stuck in.
        state: String,
    },
    /// Stopped by an operator's signal before the run ended; resumable.
    Interrupted {
        /// The signal.
        signal: Signal,
        /// The state the run was in.
        state: String,
        /// The entry action (from 0) that was running and is recorded as interrupted.
        action: Option<usize>,
    },
}

/// What `drive` reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Guards of the current state were evaluated.
    Evaluated {
        /// The state.
        state: String,
        /// Results per transition tried.
        reports: Vec<TransitionReport>,
    },
    /// A move this step just committed, reported before the state moved into runs anything
    /// (its notifications, its entry actions), so a log reads the move first and then what the
    /// new state's actions print. One per committed move: a failed entry action's move to the
    /// failure path is one more.
    Entered {
        /// From.
        from: String,
        /// To.
        to: String,
        /// Why.
        cause: Cause,
    },
    /// An entry action is about to run. Reported before it runs, so a log can say why a
    /// state's actions start over (`again`), or that they finish an entry some other process
    /// began (a move it committed before it died, not told by this sink).
    Action {
        /// The state.
        state: String,
        /// The action (from 0).
        action: usize,
        /// Why it runs again, when its last attempt was cut off (a signal, or its process
        /// died without a record).
        again: Option<waygate_core::entry::Rerun>,
        /// The state is the run's initial state, entered when the run started: its actions
        /// are run by the first drive (or `run`, or `advance`) as a matter of course, not
        /// finished for a process that died after moving the run.
        at_start: bool,
    },
    /// The run moved: reported once a step that moved it is over (its entry actions done),
    /// from where it was to where the step left it; [`Progress::Entered`] told each move as
    /// it was made.
    Moved {
        /// From.
        from: String,
        /// To.
        to: String,
        /// Why.
        cause: Cause,
    },
    /// Waiting in `state` on `guards` (name, detail) until about `until`.
    Waiting {
        /// The state.
        state: String,
        /// Guards still waiting, with their details.
        guards: Vec<(String, String)>,
        /// When the loop will look again at the latest.
        until: Option<Timestamp>,
        /// The state's deadline.
        deadline: Option<Timestamp>,
    },
}

/// Receives progress; the CLI renders it as a status line or plain lines.
pub trait ProgressSink: Send {
    /// One piece of progress.
    fn report(&mut self, progress: &Progress);
}

/// A sink for operations that report their results, not progress (`advance`, `rollback`).
pub(crate) struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&mut self, _: &Progress) {}
}

impl Engine {
    /// Steps run `id` until it ends, waits, or is blocked, following `on_failure` when guards
    /// fail. A run that has ended already, or that another command ends meanwhile, is
    /// [`DriveEnd::Ended`] as it ended. Stops early, cleanly, when the engine's shutdown fires.
    pub async fn drive(
        &self,
        id: &RunId,
        options: DriveOptions,
        sink: &mut dyn ProgressSink,
    ) -> Result<DriveEnd, EngineError> {
        let shutdown = self.shutdown.clone();
        let interrupted = |signal, state| DriveEnd::Interrupted {
            signal,
            state,
            action: None,
        };
        loop {
            let stepped = self
                .step(id, None, WhenBlocked::FollowOnFailure, &mut *sink)
                .await;
            let (outcome, reports) = match stepped {
                Ok(stepped) => stepped,
                Err(EngineError::Interrupted {
                    signal,
                    state,
                    action,
                    ..
                }) => {
                    return Ok(DriveEnd::Interrupted {
                        signal,
                        state,
                        action,
                    })
                }
                // Another process is running the run's actions: wait for it (or for its
                // death, which frees the lock) and look again.
                Err(EngineError::Busy { state, .. }) if !options.no_wait => {
                    sink.report(&Progress::Waiting {
                        state: state.clone(),
                        guards: vec![(
                            "entry actions".into(),
                            "running in another waygate process".into(),
                        )],
                        until: None,
                        deadline: None,
                    });
                    tokio::select! {
                        () = tokio::time::sleep(options.poll) => {}
                        signal = shutdown.wait() => return Ok(interrupted(signal, state)),
                    }
                    continue;
                }
                // The run had ended before this drive, or another command moved or ended it
                // while this one worked or waited: follow it, and report how the run ended if
                // it did.
                Err(
                    e @ (EngineError::Ended { .. }
                    | EngineError::Store(
                        StoreError::Conflict { .. } | StoreError::RunEnded { .. },
                    )),
                ) => {
                    if let Some(end) = ended(&self.load(id).await?) {
                        // A process killed after the run ended, before its hooks were sent or
                        // recorded, leaves them due: the next drive sends them (at least once).
                        self.notify(id).await;
                        return Ok(end);
                    }
                    if e.is_ended() {
                        return Err(e);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            let loaded = self.load(id).await?;
            match outcome {
                StepOutcome::Moved { from, to, cause } => {
                    sink.report(&Progress::Moved { from, to, cause });
                    if let Some(end) = ended(&loaded) {
                        return Ok(end);
                    }
                }
                StepOutcome::Ended { state, status, how } => {
                    // The last move, if this step made one, into the state it ended in.
                    let last_move = loaded.events.iter().rev().find_map(|e| match &e.kind {
                        EventKind::Transitioned {
                            from, to, cause, ..
                        } if *to == state => Some(Progress::Moved {
                            from: from.clone(),
                            to: to.clone(),
                            cause: *cause,
                        }),
                        _ => None,
                    });
                    if let Some(moved) = last_move.filter(|_| how != How::InPlace) {
                        sink.report(&moved);
                    }
                    return Ok(DriveEnd::Ended { state, status, how });
                }
                StepOutcome::Blocked { state } => return Ok(DriveEnd::Blocked { state }),
                StepOutcome::Waiting {
                    retry_at,
                    seen_events,
                    ..
                } => {
                    if options.no_wait {
                        return Ok(DriveEnd::Waiting);
                    }
                    let guards = reports
                        .iter()
                        .flat_map(|r| &r.results)
                        .filter(|g| g.outcome == Outcome::Waiting)
                        .map(|g| (g.name.clone(), g.detail.clone()))
                        .collect();
                    let waiting = Progress::Waiting {
                        state: loaded.run.state.clone(),
                        guards,
                        until: retry_at,
                        deadline: loaded.deadline(),
                    };
                    sink.report(&waiting);
                    let wait = self.wait_for_change(
                        id,
                        seen_events,
                        retry_at,
                        options.poll,
                        sink,
                        &waiting,
                    );
                    tokio::select! {
                        r = wait => r?,
                        signal = shutdown.wait() => {
                            return Ok(interrupted(signal, loaded.run.state.clone()))
                        }
                    }
                }
            }
        }
    }

    /// Sleeps until `until` or until the run has more than the `seen` events the last
    /// decision took into account (every write adds an event, so any move, approval or abort
    /// counts). A write by an engine sharing this one's [`super::Wakes`] wakes it at once;
    /// writes by other processes are found by looking at the run every `poll`. Repeats
    /// `waiting` to the sink after each sleep (so a status line can count down).
    async fn wait_for_change(
        &self,
        id: &RunId,
        seen: usize,
        until: Option<Timestamp>,
        poll: Duration,
        sink: &mut dyn ProgressSink,
        waiting: &Progress,
    ) -> Result<(), EngineError> {
        let mut woken = self.wakes.subscribe(id);
        let waited = async {
            loop {
                if self.event_count(id).await? != seen {
                    return Ok(());
                }
                let left = until.map(|t| elapsed(self.now(), t));
                let nap = match left {
                    Some(left) if left.is_zero() => return Ok(()),
                    Some(left) => left.min(poll),
                    None => poll,
                };
                tokio::select! {
                    () = tokio::time::sleep(nap) => {}
                    // A write to the run in this process: look now (a closed channel cannot
                    // happen while `woken` lives, but would only mean "look now" too).
                    () = woken.changed() => {}
                }
                sink.report(waiting);
            }
        }
        .await;
        drop(woken);
        waited
    }

    /// How many events the run has.
    async fn event_count(&self, id: &RunId) -> Result<usize, EngineError> {
        let id = id.clone();
        self.blocking(move |s| Ok(s.run_events(&id)?.len())).await
    }
}

/// How `loaded` ended, if it has ([`waygate_core::ending`] owns the rule).
fn ended(loaded: &super::Loaded) -> Option<DriveEnd> {
    let end = waygate_core::ending::ending(&loaded.workflow, &loaded.run, &loaded.events)?;
    Some(DriveEnd::Ended {
        how: end.how,
        state: end.state,
        status: end.status,
    })
}
