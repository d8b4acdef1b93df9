//! The operations that are not guard evaluation: start, approve (and withdraw), rollback, abort.

use std::collections::BTreeMap;

use waygate_core::approval::{
    approvable, may_approve, tally, visit_records, ApprovalRecord, NotApprovable,
};
use waygate_core::decide::{decide_rollback, may_override, OverrideTarget, RollbackRefusal};
use waygate_core::event::{Cause, EventKind, OverrideRecord};
use waygate_core::model::Workflow;
use waygate_core::run::{sha256_hex, Run, RunId, RunStatus};
use waygate_core::store::{RunChange, StoreError};
use waygate_core::vars;
use waygate_core::visit::visit_number;

use super::step::StepOutcome;
use super::{ensure_run_active, Engine, EngineError, Loaded};

/// A run just created.
#[derive(Debug, Clone)]
pub struct Started {
    /// The run as stored.
    pub run: Run,
}

/// An accepted approval (or withdrawal) and where the guard stands now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApproveOutcome {
    /// Distinct people whose approval counts for the guard now, sorted.
    pub approvers: Vec<String>,
    /// How many the guard needs (at least 1).
    pub min: u32,
}

impl Engine {
    /// Creates a run of `workflow` (validated from `text`, read from `file`) in `env`,
    /// pinning the text. Refuses if a declared var has no value, naming each.
    pub async fn start(
        &self,
        workflow: &Workflow,
        file: &str,
        text: &str,
        env: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Started, EngineError> {
        let getenv = self.getenv.clone();
        let resolved = vars::resolve(workflow, env, overrides, None, |k| getenv(k))?;
        let initial = workflow.state(workflow.initial).name.clone();
        let lock = workflow.environments.get(env).and_then(|e| e.lock.clone());
        let (workdir, file_path) = self.start_dir(file)?;
        // An id is its second plus 16 random bits: two starts in one second may draw the same
        // one, which the store refuses. A fresh id then, a few times (a second collision in a
        // row is already about 1 in 65,536 when two runs start together).
        let mut attempt = 1;
        let run = loop {
            let mut run = Run::new(
                (self.run_ids)(self.now()),
                &workflow.name,
                env,
                &initial,
                &self.actor,
                file,
                text,
            );
            run.vars = resolved.storable();
            run.lock = lock.clone();
            run.workdir = Some(workdir.clone());
            run.file_path = file_path.clone();
            let started = EventKind::RunStarted {
                workflow: workflow.name.clone(),
                env: env.to_owned(),
                state: initial.clone(),
                file: file.to_owned(),
                definition_hash: sha256_hex(text.as_bytes()),
                vars: run.vars.clone(),
                workdir: Some(workdir.clone()),
                file_path: file_path.clone(),
            };
            let events = self.events(vec![started]);
            match self.blocking(move |s| s.create_run(run, events)).await {
                Ok((run, _)) => break run,
                Err(EngineError::Store(StoreError::DuplicateRun(id)))
                    if attempt < START_ATTEMPTS =>
                {
                    tracing::debug!(run = %id, attempt, "run id taken; drawing another");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Started { run })
    }

    /// The canonical absolute directory a run started now is recorded in, and the workflow
    /// file's canonical path (if it can be found from there).
    fn start_dir(&self, file: &str) -> Result<(String, Option<String>), EngineError> {
        let shown = self.workdir.display().to_string();
        let dir = std::fs::canonicalize(&self.workdir).map_err(|e| EngineError::StartDir {
            dir: shown.clone(),
            problem: e.to_string(),
        })?;
        let Some(text) = dir.to_str() else {
            return Err(EngineError::StartDir {
                dir: shown,
                problem: "its path is not UTF-8, so it cannot be recorded".into(),
            });
        };
        let file_path = std::fs::canonicalize(dir.join(file))
            .ok()
            .and_then(|p| p.to_str().map(str::to_owned));
        Ok((text.to_owned(), file_path))
    }

    /// Records the actor's approval of the Approval guard `guard`, which must guard a
    /// transition out of the run's current state ([`approvable`]). A refusal (a guard of
    /// another state, not an allowed approver, or the initiator where that is not allowed) is
    /// recorded as refused too; a name that is no Approval guard at all records nothing.
    pub async fn approve(
        &self,
        id: &RunId,
        guard: &str,
        comment: Option<String>,
    ) -> Result<ApproveOutcome, EngineError> {
        let loaded = self.load(id).await?;
        loaded.ensure_active()?;
        let state = loaded.run.state.clone();
        let visit = visit_number(&loaded.events);
        let refused = |reason: String| EventKind::Approved {
            state: state.clone(),
            guard: guard.to_owned(),
            comment: comment.clone(),
            accepted: false,
            reason: Some(reason),
            visit: Some(visit),
        };
        let check = match approvable(&loaded.workflow, loaded.state, guard) {
            Ok(check) => check,
            Err(unknown @ NotApprovable::Unknown { .. }) => {
                return Err(EngineError::UnknownGuard(unknown))
            }
            Err(elsewhere) => {
                let reason = elsewhere.to_string();
                self.append(&loaded.run, vec![refused(reason.clone())])
                    .await?;
                return Err(EngineError::Refused(reason));
            }
        };
        if let Err(refusal) = may_approve(check, &self.actor, &loaded.run.initiator) {
            let reason = refusal.to_string();
            self.append(&loaded.run, vec![refused(reason.clone())])
                .await?;
            return Err(EngineError::Refused(reason));
        }
        let approved = EventKind::Approved {
            state: state.clone(),
            guard: guard.to_owned(),
            comment,
            accepted: true,
            reason: None,
            visit: Some(visit),
        };
        let (run, events) = (loaded.run.id.clone(), self.events(vec![approved]));
        let sealed = self.blocking(move |s| s.append(&run, events)).await?;
        self.wakes.wake(id);
        let seq = sealed.first().map_or(u64::MAX, |e| e.seq);
        // The run may have moved between reading it and recording the approval: then the
        // approval names a visit that is over and counts nowhere. Say so.
        let now = self.load(id).await?;
        let upto = now.events.partition_point(|e| e.seq <= seq);
        let as_recorded = &now.events[..upto];
        if visit_number(as_recorded) != visit {
            return Err(EngineError::MovedMeanwhile {
                run: now.run.id.clone(),
                state: now.run.state.clone(),
                what: "approval",
            });
        }
        let t = tally(
            check,
            guard,
            &visit_records(as_recorded, &state),
            &loaded.run.initiator,
        );
        Ok(ApproveOutcome {
            approvers: t.approvers,
            min: t.need,
        })
    }

    /// Withdraws the actor's approval of `guard` given in the current visit of the run's
    /// state, while it has not been used (the run has not left the state). Recorded as
    /// `ApprovalWithdrawn`; with no such approval nothing is recorded.
    ///
    /// The withdrawal is a versioned commit, not an append: a step that read the approval
    /// before it cannot then commit the move it allowed (it conflicts, reads again and
    /// waits), and a withdrawal that loses to the move is told the approval was used.
    pub async fn withdraw(
        &self,
        id: &RunId,
        guard: &str,
        comment: Option<String>,
    ) -> Result<ApproveOutcome, EngineError> {
        let mut first_visit = None;
        let mut lost = 0;
        loop {
            let (loaded, visit) = self
                .load_in_visit(id, &mut first_visit, "withdrawal")
                .await?;
            let check = approvable(&loaded.workflow, loaded.state, guard)
                .map_err(|e| EngineError::NothingToWithdraw(e.to_string()))?;
            let state = loaded.run.state.clone();
            let before = tally(
                check,
                guard,
                &visit_records(&loaded.events, &state),
                &loaded.run.initiator,
            );
            if !before.counts(&self.actor) {
                return Err(EngineError::NothingToWithdraw(format!(
                    "{} has no approval of `{guard}` in this visit of `{state}` to withdraw",
                    self.actor
                )));
            }
            let withdrawn = EventKind::ApprovalWithdrawn {
                state,
                guard: guard.to_owned(),
                comment: comment.clone(),
                visit,
            };
            let committed = self
                .commit(&loaded.run, RunChange::default(), vec![withdrawn])
                .await;
            match committed {
                Ok(_) => {
                    // Committed at the version read: the withdrawal is in this visit.
                    let mut records = visit_records(&loaded.events, &loaded.run.state);
                    records.push(ApprovalRecord {
                        guard: guard.to_owned(),
                        actor: self.actor.clone(),
                        given: false,
                    });
                    let t = tally(check, guard, &records, &loaded.run.initiator);
                    return Ok(ApproveOutcome {
                        approvers: t.approvers,
                        min: t.need,
                    });
                }
                Err(EngineError::Store(StoreError::Conflict { .. })) if lost < RETRIES => {
                    lost += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Break-glass: marks guard `guard` passed for the current visit of the run's state, when
    /// the actor may ([`may_override`] owns who and when), recording `Overridden` with the
    /// reason and what the check said. A versioned commit: an override read for one visit
    /// never lands in the next; losing to bookkeeping in the same visit is tried again.
    pub async fn override_guard(
        &self,
        id: &RunId,
        guard: &str,
        reason: &str,
    ) -> Result<OverrideTarget, EngineError> {
        ensure_reason("override", reason)?;
        let mut first_visit = None;
        let mut lost = 0;
        loop {
            let (loaded, visit) = self.load_in_visit(id, &mut first_visit, "override").await?;
            let target = may_override(
                &loaded.workflow,
                loaded.state,
                &loaded.events,
                guard,
                &self.actor,
                &loaded.run.initiator,
            )
            .map_err(EngineError::Override)?;
            let overridden = EventKind::Overridden(OverrideRecord {
                state: loaded.run.state.clone(),
                to: target.to.clone(),
                guard: guard.to_owned(),
                reason: reason.to_owned(),
                said: target.said.clone(),
                visit,
            });
            match self
                .commit(&loaded.run, RunChange::default(), vec![overridden])
                .await
            {
                Ok(_) => return Ok(target),
                Err(EngineError::Store(StoreError::Conflict { .. })) if lost < RETRIES => {
                    lost += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Loads run `id`, which must not have ended, for a versioned commit meant for one visit
    /// of its state: the visit it is in on the first try (`first`), and still that visit on
    /// a try after a lost commit, or [`EngineError::MovedMeanwhile`] naming `what`.
    async fn load_in_visit(
        &self,
        id: &RunId,
        first: &mut Option<u32>,
        what: &'static str,
    ) -> Result<(Loaded, u32), EngineError> {
        let loaded = self.load(id).await?;
        loaded.ensure_active()?;
        let visit = visit_number(&loaded.events);
        if *first.get_or_insert(visit) != visit {
            return Err(EngineError::MovedMeanwhile {
                run: loaded.run.id.clone(),
                state: loaded.run.state.clone(),
                what,
            });
        }
        Ok((loaded, visit))
    }

    /// Sends the run to the workflow's rollback state now, from any non-terminal state that is
    /// not already on the rollback path ([`waygate_core::decide::decide_rollback`]).
    ///
    /// Two operators pressing the button at once both read the run before the rollback; the
    /// store's version check lets exactly one commit. The other reads the run again: it is on
    /// its rollback path now, so that one is told the rollback is already under way. A commit
    /// lost to anything else (a drive recording that it waits, an approval withdrawn) is tried
    /// again from where the run is then: an operator's rollback does not fail on a neighbour's
    /// bookkeeping. No rollback action runs twice.
    pub async fn rollback(&self, id: &RunId, reason: &str) -> Result<StepOutcome, EngineError> {
        ensure_reason("rollback", reason)?;
        let mut lost = 0;
        loop {
            let loaded = self.load(id).await?;
            loaded.ensure_active()?;
            // Its actions run in the run's directory: refuse before moving, not halfway.
            loaded.ensure_workdir()?;
            let target = match decide_rollback(&loaded.workflow, loaded.state, &loaded.events) {
                Ok(target) => target,
                Err(RollbackRefusal::NoRollbackState) => {
                    return Err(EngineError::NoRollback(loaded.workflow.name.clone()))
                }
                Err(RollbackRefusal::AlreadyOnPath) => return Err(under_way(&loaded)),
            };
            let from = loaded.run.state.clone();
            let to = loaded.workflow.state(target).name.clone();
            let requested = EventKind::RollbackRequested {
                from: from.clone(),
                to: to.clone(),
                reason: reason.to_owned(),
            };
            let committed = self
                .commit_move(
                    &loaded,
                    vec![requested],
                    &to,
                    Cause::Rollback,
                    Some(reason.to_owned()),
                )
                .await;
            match committed {
                Ok(()) => {
                    let mut quiet = super::drive::NoProgress;
                    return self
                        .enter(id, &from, &to, Cause::Rollback, &mut quiet)
                        .await;
                }
                Err(EngineError::Store(StoreError::Conflict { .. })) if lost < RETRIES => {
                    lost += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Ends the run where it is; no further transitions. The reason must not be blank.
    pub async fn abort(&self, id: &RunId, reason: &str) -> Result<Run, EngineError> {
        ensure_reason("abort", reason)?;
        // The run record alone, not its history nor its workflow: a run whose history has a
        // damaged record, or whose pinned definition no longer validates, can still be
        // aborted, and its environment freed.
        let owned = id.clone();
        let run = self.blocking(move |s| s.load_run(&owned)).await?;
        ensure_run_active(&run)?;
        let state = run.state.clone();
        let aborted = self
            .commit(
                &run,
                RunChange::status(RunStatus::Aborted),
                vec![
                    EventKind::Aborted {
                        state: state.clone(),
                        reason: reason.to_owned(),
                    },
                    EventKind::RunEnded {
                        state,
                        status: RunStatus::Aborted,
                    },
                ],
            )
            .await?;
        // Announced if the definition reads; an abort never waits on it otherwise.
        self.notify(id).await;
        Ok(aborted)
    }
}

/// How many ids `start` draws before it reports that the id is taken.
const START_ATTEMPTS: u32 = 5;

/// How often `rollback` and `approve --withdraw` read the run again after losing a commit
/// to another command before they report the conflict.
const RETRIES: u32 = 5;

/// The refusal of a second rollback, saying where the run is and who rolled it back.
fn under_way(loaded: &Loaded) -> EngineError {
    let by = loaded.events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Transitioned { to, .. }
            if loaded.workflow.state_id(to) == loaded.workflow.rollback =>
        {
            Some(format!(
                "{} at {}",
                e.actor,
                e.at.strftime("%Y-%m-%d %H:%M:%SZ")
            ))
        }
        _ => None,
    });
    EngineError::RollbackUnderWay {
        run: loaded.run.id.clone(),
        state: loaded.run.state.clone(),
        since: by,
    }
}

/// A rollback or abort says why: the reason is what the audit trail keeps of the decision,
/// so blank text ([`waygate_core::text::is_blank`]: empty, or only whitespace and invisible
/// characters) is refused before anything is read or written.
fn ensure_reason(what: &'static str, reason: &str) -> Result<(), EngineError> {
    if waygate_core::text::is_blank(reason) {
        return Err(EngineError::BlankReason(what));
    }
    Ok(())
}
