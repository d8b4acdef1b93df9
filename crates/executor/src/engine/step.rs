//! One step of a run: finish entering its state, then evaluate, decide and commit.
//!
//! `advance` is one step; `drive` repeats steps and sleeps in between. Both share this code,
//! differing only in [`WhenBlocked`]: when every transition has a failing guard,
//! `drive` follows the state's `on_failure`, `advance` changes nothing and reports.

use std::time::Duration;

use jiff::Timestamp;
use petgraph::graph::EdgeIndex;
use waygate_core::decide::{
    apply_overrides, blocked_reason, decide, look_again_at, passage, Decision, Evaluation, Passage,
};
use waygate_core::ending::How;
use waygate_core::entry::{action_histories, decide_entry, Entry};
use waygate_core::event::{Cause, EventKind};
use waygate_core::model::Action;
use waygate_core::outcome::GuardResult;
use waygate_core::run::{RunId, RunStatus};
use waygate_core::store::{RunChange, StoreError};
use waygate_core::visit::visit_number;

use super::drive::{NoProgress, Progress, ProgressSink};
use super::{Engine, EngineError, Loaded};
use crate::action::{describe, run_named_action};
use crate::evaluate::evaluate_transition;
use crate::shutdown::Signal;

/// The guards of one transition as evaluated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransitionReport {
    /// The state the guards were evaluated in (the run may have moved on since).
    pub from: String,
    /// The target state.
    pub to: String,
    /// One result per guard.
    pub results: Vec<GuardResult>,
    /// The transition in the run's workflow.
    pub transition: EdgeIndex,
}

impl TransitionReport {
    /// Whether the transition's guards all passed ([`passage`] owns the rule).
    pub fn passed(&self) -> bool {
        passage(&self.results) == Passage::Passes
    }
}

/// What a dry run (`check`) found: the evaluations, and what `advance` would make of them.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// The run as it was read.
    pub loaded: Loaded,
    /// The guards of each transition looked at, in file order.
    pub reports: Vec<TransitionReport>,
    /// What [`decide`] says of them, now.
    pub decision: Decision,
}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepOutcome {
    /// The run moved, by a transition or an incident, and its new state's entry is done.
    Moved {
        /// The state it left.
        from: String,
        /// The state it is in now.
        to: String,
        /// Why.
        cause: Cause,
    },
    /// The run ended.
    Ended {
        /// The state it ended in.
        state: String,
        /// How.
        status: RunStatus,
        /// In a terminal state, or failed in place: an incident or a failed action with nowhere
        /// to go (exit 3, not 6).
        how: How,
    },
    /// Some guard is waiting; nothing failed everywhere. Nothing moved.
    Waiting {
        /// The state it waits in: the one the guards were judged in (another process may
        /// have moved the run since the caller last read it). Empty in the answer of a server
        /// from before it was given.
        #[serde(default)]
        state: String,
        /// The earliest instant worth looking again (a timer, a window, a watch interval),
        /// if any guard said; approvals give none.
        retry_at: Option<Timestamp>,
        /// How many of the run's events this decision took into account, its own record
        /// included. A run with more events has news (an approval, a move) that arrived
        /// after the guards were read: a waiter compares against this, not against what it
        /// finds when it starts waiting, or it could sleep through that news.
        seen_events: usize,
    },
    /// Every transition has a failing guard; nothing moved.
    Blocked {
        /// The state it is still in: the one the guards were judged in. Empty in the answer
        /// of a server from before it was given.
        #[serde(default)]
        state: String,
    },
}

/// How long a failed entry action waits for an operator's stop that may have killed it (the
/// signal reaching waygate a moment after its child): longer than any signal takes to be
/// delivered and handled, short next to anything a failure path does.
const STOP_ARRIVAL: Duration = Duration::from_millis(250);

/// What a step does when every transition has a failing guard ([`Decision::Blocked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenBlocked {
    /// Change nothing and report (`advance`).
    Stay,
    /// Follow the state's `on_failure`, if it has one (`drive`).
    FollowOnFailure,
}

impl Engine {
    /// `advance`: one step, with `to` restricting which transition may be taken.
    pub async fn advance(
        &self,
        id: &RunId,
        to: Option<&str>,
    ) -> Result<(StepOutcome, Vec<TransitionReport>), EngineError> {
        self.step(id, to, WhenBlocked::Stay, &mut NoProgress).await
    }

    /// `check`: a dry run. Evaluates the guards of the current state's transitions (or only
    /// the one to `to`), says what [`decide`] makes of them, and records nothing.
    pub async fn dry_run(&self, id: &RunId, to: Option<&str>) -> Result<DryRun, EngineError> {
        let loaded = self.load(id).await?;
        // An ended run has no moves to check; its guards (and their commands) are not run.
        loaded.ensure_active()?;
        loaded.ensure_vars()?;
        loaded.ensure_workdir()?;
        let ctx = self.context(&loaded);
        let mut reports = Vec::new();
        for t in self.candidates(&loaded, to)? {
            reports.push(self.evaluate_unless_stopped(&loaded, &t, &ctx).await?);
        }
        let decision = decide_on(&loaded, &reports, elapsed(loaded.entered_at, self.now()));
        Ok(DryRun {
            loaded,
            reports,
            decision,
        })
    }

    /// Evaluates the guards of transition `t`, unless an operator's stop comes first: then the
    /// evaluation is dropped, which kills its processes, nothing is recorded, and the result is
    /// [`EngineError::Interrupted`]. Overrides of this visit count as `decide` says
    /// ([`apply_overrides`]).
    async fn evaluate_unless_stopped(
        &self,
        loaded: &Loaded,
        t: &waygate_core::model::OutgoingTransition<'_>,
        ctx: &crate::context::GuardContext,
    ) -> Result<TransitionReport, EngineError> {
        let mut results = tokio::select! {
            biased;
            signal = self.shutdown.wait() => return Err(EngineError::Interrupted {
                run: loaded.run.id.clone(),
                state: loaded.run.state.clone(),
                signal,
                action: None,
            }),
            results = evaluate_transition(&t.transition.guards, ctx) => results,
        };
        let to = loaded.workflow.state(t.to).name.clone();
        apply_overrides(&loaded.events, &to, &mut results);
        Ok(TransitionReport {
            from: loaded.run.state.clone(),
            to,
            results,
            transition: t.id,
        })
    }

    fn candidates<'w>(
        &self,
        loaded: &'w Loaded,
        to: Option<&str>,
    ) -> Result<Vec<waygate_core::model::OutgoingTransition<'w>>, EngineError> {
        let all = loaded.workflow.outgoing(loaded.state);
        let Some(to) = to else { return Ok(all) };
        let known: Vec<&str> = all
            .iter()
            .map(|t| loaded.workflow.state(t.to).name.as_str())
            .collect();
        let picked: Vec<_> = all
            .iter()
            .copied()
            .filter(|t| loaded.workflow.state(t.to).name == to)
            .collect();
        if picked.is_empty() {
            return Err(EngineError::NoSuchTransition {
                run: loaded.run.id.clone(),
                state: loaded.run.state.clone(),
                to: to.to_owned(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        }
        Ok(picked)
    }

    /// One step, then the notifications it made due ([`Engine::notify`]); a waiting step's
    /// `seen_events` counts their records, so a drive does not wake for its own. `sink` hears
    /// of the evaluation and of each move as it is committed, before what follows it runs.
    pub(crate) async fn step(
        &self,
        id: &RunId,
        to: Option<&str>,
        when_blocked: WhenBlocked,
        sink: &mut dyn ProgressSink,
    ) -> Result<(StepOutcome, Vec<TransitionReport>), EngineError> {
        let (outcome, reports, hooks) = self.step_only(id, to, when_blocked, sink).await?;
        if !hooks {
            return Ok((outcome, reports));
        }
        let before = self.load(id).await?;
        let sent = self.notify(id).await;
        self.finish_entry_left_here(id, sink).await?;
        // Another command moved or ended the run while this one sent: what this step decided
        // is not where the run is now (a drive follows it, `advance` says so).
        same_visit(&before, &self.load(id).await?)?;
        let outcome = match outcome {
            StepOutcome::Waiting {
                state,
                retry_at,
                seen_events,
            } => StepOutcome::Waiting {
                state,
                retry_at,
                seen_events: seen_events + sent,
            },
            other => other,
        };
        Ok((outcome, reports))
    }

    /// Finishes what this process was left while it held the run's lock to send notifications:
    /// a command that moved the run meanwhile (`rollback`, `advance`) found the lock taken and
    /// left the new state's entry actions to its holder ([`Engine::enter`]). Announces first
    /// what that move made due (a rollback is announced before its actions run), then runs
    /// the actions, and again after any move they make; stops when nothing is left, or when
    /// another process holds the lock (it does the rest).
    async fn finish_entry_left_here(
        &self,
        id: &RunId,
        sink: &mut dyn ProgressSink,
    ) -> Result<(), EngineError> {
        // After an operator's stop, what is left is for the next command.
        while self.shutdown.requested().is_none() {
            let loaded = self.load(id).await?;
            if !waygate_core::notify::due(&loaded.workflow, &loaded.events).is_empty() {
                if self.notify(id).await == 0 {
                    return Ok(());
                }
                continue;
            }
            if loaded.run.status.is_ended() {
                return Ok(());
            }
            match self.finish_entry(loaded, sink).await {
                Ok(Some(_)) => {}
                Ok(None) | Err(EngineError::Busy { .. }) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One step; also says whether the workflow has notification hooks.
    async fn step_only(
        &self,
        id: &RunId,
        to: Option<&str>,
        when_blocked: WhenBlocked,
        sink: &mut dyn ProgressSink,
    ) -> Result<(StepOutcome, Vec<TransitionReport>, bool), EngineError> {
        let loaded = self.load(id).await?;
        let hooks = !loaded.workflow.notify.is_empty();
        loaded.ensure_active()?;
        let read = loaded.run.version;
        loaded.ensure_workdir()?;
        if let Some(outcome) = self.finish_entry(loaded, sink).await? {
            return Ok((outcome, Vec::new(), hooks));
        }
        let loaded = self.load(id).await?;
        if loaded.run.status.is_ended() {
            // Another command ended the run (abort) while its entry actions ran here.
            return Err(EngineError::Store(StoreError::Conflict {
                run: loaded.run.id.clone(),
                expected: read,
                actual: loaded.run.version,
            }));
        }
        loaded.ensure_vars()?;
        let workflow = &loaded.workflow;
        let in_state = elapsed(loaded.entered_at, self.now());

        // Guards, transition by transition in file order, until `decide` cannot change its
        // mind (a transition passes, a watch breaks); none at all once the deadline passed.
        let ctx = self.context(&loaded);
        let mut reports: Vec<TransitionReport> = Vec::new();
        if !decide_on(&loaded, &reports, in_state).is_final() {
            for t in self.candidates(&loaded, to)? {
                reports.push(self.evaluate_unless_stopped(&loaded, &t, &ctx).await?);
                if decide_on(&loaded, &reports, in_state).is_final() {
                    break;
                }
            }
        }
        // Decided again at the time the guards finished: the deadline may have passed meanwhile.
        let decision = decide_on(&loaded, &reports, elapsed(loaded.entered_at, self.now()));
        let records: Vec<EventKind> = reports
            .iter()
            .map(|r| EventKind::GuardsEvaluated {
                state: loaded.run.state.clone(),
                to: r.to.clone(),
                passed: r.passed(),
                guards: r.results.clone(),
            })
            .collect();
        let from = loaded.run.state.clone();
        if !reports.is_empty() {
            sink.report(&Progress::Evaluated {
                state: from.clone(),
                reports: reports.clone(),
            });
        }
        let outcome = match decision {
            Decision::Ended => ended_in_terminal(&loaded),
            Decision::Take { to, .. } => {
                let to = workflow.state(to).name.clone();
                self.move_to(&loaded, records, &to, Cause::Advance, None, sink)
                    .await?
            }
            Decision::Incident { to, incident } => {
                let (cause, reason) = (incident.cause(), incident.reason(&from));
                match to {
                    Some(to) => {
                        let to = workflow.state(to).name.clone();
                        self.move_to(&loaded, records, &to, cause, Some(reason), sink)
                            .await?
                    }
                    None => self.fail_in_place(&loaded, records).await?,
                }
            }
            Decision::Wait => {
                let results = reports.iter().flat_map(|r| &r.results);
                let retry_at = look_again_at(results, loaded.deadline());
                let seen_events = loaded.events.len() + records.len();
                self.record(&loaded, records, RunStatus::Waiting).await?;
                self.still_in_visit(&loaded).await?;
                StepOutcome::Waiting {
                    state: from,
                    retry_at,
                    seen_events,
                }
            }
            Decision::Blocked { on_failure } => {
                match on_failure.filter(|_| when_blocked == WhenBlocked::FollowOnFailure) {
                    Some(target) => {
                        let reason = blocked_reason(reports.iter().flat_map(|r| &r.results));
                        let to = workflow.state(target).name.clone();
                        let reason = Some(reason);
                        self.move_to(&loaded, records, &to, Cause::OnFailure, reason, sink)
                            .await?
                    }
                    None => {
                        self.record(&loaded, records, RunStatus::Active).await?;
                        self.still_in_visit(&loaded).await?;
                        StepOutcome::Blocked { state: from }
                    }
                }
            }
        };
        Ok((outcome, reports, hooks))
    }

    /// Fails with a conflict when another command moved or ended the run since `loaded` was
    /// read: a step that moved nothing was recorded by an append, which no version guards,
    /// so "still in `review`" could follow another command's `review` -> `deploy` (a drive
    /// follows the run, `advance` says so).
    async fn still_in_visit(&self, loaded: &Loaded) -> Result<(), EngineError> {
        same_visit(loaded, &self.load(&loaded.run.id).await?)
    }

    /// Records evaluations that moved nothing; the status is committed only if it changes.
    async fn record(
        &self,
        loaded: &Loaded,
        records: Vec<EventKind>,
        status: RunStatus,
    ) -> Result<(), EngineError> {
        if loaded.run.status == status || records.is_empty() {
            self.append(&loaded.run, records).await
        } else {
            self.commit(&loaded.run, RunChange::status(status), records)
                .await
                .map(|_| ())
        }
    }

    /// Commits `records` and a transition to `to`, then finishes entering `to`.
    pub(crate) async fn move_to(
        &self,
        loaded: &Loaded,
        records: Vec<EventKind>,
        to: &str,
        cause: Cause,
        reason: Option<String>,
        sink: &mut dyn ProgressSink,
    ) -> Result<StepOutcome, EngineError> {
        self.commit_move(loaded, records, to, cause, reason).await?;
        self.enter(&loaded.run.id, &loaded.run.state, to, cause, sink)
            .await
    }

    /// Commits `records` and a transition from the loaded state to `to` (a conflict if the
    /// run moved since it was loaded), without entering `to` yet.
    pub(crate) async fn commit_move(
        &self,
        loaded: &Loaded,
        mut records: Vec<EventKind>,
        to: &str,
        cause: Cause,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        records.push(EventKind::Transitioned {
            from: loaded.run.state.clone(),
            to: to.to_owned(),
            cause,
            reason,
        });
        self.commit(
            &loaded.run,
            RunChange::to_state(to).with_status(RunStatus::Active),
            records,
        )
        .await?;
        metrics::counter!("waygate_transitions_total", "cause" => cause.as_str()).increment(1);
        Ok(())
    }

    /// Finishes entering `to` after a committed move from `from` (told to `sink` first), and
    /// reports the move.
    pub(crate) async fn enter(
        &self,
        id: &RunId,
        from: &str,
        to: &str,
        cause: Cause,
        sink: &mut dyn ProgressSink,
    ) -> Result<StepOutcome, EngineError> {
        let from = from.to_owned();
        sink.report(&Progress::Entered {
            from: from.clone(),
            to: to.to_owned(),
            cause,
        });
        let mut next = self.load(id).await?;
        // A rollback is announced as it starts, before its actions run.
        if !next.workflow.notify.is_empty() && self.notify(id).await > 0 {
            next = self.load(id).await?;
        }
        let entered = match self.finish_entry(next, sink).await {
            // Another process is running actions of this run: it re-reads the run after each
            // one, sees the move and finishes entering `to` itself.
            Err(EngineError::Busy { .. }) => None,
            other => other?,
        };
        Ok(match entered {
            Some(ended @ StepOutcome::Ended { .. }) => ended,
            // A failed entry action moved it further: report the whole move, and that a
            // failure (the action's) put the run where it is now.
            Some(StepOutcome::Moved {
                to, cause: further, ..
            }) => StepOutcome::Moved {
                from,
                to,
                cause: further,
            },
            _ => StepOutcome::Moved {
                from,
                to: to.to_owned(),
                cause,
            },
        })
    }

    async fn fail_in_place(
        &self,
        loaded: &Loaded,
        mut records: Vec<EventKind>,
    ) -> Result<StepOutcome, EngineError> {
        let state = loaded.run.state.clone();
        records.push(EventKind::RunEnded {
            state: state.clone(),
            status: RunStatus::Failed,
        });
        self.commit(&loaded.run, RunChange::status(RunStatus::Failed), records)
            .await?;
        Ok(StepOutcome::Ended {
            state,
            status: RunStatus::Failed,
            how: How::InPlace,
        })
    }

    /// Finishes entering the run's current state, doing what [`decide_entry`] says until the
    /// run rests in a state whose entry is complete or ends: runs `on_enter` actions, records
    /// one given up on, follows a failed one to the failure path, ends the run in a terminal
    /// state. Returns what happened, or `None` if nothing needed doing.
    ///
    /// Actions run only under the run's lock ([`crate::lock`]): a process that finds another
    /// one running them gets [`EngineError::Busy`] rather than running them a second time.
    /// Holding the lock, it re-reads the run after each action and decides again, so a move
    /// made meanwhile by another command (`rollback`) is followed, not overwritten: the holder
    /// goes on to finish entering the state the run is in now. An operator's signal during an
    /// action kills it, records `ActionInterrupted` and returns [`EngineError::Interrupted`].
    pub(crate) async fn finish_entry(
        &self,
        mut loaded: Loaded,
        sink: &mut dyn ProgressSink,
    ) -> Result<Option<StepOutcome>, EngineError> {
        let first_state = loaded.run.state.clone();
        let mut last: Option<StepOutcome> = None;
        let mut lock = None;
        loop {
            if loaded.run.status.is_ended() {
                return Ok(last);
            }
            let state_id = loaded.state;
            let state = loaded.workflow.state(state_id).clone();
            let histories =
                action_histories(loaded.visit_events(), &state.name, state.on_enter.len());
            let entry = decide_entry(&loaded.workflow, state_id, &loaded.events, &histories);
            let runs_something = matches!(entry, Entry::Run { .. } | Entry::GiveUp { .. });
            if runs_something && lock.is_none() {
                if let Some(locks) = &self.locks {
                    let (locks, id) = (locks.clone(), loaded.run.id.clone());
                    let taken = tokio::task::spawn_blocking(move || locks.take(&id))
                        .await
                        .map_err(|e| EngineError::Join(e.to_string()))?
                        .map_err(|e| EngineError::Lock(e.to_string()))?;
                    let Some(taken) = taken else {
                        return Err(EngineError::Busy {
                            run: loaded.run.id.clone(),
                            state: state.name.clone(),
                        });
                    };
                    lock = Some(taken);
                    // Whoever held it may have finished the actions, or moved the run.
                    loaded = self.load(&loaded.run.id).await?;
                    continue;
                }
            }
            let name = state.name.clone();
            match entry {
                Entry::Complete => return Ok(last),
                Entry::Run { index, rerun } => {
                    loaded.ensure_vars()?;
                    sink.report(&Progress::Action {
                        state: name.clone(),
                        action: index,
                        again: rerun,
                        at_start: waygate_core::visit::visit_number(&loaded.events) == 1,
                    });
                    self.run_entry_action(&loaded, &state, index).await?;
                }
                Entry::GiveUp { index, crashes } => {
                    self.append(
                        &loaded.run,
                        vec![EventKind::ActionFinished {
                            state: name,
                            index: index as u32,
                            ok: false,
                            detail: format!(
                                "the process running it died {crashes} times without a record \
                                 (not stopped by an operator); not run again"
                            ),
                            evidence: None,
                            duration_ms: 0,
                            outputs: Default::default(),
                        }],
                    )
                    .await?;
                }
                Entry::Fail {
                    to: Some(target),
                    reason,
                    ..
                } => {
                    let to = loaded.workflow.state(target).name.clone();
                    let committed = self
                        .commit(
                            &loaded.run,
                            RunChange::to_state(&to).with_status(RunStatus::Active),
                            vec![EventKind::Transitioned {
                                from: name.clone(),
                                to: to.clone(),
                                cause: Cause::Action,
                                reason: Some(reason),
                            }],
                        )
                        .await;
                    if !moved_meanwhile(committed)? {
                        sink.report(&Progress::Entered {
                            from: name,
                            to: to.clone(),
                            cause: Cause::Action,
                        });
                        last = Some(StepOutcome::Moved {
                            from: first_state.clone(),
                            to,
                            cause: Cause::Action,
                        });
                        // A rollback is announced as it starts, before its actions run,
                        // under the lock those are run under (held here after an action).
                        if !loaded.workflow.notify.is_empty() {
                            if lock.is_some() {
                                self.notify_holding_lock(&loaded.run.id).await;
                            } else {
                                self.notify(&loaded.run.id).await;
                            }
                        }
                    }
                }
                Entry::Fail { to: None, .. } => {
                    match self.fail_in_place(&loaded, Vec::new()).await {
                        Err(EngineError::Store(StoreError::Conflict { .. })) => {}
                        other => return other.map(Some),
                    }
                }
                Entry::End { status, .. } => {
                    let committed = self
                        .commit(
                            &loaded.run,
                            RunChange::status(status),
                            vec![EventKind::RunEnded {
                                state: name.clone(),
                                status,
                            }],
                        )
                        .await;
                    if !moved_meanwhile(committed)? {
                        return Ok(Some(StepOutcome::Ended {
                            state: name,
                            status,
                            how: How::Terminal,
                        }));
                    }
                }
            }
            // Decide again on the run as it is now: the action's record, or a move by
            // another command.
            loaded = self.load(&loaded.run.id).await?;
        }
    }

    /// Runs entry action `index` of `state` and records it, unless an operator's signal
    /// stops it: a command's process group gets SIGTERM, then SIGKILL after the grace (so a
    /// deploy script can release what it holds); a webhook call is dropped. The stop is
    /// recorded as `ActionInterrupted` and the result is [`EngineError::Interrupted`].
    async fn run_entry_action(
        &self,
        loaded: &Loaded,
        state: &waygate_core::model::State,
        index: usize,
    ) -> Result<(), EngineError> {
        let interrupted = |signal: Signal, action: Option<usize>| EngineError::Interrupted {
            run: loaded.run.id.clone(),
            state: state.name.clone(),
            signal,
            action,
        };
        // Asked to stop before the action began: it has not started, nothing to record.
        if let Some(signal) = self.shutdown.requested() {
            return Err(interrupted(signal, None));
        }
        let action = &state.on_enter[index];
        let mut ctx = self.context(loaded);
        ctx.stop = Some(self.shutdown.clone());
        self.append(
            &loaded.run,
            vec![EventKind::ActionStarted {
                state: state.name.clone(),
                index: index as u32,
                action: describe(action, &ctx),
            }],
        )
        .await?;
        let name = state.action_names.get(index).and_then(Option::as_deref);
        let running = run_named_action(action, index as u32, name, &ctx);
        let result = match action {
            // The process hears the stop itself and ends within the grace. A failure may
            // also be a stop that reached the action first: whoever stops a whole service
            // (systemd, a container runtime) signals its processes together, and the child
            // can die before waygate's handler has run. Such a stop is not the action's
            // failure, so a failed action waits a moment for it.
            Action::Command(_) => {
                let result = running.await;
                if !result.ok && self.shutdown.requested().is_none() {
                    let _ = tokio::time::timeout(STOP_ARRIVAL, self.shutdown.wait()).await;
                }
                result
            }
            Action::Http(_) => tokio::select! {
                biased;
                signal = self.shutdown.wait() => {
                    return Err(self.record_stop(loaded, state, index, signal).await);
                }
                result = running => result,
            },
        };
        match self.shutdown.requested() {
            // Cut short by the stop (a failure now may be the stop's doing): the action runs
            // again on resume, never counted as failed.
            Some(signal) if !result.ok => {
                return Err(self.record_stop(loaded, state, index, signal).await);
            }
            _ => {}
        }
        self.append(
            &loaded.run,
            vec![EventKind::ActionFinished {
                state: state.name.clone(),
                index: index as u32,
                ok: result.ok,
                detail: result.detail,
                evidence: result.evidence,
                duration_ms: result.duration_ms,
                outputs: result.outputs,
            }],
        )
        .await?;
        // It finished before a stop took effect: recorded as it is, then stop.
        match self.shutdown.requested() {
            Some(signal) => Err(interrupted(signal, None)),
            None => Ok(()),
        }
    }

    /// Records that `signal` stopped entry action `index` of `state`; returns the error
    /// that says so (or the store's, if recording failed).
    async fn record_stop(
        &self,
        loaded: &Loaded,
        state: &waygate_core::model::State,
        index: usize,
        signal: Signal,
    ) -> EngineError {
        let recorded = self
            .append(
                &loaded.run,
                vec![EventKind::ActionInterrupted {
                    state: state.name.clone(),
                    index: index as u32,
                    signal: signal.name().to_owned(),
                }],
            )
            .await;
        match recorded {
            Ok(()) => EngineError::Interrupted {
                run: loaded.run.id.clone(),
                state: state.name.clone(),
                signal,
                action: Some(index),
            },
            Err(e) => e,
        }
    }
}

/// Whether a commit made while finishing a state's entry found the run moved or ended by
/// another command: then the caller decides again on the run as it is now.
fn moved_meanwhile(
    committed: Result<waygate_core::run::Run, EngineError>,
) -> Result<bool, EngineError> {
    match committed {
        Ok(_) => Ok(false),
        Err(EngineError::Store(StoreError::Conflict { .. } | StoreError::RunEnded { .. })) => {
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// What [`decide`] makes of `reports` for the run as loaded, `in_state` after it entered its
/// state.
fn decide_on(loaded: &Loaded, reports: &[TransitionReport], in_state: Duration) -> Decision {
    let evaluations: Vec<Evaluation> = reports
        .iter()
        .map(|r| Evaluation {
            transition: r.transition,
            results: &r.results,
        })
        .collect();
    decide(
        &loaded.workflow,
        loaded.state,
        &loaded.events,
        in_state,
        &evaluations,
    )
}

/// Time from `since` to `now`, zero if the clock went backwards.
pub(crate) fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}

/// A run found in a terminal state after its entry was finished: `finish_entry` ends runs in
/// terminal states before guards are evaluated, so only a race (its commit meeting another
/// command's) leaves one here; report it as it stands.
fn ended_in_terminal(loaded: &Loaded) -> StepOutcome {
    StepOutcome::Ended {
        state: loaded.run.state.clone(),
        status: loaded.run.status,
        how: How::Terminal,
    }
}

/// A conflict when `now` is not the visit `then` was read in: another command moved or ended
/// the run meanwhile.
fn same_visit(then: &Loaded, now: &Loaded) -> Result<(), EngineError> {
    if visit_number(&now.events) != visit_number(&then.events)
        || now.run.status.is_ended() != then.run.status.is_ended()
    {
        return Err(EngineError::Store(StoreError::Conflict {
            run: then.run.id.clone(),
            expected: then.run.version,
            actual: now.run.version,
        }));
    }
    Ok(())
}
