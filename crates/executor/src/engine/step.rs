//! One step of a run: finish entering its state, then evaluate, decide and commit.
//!
//! `advance` is one step; `drive` repeats steps and sleeps in between. Both share this code,
//! differing only in [`Policy::follow_on_failure`]: when every transition has a failing guard,
//! `drive` follows the state's `on_failure`, `advance` changes nothing and reports.

use std::time::Duration;

use jiff::Timestamp;
use waygate_core::decide::{decide, Decision, Evaluation, Incident};
use waygate_core::event::{Cause, EventKind};
use waygate_core::outcome::{GuardResult, Outcome};
use waygate_core::run::{RunId, RunStatus};
use waygate_core::store::{RunChange, StoreError};

use super::{terminal_status, Engine, EngineError, Loaded};
use crate::action::{describe, run_action};
use crate::evaluate::evaluate_transition;

/// The guards of one transition as evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionReport {
    /// The target state.
    pub to: String,
    /// One result per guard.
    pub results: Vec<GuardResult>,
}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        /// True when it failed in place: an incident with nowhere to go (exit 3, not 6).
        in_place: bool,
    },
    /// Some guard is waiting; nothing failed everywhere. Nothing moved.
    Waiting {
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
    Blocked,
}

/// How a step treats failing guards.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Policy {
    /// Follow the state's `on_failure` when every transition has a failing guard.
    pub follow_on_failure: bool,
}

impl Engine {
    /// `advance`: one step, with `to` restricting which transition may be taken.
    pub async fn advance(
        &self,
        id: &RunId,
        to: Option<&str>,
    ) -> Result<(StepOutcome, Vec<TransitionReport>), EngineError> {
        self.step(id, to, Policy::default()).await
    }

    /// `check`: evaluates the guards of the current state's transitions (or only the one to
    /// `to`) and records nothing.
    pub async fn check(
        &self,
        id: &RunId,
        to: Option<&str>,
    ) -> Result<(Loaded, Vec<TransitionReport>), EngineError> {
        let loaded = self.load(id).await?;
        loaded.ensure_vars()?;
        loaded.ensure_workdir()?;
        let ctx = self.context(&loaded);
        let mut reports = Vec::new();
        for t in self.candidates(&loaded, to)? {
            let results = evaluate_transition(&t.transition.guards, &ctx).await;
            reports.push(TransitionReport {
                to: loaded.workflow.state(t.to).name.clone(),
                results,
            });
        }
        Ok((loaded, reports))
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

    pub(crate) async fn step(
        &self,
        id: &RunId,
        to: Option<&str>,
        policy: Policy,
    ) -> Result<(StepOutcome, Vec<TransitionReport>), EngineError> {
        let loaded = self.load(id).await?;
        if loaded.run.status.is_ended() {
            return Err(EngineError::Ended {
                run: loaded.run.id.clone(),
                status: loaded.run.status,
            });
        }
        let read = loaded.run.version;
        loaded.ensure_workdir()?;
        if let Some(outcome) = self.settle(loaded).await? {
            return Ok((outcome, Vec::new()));
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

        // Guards, transition by transition in file order, until one passes or a watch breaks.
        let ctx = self.context(&loaded);
        let mut reports = Vec::new();
        let mut evaluated = Vec::new();
        let deadline_passed = workflow
            .state(loaded.state)
            .deadline
            .is_some_and(|d| in_state >= d);
        if !deadline_passed {
            for t in self.candidates(&loaded, to)? {
                let results = evaluate_transition(&t.transition.guards, &ctx).await;
                let done = results.iter().all(|r| r.outcome == Outcome::Pass)
                    || results
                        .iter()
                        .any(|r| r.incident && r.outcome == Outcome::Fail);
                reports.push(TransitionReport {
                    to: workflow.state(t.to).name.clone(),
                    results,
                });
                evaluated.push(t.id);
                if done {
                    break;
                }
            }
        }
        let evaluations: Vec<Evaluation> = evaluated
            .iter()
            .zip(&reports)
            .map(|(&transition, r)| Evaluation {
                transition,
                results: &r.results,
            })
            .collect();
        let in_state = elapsed(loaded.entered_at, self.now());
        let decision = decide(workflow, loaded.state, in_state, &evaluations);
        let records: Vec<EventKind> = reports
            .iter()
            .map(|r| EventKind::GuardsEvaluated {
                state: loaded.run.state.clone(),
                to: r.to.clone(),
                passed: r.results.iter().all(|g| g.outcome == Outcome::Pass),
                guards: r.results.clone(),
            })
            .collect();
        let from = loaded.run.state.clone();
        let outcome = match decision {
            Decision::Ended => unreachable_ended(&loaded),
            Decision::Take { to, .. } => {
                let to = workflow.state(to).name.clone();
                self.move_to(&loaded, records, &to, Cause::Advance, None)
                    .await?
            }
            Decision::Incident { to, incident } => {
                let (cause, reason) = match &incident {
                    Incident::Deadline(d) => (
                        Cause::Deadline,
                        format!(
                            "deadline of {} in `{from}` passed",
                            waygate_core::duration::format_duration(*d)
                        ),
                    ),
                    Incident::WatchBroke(g) => (Cause::Watch, format!("watch `{g}` failed")),
                };
                match to {
                    Some(to) => {
                        let to = workflow.state(to).name.clone();
                        self.move_to(&loaded, records, &to, cause, Some(reason))
                            .await?
                    }
                    None => self.fail_in_place(&loaded, records).await?,
                }
            }
            Decision::Wait => {
                let retry_at = reports
                    .iter()
                    .flat_map(|r| &r.results)
                    .filter(|g| g.outcome == Outcome::Waiting)
                    .filter_map(|g| g.retry_at.as_deref()?.parse::<Timestamp>().ok())
                    .chain(deadline_at(&loaded))
                    .min();
                let seen_events = loaded.events.len() + records.len();
                self.record(&loaded, records, RunStatus::Waiting).await?;
                StepOutcome::Waiting {
                    retry_at,
                    seen_events,
                }
            }
            Decision::Blocked { on_failure } => {
                match on_failure.filter(|_| policy.follow_on_failure) {
                    Some(target) => {
                        let failed: Vec<&str> = reports
                            .iter()
                            .flat_map(|r| &r.results)
                            .filter(|g| g.outcome == Outcome::Fail)
                            .map(|g| g.name.as_str())
                            .collect();
                        let reason = format!("guards failed: {}", failed.join(", "));
                        let to = workflow.state(target).name.clone();
                        self.move_to(&loaded, records, &to, Cause::OnFailure, Some(reason))
                            .await?
                    }
                    None => {
                        self.record(&loaded, records, RunStatus::Active).await?;
                        StepOutcome::Blocked
                    }
                }
            }
        };
        Ok((outcome, reports))
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
    ) -> Result<StepOutcome, EngineError> {
        self.commit_move(loaded, records, to, cause, reason).await?;
        self.enter(&loaded.run.id, &loaded.run.state, to, cause)
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
        Ok(())
    }

    /// Finishes entering `to` after a committed move from `from`, and reports the move.
    pub(crate) async fn enter(
        &self,
        id: &RunId,
        from: &str,
        to: &str,
        cause: Cause,
    ) -> Result<StepOutcome, EngineError> {
        let from = from.to_owned();
        let next = self.load(id).await?;
        let settled = match self.settle(next).await {
            // Another process is running actions of this run: it re-reads the run after each
            // one, sees the move and finishes entering `to` itself.
            Err(EngineError::Busy { .. }) => None,
            other => other?,
        };
        Ok(match settled {
            Some(ended @ StepOutcome::Ended { .. }) => ended,
            // A failed entry action moved it further; report the whole move.
            Some(StepOutcome::Moved { to, .. }) => StepOutcome::Moved { from, to, cause },
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
            in_place: true,
        })
    }

    /// Finishes entering the run's current state: runs `on_enter` actions that have not
    /// finished in this visit, follows a failed one to the failure path, and ends the run in
    /// a terminal state. Loops until the run rests in a state whose entry is complete.
    /// Returns what happened, or `None` if nothing needed doing.
    ///
    /// Actions run only under the run's lock ([`crate::lock`]): a process that finds another
    /// one running them gets [`EngineError::Busy`] rather than running them a second time.
    /// Holding the lock, it re-reads the run before each action and before each commit, so a
    /// move made meanwhile by another command (`rollback`) is followed, not overwritten: the
    /// holder goes on to finish entering the state the run is in now.
    pub(crate) async fn settle(
        &self,
        mut loaded: Loaded,
    ) -> Result<Option<StepOutcome>, EngineError> {
        let first_state = loaded.run.state.clone();
        let mut last: Option<StepOutcome> = None;
        let mut lock = None;
        'visit: loop {
            if loaded.run.status.is_ended() {
                return Ok(last);
            }
            let state_id = loaded.state;
            let state = loaded.workflow.state(state_id).clone();
            if !state.on_enter.is_empty() {
                loaded.ensure_vars()?;
            }
            let unfinished = (0..state.on_enter.len())
                .any(|i| action_history(&loaded, &state.name, i as u32).0.is_none());
            if unfinished && lock.is_none() {
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
                    continue 'visit;
                }
            }
            let mut failed: Option<String> = None;
            for (i, action) in state.on_enter.iter().enumerate() {
                let index = i as u32;
                let (finished, started) = action_history(&loaded, &state.name, index);
                match finished {
                    Some(true) => continue,
                    Some(false) => {
                        failed = Some(format!("action {} failed", i + 1));
                        if state.terminal.is_none() {
                            break;
                        }
                        continue;
                    }
                    None => {}
                }
                let ctx = self.context(&loaded);
                if started >= 2 {
                    // Interrupted twice: do not try a third time.
                    self.append(
                        &loaded.run,
                        vec![EventKind::ActionFinished {
                            state: state.name.clone(),
                            index,
                            ok: false,
                            detail:
                                "interrupted twice (the process running it died); not run again"
                                    .into(),
                            evidence: None,
                            duration_ms: 0,
                        }],
                    )
                    .await?;
                    failed = Some(format!("action {} was interrupted twice", i + 1));
                    break;
                }
                self.append(
                    &loaded.run,
                    vec![EventKind::ActionStarted {
                        state: state.name.clone(),
                        index,
                        action: describe(action, &ctx),
                    }],
                )
                .await?;
                let result = run_action(action, index, &ctx).await;
                self.append(
                    &loaded.run,
                    vec![EventKind::ActionFinished {
                        state: state.name.clone(),
                        index,
                        ok: result.ok,
                        detail: result.detail.clone(),
                        evidence: result.evidence.clone(),
                        duration_ms: result.duration_ms,
                    }],
                )
                .await?;
                let now = self.load(&loaded.run.id).await?;
                if moved_since(&loaded, &now) {
                    loaded = now;
                    continue 'visit;
                }
                loaded = now;
                if !result.ok {
                    failed = Some(format!(
                        "action {} ({}) failed: {}",
                        i + 1,
                        result.description,
                        result.detail
                    ));
                    if state.terminal.is_none() {
                        break;
                    }
                }
            }
            if state.terminal.is_none() && failed.is_none() {
                return Ok(last);
            }
            // About to commit the end or the failure path: not if the run moved meanwhile.
            let current = self.load(&loaded.run.id).await?;
            if moved_since(&loaded, &current) {
                loaded = current;
                continue 'visit;
            }
            if let Some(terminal) = state.terminal {
                // A terminal state's actions announce and archive; their failure is recorded
                // but does not change how the run ended.
                let status = terminal_status(terminal);
                self.commit(
                    &current.run,
                    RunChange::status(status),
                    vec![EventKind::RunEnded {
                        state: state.name.clone(),
                        status,
                    }],
                )
                .await?;
                return Ok(Some(StepOutcome::Ended {
                    state: state.name,
                    status,
                    in_place: false,
                }));
            }
            let Some(reason) = failed else {
                return Ok(last);
            };
            match loaded.workflow.failure_target(state_id) {
                Some(target) => {
                    let to = loaded.workflow.state(target).name.clone();
                    self.commit(
                        &current.run,
                        RunChange::to_state(&to).with_status(RunStatus::Active),
                        vec![EventKind::Transitioned {
                            from: state.name.clone(),
                            to: to.clone(),
                            cause: Cause::Action,
                            reason: Some(reason),
                        }],
                    )
                    .await?;
                    last = Some(StepOutcome::Moved {
                        from: first_state.clone(),
                        to,
                        cause: Cause::Action,
                    });
                    loaded = self.load(&loaded.run.id).await?;
                }
                None => {
                    let ended = self.fail_in_place(&current, Vec::new()).await?;
                    return Ok(Some(ended));
                }
            }
        }
    }
}

/// Whether the run left the visit `before` was loaded in (moved, re-entered or ended).
fn moved_since(before: &Loaded, now: &Loaded) -> bool {
    now.run.state != before.run.state
        || now.run.state_entered_at != before.run.state_entered_at
        || now.run.status.is_ended()
}

/// For action `index` of `state` in the current visit: whether it finished (and how), and
/// how often it was started.
fn action_history(loaded: &Loaded, state: &str, index: u32) -> (Option<bool>, usize) {
    let mut finished = None;
    let mut started = 0;
    for e in loaded.visit_events() {
        match &e.kind {
            EventKind::ActionStarted {
                state: s, index: i, ..
            } if s == state && *i == index => started += 1,
            EventKind::ActionFinished {
                state: s,
                index: i,
                ok,
                ..
            } if s == state && *i == index => finished = Some(*ok),
            _ => {}
        }
    }
    (finished, started)
}

/// When the current state's deadline falls, if it has one.
pub(crate) fn deadline_at(loaded: &Loaded) -> Option<Timestamp> {
    loaded.deadline()
}

/// Time from `since` to `now`, zero if the clock went backwards.
pub(crate) fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}

fn unreachable_ended(loaded: &Loaded) -> StepOutcome {
    // `settle` ends runs in terminal states before guards are evaluated.
    StepOutcome::Ended {
        state: loaded.run.state.clone(),
        status: loaded.run.status,
        in_place: false,
    }
}
