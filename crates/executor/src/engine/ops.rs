//! The operations that are not guard evaluation: start, approve, rollback, abort.

use std::collections::BTreeMap;

use waygate_core::event::{Cause, EventKind};
use waygate_core::model::{Check, Workflow};
use waygate_core::run::{sha256_hex, Run, RunId, RunStatus};
use waygate_core::store::RunChange;
use waygate_core::vars;

use super::step::StepOutcome;
use super::{Engine, EngineError, Loaded};
use crate::guard::approval::may_approve;

/// A run just created.
#[derive(Debug, Clone)]
pub struct Started {
    /// The run as stored.
    pub run: Run,
}

/// An accepted approval and where the guard stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproveOutcome {
    /// Distinct people whose approval counts for the guard, this one included.
    pub approvers: Vec<String>,
    /// How many the guard needs.
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
        let id = RunId::generate(self.now());
        let initial = workflow.state(workflow.initial).name.clone();
        let mut run = Run::new(id, &workflow.name, env, &initial, &self.actor, file, text);
        run.vars = resolved.storable();
        let started = EventKind::RunStarted {
            workflow: workflow.name.clone(),
            env: env.to_owned(),
            state: initial,
            file: file.to_owned(),
            definition_hash: sha256_hex(text.as_bytes()),
            vars: run.vars.clone(),
        };
        let events = self.events(vec![started]);
        let (run, _) = self.blocking(move |s| s.create_run(run, events)).await?;
        Ok(Started { run })
    }

    /// Records the actor's approval of the Approval guard `guard`. A refusal (not an allowed
    /// approver, or the initiator where that is not allowed) is recorded as refused too.
    pub async fn approve(
        &self,
        id: &RunId,
        guard: &str,
        comment: Option<String>,
    ) -> Result<ApproveOutcome, EngineError> {
        let loaded = self.load(id).await?;
        ensure_active(&loaded)?;
        let check = approval_guard(&loaded, guard)?;
        let state = loaded.run.state.clone();
        if let Err(refusal) = may_approve(&check, &self.actor, &loaded.run.initiator) {
            let reason = refusal.to_string();
            self.append(
                &loaded.run,
                vec![EventKind::Approved {
                    state,
                    guard: guard.to_owned(),
                    comment,
                    accepted: false,
                    reason: Some(reason.clone()),
                }],
            )
            .await?;
            return Err(EngineError::Refused(reason));
        }
        self.append(
            &loaded.run,
            vec![EventKind::Approved {
                state,
                guard: guard.to_owned(),
                comment,
                accepted: true,
                reason: None,
            }],
        )
        .await?;
        let mut approvers: Vec<String> = self
            .context(&loaded)
            .approvals
            .into_iter()
            .filter(|a| a.accepted && a.guard == guard)
            .map(|a| a.actor)
            .filter(|a| may_approve(&check, a, &loaded.run.initiator).is_ok())
            .collect();
        approvers.push(self.actor.clone());
        approvers.sort();
        approvers.dedup();
        Ok(ApproveOutcome {
            approvers,
            min: check.min,
        })
    }

    /// Sends the run to the workflow's rollback state now, from any non-terminal state.
    pub async fn rollback(&self, id: &RunId, reason: &str) -> Result<StepOutcome, EngineError> {
        let loaded = self.load(id).await?;
        ensure_active(&loaded)?;
        let Some(target) = loaded.workflow.rollback else {
            return Err(EngineError::NoRollback(loaded.workflow.name.clone()));
        };
        let from = loaded.run.state.clone();
        let to = loaded.workflow.state(target).name.clone();
        let requested = EventKind::RollbackRequested {
            from: from.clone(),
            to: to.clone(),
            reason: reason.to_owned(),
        };
        self.move_to(
            &loaded,
            vec![requested],
            &to,
            Cause::Rollback,
            Some(reason.to_owned()),
        )
        .await
    }

    /// Ends the run where it is; no further transitions.
    pub async fn abort(&self, id: &RunId, reason: &str) -> Result<Run, EngineError> {
        // The run record alone, not its history nor its workflow: a run whose history has a
        // damaged record, or whose pinned definition no longer validates, can still be
        // aborted, and its environment freed.
        let owned = id.clone();
        let run = self.blocking(move |s| s.load_run(&owned)).await?;
        ensure_run_active(&run)?;
        let state = run.state.clone();
        self.commit(
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
        .await
    }
}

fn ensure_active(loaded: &Loaded) -> Result<(), EngineError> {
    ensure_run_active(&loaded.run)
}

fn ensure_run_active(run: &Run) -> Result<(), EngineError> {
    if run.status.is_ended() {
        return Err(EngineError::Ended {
            run: run.id.clone(),
            status: run.status,
        });
    }
    Ok(())
}

/// The Approval guard named `name`: one leaving the current state if there is one, else any.
fn approval_guard(
    loaded: &Loaded,
    name: &str,
) -> Result<waygate_core::model::ApprovalCheck, EngineError> {
    let w = &loaded.workflow;
    let from_here: Vec<_> = w
        .outgoing(loaded.state)
        .into_iter()
        .map(|t| t.transition)
        .collect();
    let everywhere: Vec<_> = w.graph.edge_weights().collect();
    let approval = |t: &&waygate_core::model::Transition| {
        t.guards.iter().find_map(|g| match &g.check {
            Check::Approval(a) if g.name == name => Some(a.clone()),
            _ => None,
        })
    };
    if let Some(a) = from_here
        .iter()
        .find_map(approval)
        .or_else(|| everywhere.iter().find_map(approval))
    {
        return Ok(a);
    }
    let mut names: Vec<&str> = everywhere
        .iter()
        .flat_map(|t| &t.guards)
        .filter(|g| matches!(g.check, Check::Approval(_)))
        .map(|g| g.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    Err(EngineError::UnknownGuard {
        workflow: w.name.clone(),
        guard: name.to_owned(),
        hint: if names.is_empty() {
            " (it has no approval guards)".into()
        } else {
            format!(" (approval guards: {})", names.join(", "))
        },
    })
}
