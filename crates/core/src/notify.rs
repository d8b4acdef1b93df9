//! Notifications: which of a workflow's `notify` hooks are due for a run, from its history
//! alone (docs/workflow-format.md, "Notifications").
//!
//! An occurrence (a run starts waiting for an approval, finds its deploy window closed, starts
//! its rollback, ends) is read off the recorded events, with a key that names it once: the
//! visit and guard of a wait, the seq of the move into the rollback state, the run's end.
//! [`due`] is every (hook, occurrence) with no `Notified` event of that hook and key, so
//! whichever command next looks at the run (a `drive` poll, an `advance`, a restarted
//! process) sends what is due, and nothing twice: the engine sends under the run's lock and
//! records `Notified` after each. A notification whose process died between sending and
//! recording is sent again (at least once), with the same [`notification_id`].

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind};
use crate::model::{Check, Workflow};
use crate::outcome::Outcome;

/// What a hook is for, as written in `notify: [(on: [..], ..)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NotifyOn {
    /// A run starts waiting for an approval (once per guard per visit of the state).
    ApprovalWaiting,
    /// A run finds a deploy window closed (once per guard per visit of the state).
    WindowClosed,
    /// A run enters the workflow's rollback state.
    RollbackStarted,
    /// A run ends (succeeded, failed or aborted).
    RunEnded,
}

impl NotifyOn {
    /// The name as written in files and recorded in `Notified`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOn::ApprovalWaiting => "ApprovalWaiting",
            NotifyOn::WindowClosed => "WindowClosed",
            NotifyOn::RollbackStarted => "RollbackStarted",
            NotifyOn::RunEnded => "RunEnded",
        }
    }
}

/// Template variables a hook's action may use besides the workflow's, `${notify.NAME}`.
pub const VARIABLES: &[&str] = &[
    "notify.on",
    "notify.message",
    "notify.state",
    "notify.guard",
    "notify.prompt",
    "notify.command",
    "notify.detail",
    "notify.id",
];

/// `${notify.id}`: names one notification, a hook (by its index in `notify`, from 0) announcing
/// one occurrence of run `run`: `RUN:HOOK:KEY`. The same when a notification is sent again
/// (at least once, docs/workflow-format.md), so a receiver can drop the second.
pub fn notification_id(run: &str, hook: usize, occurrence: &Occurrence) -> String {
    format!("{run}:{hook}:{}", occurrence.key)
}

/// Something that happened to a run that hooks may announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// What kind.
    pub on: NotifyOn,
    /// Names it once in the run's history.
    pub key: String,
    /// The state it happened in.
    pub state: String,
    /// The guard waiting, for waits.
    pub guard: Option<String>,
    /// What the guard said (a wait), the reason of the move (a rollback), or how the run ended.
    pub detail: String,
}

/// Every hook (by its index in `notify`) and occurrence that is due: happened in `events`
/// (one run's, oldest first) and has no `Notified` of that hook and key yet. Waits count
/// only in the run's current visit, by the latest evaluation of each transition there; a
/// rollback by the latest move into the rollback state.
pub fn due(workflow: &Workflow, events: &[Event]) -> Vec<(usize, Occurrence)> {
    if workflow.notify.is_empty() {
        return Vec::new();
    }
    let occurrences = occurrences(workflow, events);
    let sent = |hook: usize, key: &str| {
        events.iter().any(|e| {
            matches!(&e.kind, EventKind::Notified { hook: h, occurrence, .. }
                if *h as usize == hook && occurrence == key)
        })
    };
    let mut out = Vec::new();
    for o in occurrences {
        for (i, hook) in workflow.notify.iter().enumerate() {
            if hook.on.contains(&o.on) && !sent(i, &o.key) {
                out.push((i, o.clone()));
            }
        }
    }
    out
}

fn occurrences(workflow: &Workflow, events: &[Event]) -> Vec<Occurrence> {
    let mut out = Vec::new();
    let visit = crate::visit::visit_number(events);
    let current = crate::visit::current_visit(events);
    // The latest evaluation of each transition in this visit.
    let mut latest: Vec<(&str, &str, &[crate::outcome::GuardResult])> = Vec::new();
    for e in current {
        if let EventKind::GuardsEvaluated {
            state, to, guards, ..
        } = &e.kind
        {
            latest.retain(|(_, t, _)| t != to);
            latest.push((state, to, guards));
        }
    }
    for (state, to, results) in latest {
        let Some((from, _)) = workflow.state_by_name(state) else {
            continue;
        };
        let guards = workflow
            .outgoing_iter(from)
            .find(|t| workflow.state(t.to).name == to)
            .map_or(&[][..], |t| t.transition.guards.as_slice());
        for r in results.iter().filter(|r| r.outcome == Outcome::Waiting) {
            let on = match guards.iter().find(|g| g.name == r.name).map(|g| &g.check) {
                Some(Check::Approval(_)) => NotifyOn::ApprovalWaiting,
                Some(Check::Window(_)) => NotifyOn::WindowClosed,
                _ => continue,
            };
            let key = format!("{}:{visit}:{state}:{}", on.as_str(), r.name);
            if !out.iter().any(|o: &Occurrence| o.key == key) {
                out.push(Occurrence {
                    on,
                    key,
                    state: state.to_owned(),
                    guard: Some(r.name.clone()),
                    detail: r.detail.clone(),
                });
            }
        }
    }
    if let Some(rollback) = workflow.rollback.map(|r| &workflow.state(r).name) {
        let last = events.iter().rev().find_map(|e| match &e.kind {
            EventKind::Transitioned {
                from, to, reason, ..
            } if to == rollback => Some((e.seq, from, reason)),
            _ => None,
        });
        if let Some((seq, from, reason)) = last {
            out.push(Occurrence {
                on: NotifyOn::RollbackStarted,
                key: format!("RollbackStarted:{seq}"),
                state: from.clone(),
                guard: None,
                detail: reason.clone().unwrap_or_default(),
            });
        }
    }
    if let Some((state, status)) = events.iter().find_map(|e| match &e.kind {
        EventKind::RunEnded { state, status } => Some((state, status)),
        _ => None,
    }) {
        out.push(Occurrence {
            on: NotifyOn::RunEnded,
            key: "RunEnded".to_owned(),
            state: state.clone(),
            guard: None,
            detail: status.as_str().to_owned(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Cause;
    use crate::outcome::GuardResult;
    use crate::run::RunStatus;
    use crate::test_support::started;

    const FLOW: &str = r#"Workflow(
        name: "n", initial: "a", rollback: "rb",
        notify: [
            (on: [ApprovalWaiting, WindowClosed], action: Command(run: ["echo", "${notify.message}"])),
            (on: [RollbackStarted, RunEnded], action: Command(run: ["echo", "${notify.on}"])),
        ],
        states: { "a": (), "rb": (), "done": (terminal: Success), "failed": (terminal: Failure) },
        transitions: [
            (from: "a", to: "done", guards: [
                (name: "ok", check: Approval(prompt: "go?")),
                (name: "hours", check: Window(days: [Mon], start: "09:00", end: "17:00", tz: "UTC")),
            ]),
            (from: "rb", to: "failed"),
        ],
    )"#;

    fn ev(seq: u64, kind: EventKind) -> Event {
        crate::test_support::event(seq, "ana", kind)
    }

    fn evaluated(state: &str) -> EventKind {
        EventKind::GuardsEvaluated {
            state: state.into(),
            to: "done".into(),
            passed: false,
            guards: vec![
                GuardResult::immediate("ok", Outcome::Waiting, "later"),
                GuardResult::immediate("hours", Outcome::Waiting, "later"),
            ],
        }
    }

    fn keys(due: &[(usize, Occurrence)]) -> Vec<(usize, String)> {
        due.iter().map(|(h, o)| (*h, o.key.clone())).collect()
    }

    #[test]
    fn each_occurrence_is_due_once_per_hook_until_it_is_recorded() {
        let v = crate::validate::validate("n.ron", FLOW);
        let w = v.workflow.unwrap_or_else(|| panic!("{:#?}", v.diagnostics));
        let mut events = vec![
            ev(1, started()),
            ev(2, evaluated("a")),
            ev(3, evaluated("a")),
        ];
        assert_eq!(
            keys(&due(&w, &events)),
            vec![
                (0, "ApprovalWaiting:1:a:ok".to_owned()),
                (0, "WindowClosed:1:a:hours".to_owned())
            ],
            "two polls of one wait are one occurrence"
        );
        events.push(ev(
            4,
            EventKind::Notified {
                hook: 0,
                on: "ApprovalWaiting".into(),
                occurrence: "ApprovalWaiting:1:a:ok".into(),
                action: "Command echo".into(),
                ok: false,
                detail: "exit status 1".into(),
            },
        ));
        assert_eq!(
            keys(&due(&w, &events)),
            vec![(0, "WindowClosed:1:a:hours".to_owned())],
            "recorded, even as failed: not sent again"
        );
        events.push(ev(
            5,
            EventKind::Transitioned {
                from: "a".into(),
                to: "rb".into(),
                cause: Cause::Rollback,
                reason: Some("bad".into()),
            },
        ));
        events.push(ev(
            6,
            EventKind::RunEnded {
                state: "rb".into(),
                status: RunStatus::Failed,
            },
        ));
        // The waits were in the visit of `a`, which is over.
        assert_eq!(
            keys(&due(&w, &events)),
            vec![
                (1, "RollbackStarted:5".to_owned()),
                (1, "RunEnded".to_owned())
            ]
        );
    }
}
