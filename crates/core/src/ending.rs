//! How a run ended, read off the run and its journal: one answer for every command that
//! reports it (`drive` and `run` when they end it, see it ended by another command, or find
//! it ended already; `advance`; `status`), so they agree on the words and the exit code.

use crate::entry::{action_histories, ActionStatus};
use crate::event::{Event, EventKind};
use crate::model::Workflow;
use crate::run::{Run, RunStatus};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
    let visit = crate::visit::current_visit(events);
    let failed_actions = action_histories(visit, &run.state, count)
        .into_iter()
        .enumerate()
        .filter_map(|(i, h)| match h.status(false) {
            (ActionStatus::Failed, detail) => Some(FailedAction {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::run::RunId;
    use crate::validate::validate;

    const FLOW: &str = r#"Workflow(
        name: "t",
        initial: "a",
        states: {
            "a": (),
            "done": (terminal: Success, on_enter: [Command(run: ["notify"]), Command(run: ["archive"])]),
        },
        transitions: [(from: "a", to: "done")],
    )"#;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    fn event(seq: u64, time: &str, actor: &str, kind: EventKind) -> Event {
        Event::seal(
            seq,
            RunId::from("r"),
            at(time),
            NewEvent::new(actor, kind),
            "",
        )
    }

    fn run(state: &str, status: RunStatus, entered: &str) -> Run {
        let mut run = Run::new(RunId::from("r"), "t", "dev", state, "ana", "t.ron", FLOW);
        run.status = status;
        run.state_entered_at = at(entered);
        run
    }

    #[test]
    fn how_runs_end() {
        let v = validate("t.ron", FLOW);
        let w = v.workflow.expect("valid");
        let finished = |seq, time, index, ok: bool| {
            event(
                seq,
                time,
                "ana",
                EventKind::ActionFinished {
                    state: "done".into(),
                    index,
                    ok,
                    detail: if ok { "exit status 0" } else { "exit status 7" }.into(),
                    evidence: None,
                    duration_ms: 1,
                    outputs: Default::default(),
                },
            )
        };
        let started = |seq, time, index| {
            event(
                seq,
                time,
                "ana",
                EventKind::ActionStarted {
                    state: "done".into(),
                    index,
                    action: format!("Command {index}"),
                },
            )
        };
        // Succeeded in a terminal state whose first action failed: named, status unchanged.
        let events = vec![
            started(1, "2026-01-01T00:00:01Z", 0),
            finished(2, "2026-01-01T00:00:02Z", 0, false),
            started(3, "2026-01-01T00:00:03Z", 1),
            finished(4, "2026-01-01T00:00:04Z", 1, true),
        ];
        let done = run("done", RunStatus::Succeeded, "2026-01-01T00:00:00Z");
        let end = ending(&w, &done, &events).expect("ended");
        assert_eq!(end.how, How::Terminal);
        assert_eq!(end.status, RunStatus::Succeeded);
        assert_eq!(
            end.failed_actions,
            vec![FailedAction {
                number: 1,
                action: "Command 0".into(),
                detail: "exit status 7".into()
            }]
        );
        // Failures of an earlier visit do not count.
        let mut revisited = events.clone();
        revisited.push(event(
            5,
            "2026-01-01T00:00:05Z",
            "ana",
            EventKind::Transitioned {
                from: "a".into(),
                to: "done".into(),
                cause: crate::event::Cause::Advance,
                reason: None,
            },
        ));
        assert!(ending(&w, &done, &revisited)
            .expect("ended")
            .failed_actions
            .is_empty());
        // Aborted: who and why, from the latest Aborted event.
        let aborted = vec![event(
            1,
            "2026-01-01T00:00:01Z",
            "bob",
            EventKind::Aborted {
                state: "a".into(),
                reason: "superseded".into(),
            },
        )];
        let a = run("a", RunStatus::Aborted, "2026-01-01T00:00:00Z");
        assert_eq!(
            ending(&w, &a, &aborted).expect("ended").how,
            How::Aborted {
                by: "bob".into(),
                reason: "superseded".into()
            }
        );
        // Failed outside a terminal state: in place. Not ended: none.
        let failed = run("a", RunStatus::Failed, "2026-01-01T00:00:00Z");
        assert_eq!(ending(&w, &failed, &[]).expect("ended").how, How::InPlace);
        assert_eq!(
            ending(
                &w,
                &run("a", RunStatus::Waiting, "2026-01-01T00:00:00Z"),
                &[]
            ),
            None
        );
    }
}
