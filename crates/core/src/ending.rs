//! How a run ended, read off the run and its journal: one answer for every command that
//! reports it (`drive` and `run` when they end it, see it ended by another command, or find
//! it ended already; `advance`; `status`), so they agree on the words and the exit code.

use crate::entry::{action_histories, Attempt};
use crate::event::{Event, EventKind};
use crate::model::Workflow;
use crate::run::{Run, RunStatus};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// In a terminal state, succeeded or failed as the state says.
    Terminal,
    /// Failed where it was: an incident or a failed action with no failure path to follow.
    InPlace,
    /// Stopped by `waygate abort`.
    Aborted {
        /// Who aborted it.
        by: String,
        /// The reason they gave.
        reason: String,
    },
}

/// An action of the final state that failed (in a terminal state, this does not change how
/// the run ended, but people must hear of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAction {
    /// Position in `on_enter`, from 1 as people count.
    pub number: usize,
    /// What it ran, secrets redacted.
    pub action: String,
    /// Why it failed.
    pub detail: String,
}

/// A run's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The state it ended in.
    pub state: String,
    /// Its final status (`succeeded`, `failed` or `aborted`).
    pub status: RunStatus,
    /// How.
    pub how: How,
    /// Actions of the final state that failed.
    pub failed_actions: Vec<FailedAction>,
}

/// How `run` ended, given its workflow and every event of the run; `None` while it has not.
pub fn ending(workflow: &Workflow, run: &Run, events: &[Event]) -> Option<Ending> {
    if !run.status.is_ended() {
        return None;
    }
    let node = workflow.state_id(&run.state);
    let how = match run.status {
        RunStatus::Aborted => {
            let (by, reason) = events
                .iter()
                .rev()
                .find_map(|e| match &e.kind {
                    EventKind::Aborted { reason, .. } => Some((e.actor.clone(), reason.clone())),
                    _ => None,
                })
                .unwrap_or_default();
            How::Aborted { by, reason }
        }
        _ if node.is_some_and(|n| workflow.state(n).terminal.is_some()) => How::Terminal,
        _ => How::InPlace,
    };
    let count = node.map_or(0, |n| workflow.state(n).on_enter.len());
    let visit = events.iter().filter(|e| e.at >= run.state_entered_at);
    let failed_actions = action_histories(visit, &run.state, count)
        .into_iter()
        .enumerate()
        .filter_map(|(i, h)| match h.last {
            Some(Attempt::Finished { ok: false, detail }) => Some(FailedAction {
                number: i + 1,
                action: h.description.unwrap_or_default(),
                detail,
            }),
            _ => None,
        })
        .collect();
    Some(Ending {
        state: run.state.clone(),
        status: run.status,
        how,
        failed_actions,
    })
}
