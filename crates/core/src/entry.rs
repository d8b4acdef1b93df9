//! Entering a state, as a pure decision: which `on_enter` action runs next, and what follows
//! once they are done.
//!
//! Entering a state and running its actions are separate steps (the transition is committed
//! first), so any command that acts on a run first finishes the entry of its state. What to do
//! is read off the journal of the current visit alone, through [`ActionHistory`], and decided
//! by [`decide_entry`]; the engine runs actions and commits around it, never re-deriving a rule.
//!
//! The rules (also in `docs/cli.md`, `drive`):
//! - Actions run in file order, each at least once. One that finished `ok` is never run again.
//! - An action stopped by an operator's signal (recorded `ActionInterrupted`) runs again from
//!   its start; a deliberate stop is never a failure of the action, however often it happens.
//! - An action whose process died with no record of how (`kill -9`, power loss, out of memory:
//!   started, neither finished nor interrupted) runs again too, but after [`CRASH_LIMIT`] such
//!   deaths in one visit it is recorded as failed instead of run again: something about it is
//!   likely killing waygate, and a run that loops for ever is worse than its failure path.
//! - In a non-terminal state the first failed action sends the run to the state's failure path
//!   (`on_failure`, else the workflow's `rollback`), or fails it in place if there is none.
//! - In a terminal state every action runs even if one fails (they announce and archive), and
//!   the run then ends as the state says; failed ones are listed, not hidden.

use petgraph::graph::NodeIndex;
use serde::Serialize;

use crate::event::{Event, EventKind};
use crate::model::{Terminal, Workflow};
use crate::run::RunStatus;

/// How many times an action's process may die unrecorded in one visit before the action is
/// recorded as failed rather than run again.
pub const CRASH_LIMIT: usize = 2;

/// How the latest attempt of an action ended, as the journal says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Started and nothing since: still running (if its process holds the run's lock) or
    /// died unrecorded.
    Started,
    /// Stopped by an operator's signal.
    Interrupted {
        /// `SIGINT`, `SIGTERM` or `SIGHUP`.
        signal: String,
    },
    /// Finished.
    Finished {
        /// Whether it succeeded.
        ok: bool,
        /// One line for people.
        detail: String,
    },
}

/// One `on_enter` action's record in the current visit of its state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionHistory {
    /// What it runs (secrets redacted), from its latest `ActionStarted`.
    pub description: Option<String>,
    /// How its latest attempt ended; `None` if it never started.
    pub last: Option<Attempt>,
    /// Attempts whose process died with no record of how (not the latest one if it is
    /// [`Attempt::Started`]: that one may still be running).
    pub crashes: usize,
}

/// An action's status as `status` and `drive` show it (the `status` field of `status`'s
/// `actions`, `docs/cli.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    /// Not started in this visit.
    Pending,
    /// Started, and the process that started it holds the run's lock.
    Running,
    /// Finished well.
    Ok,
    /// Finished badly.
    Failed,
    /// Stopped by an operator's signal, or its process died unrecorded: it runs again on
    /// resume ([`decide_entry`]).
    Interrupted,
}

impl ActionStatus {
    /// The lower-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Pending => "pending",
            ActionStatus::Running => "running",
            ActionStatus::Ok => "ok",
            ActionStatus::Failed => "failed",
            ActionStatus::Interrupted => "interrupted",
        }
    }
}

impl ActionHistory {
    /// The action's status, and one line for people on it. `running_elsewhere`: another
    /// process holds the run's lock, so an attempt started and not finished is running there
    /// rather than dead.
    pub fn status(&self, running_elsewhere: bool) -> (ActionStatus, String) {
        match &self.last {
            None => (ActionStatus::Pending, String::new()),
            Some(Attempt::Started) if running_elsewhere => (ActionStatus::Running, String::new()),
            Some(Attempt::Started) => (
                ActionStatus::Interrupted,
                "the process running it died; it runs again on resume".to_owned(),
            ),
            Some(Attempt::Interrupted { signal }) => (
                ActionStatus::Interrupted,
                format!("stopped by {signal}; it runs again on resume"),
            ),
            Some(Attempt::Finished { ok: true, detail }) => (ActionStatus::Ok, detail.clone()),
            Some(Attempt::Finished { ok: false, detail }) => (ActionStatus::Failed, detail.clone()),
        }
    }
}

/// Reads the history of each of `count` actions of `state` from `visit`, the events since the
/// run entered the state (oldest first).
pub fn action_histories<'e>(
    visit: impl IntoIterator<Item = &'e Event>,
    state: &str,
    count: usize,
) -> Vec<ActionHistory> {
    let mut out = vec![ActionHistory::default(); count];
    let slot = |out: &mut [ActionHistory], s: &str, i: u32| -> Option<usize> {
        let i = i as usize;
        (s == state && i < out.len()).then_some(i)
    };
    for e in visit {
        match &e.kind {
            EventKind::ActionStarted {
                state: s,
                index,
                action,
            } => {
                if let Some(i) = slot(&mut out, s, *index) {
                    let h = &mut out[i];
                    // A start with no record since the previous one: that process died.
                    if h.last == Some(Attempt::Started) {
                        h.crashes += 1;
                    }
                    h.description = Some(action.clone());
                    h.last = Some(Attempt::Started);
                }
            }
            EventKind::ActionFinished {
                state: s,
                index,
                ok,
                detail,
                ..
            } => {
                if let Some(i) = slot(&mut out, s, *index) {
                    out[i].last = Some(Attempt::Finished {
                        ok: *ok,
                        detail: detail.clone(),
                    });
                }
            }
            EventKind::ActionInterrupted {
                state: s,
                index,
                signal,
            } => {
                if let Some(i) = slot(&mut out, s, *index) {
                    out[i].last = Some(Attempt::Interrupted {
                        signal: signal.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// Why an action runs again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rerun {
    /// An operator's signal stopped its last attempt.
    Interrupted {
        /// The signal.
        signal: String,
    },
    /// The process running it died unrecorded this many times (fewer than [`CRASH_LIMIT`]).
    Crashed(usize),
}

impl Rerun {
    /// Why, in words for people: `stopped by SIGINT`, `the process running it died without
    /// a record`.
    pub fn why(&self) -> String {
        match self {
            Rerun::Interrupted { signal } => format!("stopped by {signal}"),
            Rerun::Crashed(1) => "the process running it died without a record".to_owned(),
            Rerun::Crashed(n) => {
                format!("the process running it died without a record, {n} times")
            }
        }
    }
}

/// What entering the state needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Nothing: the state's actions all finished well (or it has none) and it is not terminal.
    Complete,
    /// Run action `index` (from 0); `rerun` says why it runs again, if it does.
    Run {
        /// The action.
        index: usize,
        /// Why it runs again.
        rerun: Option<Rerun>,
    },
    /// Record action `index` as failed without running it: its process died unrecorded
    /// `crashes` times ([`CRASH_LIMIT`]).
    GiveUp {
        /// The action.
        index: usize,
        /// How often it died.
        crashes: usize,
    },
    /// Action `index` failed: the run goes to `to` (the failure path), or fails in place.
    Fail {
        /// The action.
        index: usize,
        /// The failure path's state, if the workflow has one from here.
        to: Option<NodeIndex>,
        /// The transition's reason, for the journal and for people.
        reason: String,
    },
    /// A terminal state's actions are all done: the run ends with `status`. `failed` lists the
    /// actions (from 0) that failed; they do not change how the run ended.
    End {
        /// How the run ends.
        status: RunStatus,
        /// Failed actions.
        failed: Vec<usize>,
    },
}

/// The status a run ends with on entering a terminal state.
pub fn terminal_status(t: Terminal) -> RunStatus {
    match t {
        Terminal::Success => RunStatus::Succeeded,
        Terminal::Failure => RunStatus::Failed,
    }
}

/// Decides what entering `state` needs next, given the run's history `events` (oldest first:
/// whether it is on its rollback path, see [`Workflow::failure_target`]) and its actions'
/// histories (one per `on_enter` action, in order; see [`action_histories`]). The rules are
/// in the module docs.
pub fn decide_entry(
    workflow: &Workflow,
    state: NodeIndex,
    events: &[Event],
    actions: &[ActionHistory],
) -> Entry {
    let node = workflow.state(state);
    let mut failed = Vec::new();
    for (index, h) in actions.iter().enumerate() {
        let attempt = h.last.as_ref();
        match attempt {
            Some(Attempt::Finished { ok: true, .. }) => continue,
            Some(Attempt::Finished { ok: false, detail }) => {
                if node.terminal.is_some() {
                    failed.push(index);
                    continue;
                }
                let what = h
                    .description
                    .as_deref()
                    .map_or_else(String::new, |d| format!(" ({d})"));
                return Entry::Fail {
                    index,
                    to: workflow.failure_target(state, events),
                    reason: format!("action {}{what} failed: {detail}", index + 1),
                };
            }
            // The latest attempt died unrecorded (a running one is the caller's to tell
            // apart: it holds the run's lock).
            Some(Attempt::Started) => {
                let crashes = h.crashes + 1;
                if crashes >= CRASH_LIMIT {
                    return Entry::GiveUp { index, crashes };
                }
                return Entry::Run {
                    index,
                    rerun: Some(Rerun::Crashed(crashes)),
                };
            }
            Some(Attempt::Interrupted { signal }) => {
                return Entry::Run {
                    index,
                    rerun: Some(Rerun::Interrupted {
                        signal: signal.clone(),
                    }),
                }
            }
            None => return Entry::Run { index, rerun: None },
        }
    }
    match node.terminal {
        Some(t) => Entry::End {
            status: terminal_status(t),
            failed,
        },
        None => Entry::Complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::run::RunId;
    use crate::validate::validate;

    const FLOW: &str = r#"Workflow(
        name: "t",
        initial: "deploy",
        rollback: "rollback",
        states: {
            "deploy": (on_enter: [Command(run: ["a"]), Command(run: ["b"])]),
            "rollback": (on_enter: [Command(run: ["revert"])]),
            "done": (terminal: Success, on_enter: [Command(run: ["notify"]), Command(run: ["archive"])]),
            "rolled_back": (terminal: Failure),
        },
        transitions: [
            (from: "deploy", to: "done"),
            (from: "rollback", to: "rolled_back"),
        ],
    )"#;

    fn workflow(text: &str) -> Workflow {
        let v = validate("t.ron", text);
        v.workflow.unwrap_or_else(|| panic!("{:?}", v.diagnostics))
    }

    /// Events from a compact script: `s0` started action 0, `f0`/`x0` finished ok/failed,
    /// `i0` interrupted by SIGTERM.
    fn events(state: &str, script: &str) -> Vec<Event> {
        let at: jiff::Timestamp = "2026-11-26T16:45:01Z".parse().expect("timestamp");
        script
            .split_whitespace()
            .enumerate()
            .map(|(seq, step)| {
                let (op, index) = step.split_at(1);
                let index: u32 = index.parse().expect("index");
                let state = state.to_owned();
                let kind = match op {
                    "s" => EventKind::ActionStarted {
                        state,
                        index,
                        action: format!("Command {index}"),
                    },
                    "f" | "x" => EventKind::ActionFinished {
                        state,
                        index,
                        ok: op == "f",
                        detail: "exit status 1".into(),
                        evidence: None,
                        duration_ms: 1,
                        outputs: Default::default(),
                    },
                    "i" => EventKind::ActionInterrupted {
                        state,
                        index,
                        signal: "SIGTERM".into(),
                    },
                    _ => panic!("bad step {step}"),
                };
                Event::seal(
                    seq as u64 + 1,
                    RunId::from("r"),
                    at,
                    NewEvent::new("ci", kind),
                    "",
                )
            })
            .collect()
    }

    #[test]
    fn table() {
        let w = workflow(FLOW);
        let id = |s: &str| w.state_id(s).expect("state");
        let interrupted = || {
            Some(Rerun::Interrupted {
                signal: "SIGTERM".into(),
            })
        };
        // (case, state, journal of the visit, expected)
        let cases: Vec<(&str, &str, &str, Entry)> = vec![
            (
                "nothing ran yet: the first action",
                "deploy",
                "",
                Entry::Run {
                    index: 0,
                    rerun: None,
                },
            ),
            (
                "the next action after a finished one",
                "deploy",
                "s0 f0",
                Entry::Run {
                    index: 1,
                    rerun: None,
                },
            ),
            (
                "all finished: complete",
                "deploy",
                "s0 f0 s1 f1",
                Entry::Complete,
            ),
            (
                "a failed action takes the failure path, later ones never run",
                "deploy",
                "s0 x0",
                Entry::Fail {
                    index: 0,
                    to: Some(id("rollback")),
                    reason: "action 1 (Command 0) failed: exit status 1".into(),
                },
            ),
            (
                "interrupted by an operator: run again",
                "deploy",
                "s0 f0 s1 i1",
                Entry::Run {
                    index: 1,
                    rerun: interrupted(),
                },
            ),
            (
                "interrupted by an operator many times: still run again, never failed",
                "deploy",
                "s0 i0 s0 i0 s0 i0 s0 i0",
                Entry::Run {
                    index: 0,
                    rerun: interrupted(),
                },
            ),
            (
                "died once: run again",
                "deploy",
                "s0",
                Entry::Run {
                    index: 0,
                    rerun: Some(Rerun::Crashed(1)),
                },
            ),
            (
                "died twice: failed, not run a third time",
                "deploy",
                "s0 s0",
                Entry::GiveUp {
                    index: 0,
                    crashes: 2,
                },
            ),
            (
                "operator stops between deaths do not count as deaths",
                "deploy",
                "s0 i0 s0 i0 s0",
                Entry::Run {
                    index: 0,
                    rerun: Some(Rerun::Crashed(1)),
                },
            ),
            (
                "a death, then an operator stop: runs again",
                "deploy",
                "s0 s0 i0",
                Entry::Run {
                    index: 0,
                    rerun: interrupted(),
                },
            ),
            (
                "a death, an operator stop, a death: the limit counts deaths",
                "deploy",
                "s0 s0 i0 s0",
                Entry::GiveUp {
                    index: 0,
                    crashes: 2,
                },
            ),
            (
                "the recorded failure after giving up takes the failure path",
                "deploy",
                "s0 s0 x0",
                Entry::Fail {
                    index: 0,
                    to: Some(id("rollback")),
                    reason: "action 1 (Command 0) failed: exit status 1".into(),
                },
            ),
            (
                "a terminal state runs every action even after a failure",
                "done",
                "s0 x0",
                Entry::Run {
                    index: 1,
                    rerun: None,
                },
            ),
            (
                "a terminal state ends as it says, listing failed actions",
                "done",
                "s0 x0 s1 f1",
                Entry::End {
                    status: RunStatus::Succeeded,
                    failed: vec![0],
                },
            ),
            (
                "a terminal state without actions ends",
                "rolled_back",
                "",
                Entry::End {
                    status: RunStatus::Failed,
                    failed: vec![],
                },
            ),
            (
                "the rollback state has no failure path of its own: fail in place",
                "rollback",
                "s0 x0",
                Entry::Fail {
                    index: 0,
                    to: None,
                    reason: "action 1 (Command 0) failed: exit status 1".into(),
                },
            ),
        ];
        for (name, state, script, expected) in cases {
            let s = id(state);
            let visit = events(state, script);
            let histories = action_histories(&visit, state, w.state(s).on_enter.len());
            assert_eq!(decide_entry(&w, s, &[], &histories), expected, "{name}");
        }
    }

    #[test]
    fn action_status_table() {
        // (case, journal of the visit, another process holds the lock, status, detail)
        let cases: &[(&str, &str, bool, ActionStatus, &str)] = &[
            ("never started", "", false, ActionStatus::Pending, ""),
            (
                "never started, lock held",
                "",
                true,
                ActionStatus::Pending,
                "",
            ),
            (
                "started, lock held elsewhere",
                "s0",
                true,
                ActionStatus::Running,
                "",
            ),
            (
                "started, nobody holds the lock: its process died",
                "s0",
                false,
                ActionStatus::Interrupted,
                "the process running it died; it runs again on resume",
            ),
            (
                "stopped by a signal",
                "s0 i0",
                false,
                ActionStatus::Interrupted,
                "stopped by SIGTERM; it runs again on resume",
            ),
            (
                "finished well",
                "s0 f0",
                false,
                ActionStatus::Ok,
                "exit status 1",
            ),
            (
                "finished badly",
                "s0 x0",
                true,
                ActionStatus::Failed,
                "exit status 1",
            ),
            (
                "the latest attempt counts",
                "s0 x0 s0",
                true,
                ActionStatus::Running,
                "",
            ),
        ];
        for &(name, script, elsewhere, status, detail) in cases {
            let h = action_histories(&events("deploy", script), "deploy", 1);
            assert_eq!(
                h[0].status(elsewhere),
                (status, detail.to_owned()),
                "{name}"
            );
            let json = serde_json::to_value(status).expect("json");
            assert_eq!(json.as_str(), Some(status.as_str()), "{name}");
        }
    }

    #[test]
    fn histories_ignore_other_states_and_unknown_indexes() {
        let mut visit = events("other", "s0 x0");
        visit.extend(events("deploy", "s7 s0 f0"));
        let h = action_histories(&visit, "deploy", 2);
        assert_eq!(h[0].status(false).0, ActionStatus::Ok);
        assert_eq!(h[0].crashes, 0);
        assert_eq!(h[1], ActionHistory::default());
    }
}
