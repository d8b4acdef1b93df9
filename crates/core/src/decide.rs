//! The transition decision, as a pure function.
//!
//! Evaluating guards (processes, HTTP, clocks) and committing to the store happen around this
//! function, never inside it: given where a run is, how long it has been there and what its
//! guards just returned, [`decide`] says what should happen. That keeps the rules of
//! `docs/workflow-format.md` ("In what order things run": first passing transition in file
//! order; waiting versus failing; incidents) in one place that unit tests can cover exhaustively.

use std::time::Duration;

use petgraph::graph::{EdgeIndex, NodeIndex};

use crate::event::{Cause, Event, EventKind};
use crate::model::Workflow;
use crate::outcome::{GuardResult, Outcome};

/// The guards of one outgoing transition, as just evaluated.
#[derive(Debug, Clone, Copy)]
pub struct Evaluation<'a> {
    /// The transition.
    pub transition: EdgeIndex,
    /// One result per guard, in guard order.
    pub results: &'a [GuardResult],
}

/// Why a run is being sent to its failure path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Incident {
    /// The state's deadline passed.
    Deadline(Duration),
    /// A `Watch` guard saw its check fail; names the guard.
    WatchBroke(String),
}

impl Incident {
    /// The cause the journal records for the move it makes.
    pub fn cause(&self) -> Cause {
        match self {
            Incident::Deadline(_) => Cause::Deadline,
            Incident::WatchBroke(_) => Cause::Watch,
        }
    }

    /// The move's reason, for the journal and for people; `state` is where it happened.
    pub fn reason(&self, state: &str) -> String {
        match self {
            Incident::Deadline(d) => format!(
                "deadline of {} in `{state}` passed",
                crate::duration::format_duration(*d)
            ),
            Incident::WatchBroke(g) => format!("watch `{g}` failed"),
        }
    }
}

/// What should happen to the run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// The run is in a terminal state; nothing to do.
    Ended,
    /// Take this transition: all its guards passed and it is the first such in file order.
    Take {
        /// The transition.
        transition: EdgeIndex,
        /// Its target.
        to: NodeIndex,
    },
    /// Something went wrong in the state: go to `to` (the state's `on_failure`, else the
    /// workflow's rollback) at once, or, with no such state, mark the run failed in place.
    Incident {
        /// Where the run goes, if anywhere.
        to: Option<NodeIndex>,
        /// What happened.
        incident: Incident,
    },
    /// Some guard is waiting (approval, timer, window, watch) and none failed everywhere.
    Wait,
    /// Every transition has a failing guard. `advance` exits 3; `drive` follows `on_failure`
    /// when the state has one.
    Blocked {
        /// The state's own `on_failure`.
        on_failure: Option<NodeIndex>,
    },
}

/// What one transition's guards say on their own, before [`decide`] weighs the transitions of
/// a state against each other (and against its deadline). The `passed` of a `GuardsEvaluated`
/// record and of `check`'s and `advance`'s reports is [`Passage::Passes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passage {
    /// Every guard passed (a transition without guards always passes).
    Passes,
    /// No guard failed and some are waiting: it may still pass.
    Waits,
    /// Some guard failed: it cannot pass this time.
    Fails,
}

/// What `results`, one transition's guards as just evaluated, say about it.
pub fn passage(results: &[GuardResult]) -> Passage {
    if results.iter().all(|r| r.outcome == Outcome::Pass) {
        Passage::Passes
    } else if results.iter().any(|r| r.outcome == Outcome::Fail) {
        Passage::Fails
    } else {
        Passage::Waits
    }
}

impl Decision {
    /// Whether evaluating more transitions could not change this decision: the run has
    /// ended, a transition is taken (the first passing in file order, when they are evaluated
    /// in file order), or an incident fires. `advance` stops evaluating there.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Decision::Ended | Decision::Take { .. } | Decision::Incident { .. }
        )
    }
}

/// Decides what happens to a run in `state` that entered it `in_state` ago, given its
/// history `events` (oldest first: whether it is on its rollback path) and the evaluations of
/// its outgoing transitions (in any order; file order is restored here).
///
/// Priority: a terminal state ends; a passed deadline or a broken watch is an incident; then
/// the first transition (file order) whose guards all pass is taken; then waiting if any
/// transition could still pass (none of its guards failed, some waiting); else blocked.
pub fn decide(
    workflow: &Workflow,
    state: NodeIndex,
    events: &[Event],
    in_state: Duration,
    evaluations: &[Evaluation<'_>],
) -> Decision {
    let node = workflow.state(state);
    if node.terminal.is_some() {
        return Decision::Ended;
    }
    let failure_to = workflow.failure_target(state, events);
    if let Some(deadline) = node
        .deadline
        .filter(|_| deadline_passed(workflow, state, in_state))
    {
        return Decision::Incident {
            to: failure_to,
            incident: Incident::Deadline(deadline),
        };
    }
    if let Some(broken) = evaluations
        .iter()
        .flat_map(|e| e.results)
        .find(|r| r.incident && r.outcome == Outcome::Fail)
    {
        return Decision::Incident {
            to: failure_to,
            incident: Incident::WatchBroke(broken.name.clone()),
        };
    }
    let mut waiting = false;
    for t in workflow.outgoing_iter(state) {
        let Some(eval) = evaluations.iter().find(|e| e.transition == t.id) else {
            continue;
        };
        let complete = eval.results.len() == t.transition.guards.len();
        match passage(eval.results) {
            Passage::Passes if complete => {
                return Decision::Take {
                    transition: t.id,
                    to: t.to,
                };
            }
            Passage::Waits => waiting = true,
            _ => {}
        }
    }
    if waiting {
        Decision::Wait
    } else {
        Decision::Blocked {
            on_failure: node.on_failure,
        }
    }
}

/// When the deadline of `state` falls for a run that entered it at `entered_at`, if the state
/// has one: the instant from which [`decide`] sees it passed (`in_state >= deadline`), for
/// `status` to show and `drive` to wake at.
pub fn deadline_at(
    workflow: &Workflow,
    state: NodeIndex,
    entered_at: jiff::Timestamp,
) -> Option<jiff::Timestamp> {
    let d = workflow.state(state).deadline?;
    let d = jiff::SignedDuration::try_from(d).ok()?;
    entered_at.checked_add(d).ok()
}

/// The reason recorded when a blocked run follows its state's `on_failure`
/// ([`Cause::OnFailure`]): the guards that failed, in order.
pub fn blocked_reason<'r>(results: impl IntoIterator<Item = &'r GuardResult>) -> String {
    let failed: Vec<&str> = results
        .into_iter()
        .filter(|g| g.outcome == Outcome::Fail)
        .map(|g| g.name.as_str())
        .collect();
    format!("guards failed: {}", failed.join(", "))
}

/// When a waiting run is worth deciding again: the earliest `retry_at` of the guards that
/// wait (a timer, a window opening, a watch's next look) or the state's `deadline`, whichever
/// comes first; `None` when neither says (approvals: only news can change those).
pub fn look_again_at<'r>(
    results: impl IntoIterator<Item = &'r GuardResult>,
    deadline: Option<jiff::Timestamp>,
) -> Option<jiff::Timestamp> {
    results
        .into_iter()
        .filter(|g| g.outcome == Outcome::Waiting)
        .filter_map(|g| g.retry_at)
        .chain(deadline)
        .min()
}

/// Whether the deadline of `state` has passed for a run that has been there `in_state`.
pub fn deadline_passed(workflow: &Workflow, state: NodeIndex, in_state: Duration) -> bool {
    workflow
        .state(state)
        .deadline
        .is_some_and(|d| in_state >= d)
}

/// Why `waygate rollback` may not send a run to the workflow's rollback state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackRefusal {
    /// The workflow has no `rollback` state.
    NoRollbackState,
    /// The run is already on its rollback path ([`Workflow::on_rollback_path`]): a second
    /// rollback would run the rollback actions again.
    AlreadyOnPath,
}

/// Where `waygate rollback` sends a run that is in `state`, has the history `events` and has
/// not ended: the workflow's rollback state, unless the run is already on its rollback path.
pub fn decide_rollback(
    workflow: &Workflow,
    state: NodeIndex,
    events: &[Event],
) -> Result<NodeIndex, RollbackRefusal> {
    let target = workflow.rollback.ok_or(RollbackRefusal::NoRollbackState)?;
    if workflow.on_rollback_path(state, events) {
        return Err(RollbackRefusal::AlreadyOnPath);
    }
    Ok(target)
}

/// A break-glass override that counts: recorded (`Overridden`) in the run's current visit of
/// its state. It marks one guard of one transition passed until the run leaves the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The guard.
    pub guard: String,
    /// The target of its transition.
    pub to: String,
    /// Who overrode it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// What the check said at that moment.
    pub said: String,
}

/// The overrides that count for a run whose history is `events`: those recorded in the
/// current visit of its state, oldest first. A later visit of the same state starts without
/// any: an override is for the attempt it was given in.
pub fn overrides(events: &[Event]) -> Vec<Override> {
    let visit = crate::visit::visit_number(events);
    crate::visit::current_visit(events)
        .iter()
        .filter_map(|e| {
            let o = e.kind.as_override().filter(|o| o.visit == visit)?;
            Some(Override {
                guard: o.guard.clone(),
                to: o.to.clone(),
                by: e.actor.clone(),
                reason: o.reason.clone(),
                said: o.said.clone(),
            })
        })
        .collect()
}

/// How an override counts, the one place: each result among `results` (the guards of the
/// transition to `to`, as just evaluated) whose guard is overridden in the current visit and
/// did not pass counts as passed, its detail saying by whom, why, and what the check says now
/// (its evidence is kept). Called on every evaluation before it is recorded or decided on, so
/// the record, [`passage`] and [`decide`] agree.
pub fn apply_overrides(events: &[Event], to: &str, results: &mut [GuardResult]) {
    for o in overrides(events).iter().filter(|o| o.to == to) {
        for r in results.iter_mut().filter(|r| r.name == o.guard) {
            if r.outcome == Outcome::Pass {
                continue;
            }
            r.detail = format!(
                "OVERRIDDEN by {} ({}); the check says: {}: {}",
                o.by,
                o.reason,
                r.outcome.as_str(),
                r.detail
            );
            r.outcome = Outcome::Pass;
            r.retry_at = None;
            r.incident = false;
        }
    }
}

/// Why `waygate override` refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideRefusal {
    /// No guard of that name guards a transition out of the run's state.
    #[error("no guard `{guard}` guards a transition out of `{state}` (its guards: {known})")]
    Unknown {
        /// The guard asked for.
        guard: String,
        /// The run's state.
        state: String,
        /// The guards out of it, comma-separated, or `none`.
        known: String,
    },
    /// Guards of that name guard several transitions out of the state.
    #[error("guard `{guard}` guards several transitions out of `{state}` ({targets}); rename them to override one")]
    Ambiguous {
        /// The guard.
        guard: String,
        /// The run's state.
        state: String,
        /// The targets, comma-separated.
        targets: String,
    },
    /// Nobody may override the guard.
    #[error(
        "guard `{guard}` cannot be overridden: neither it nor the workflow has `overridable_by`"
    )]
    NotOverridable {
        /// The guard.
        guard: String,
    },
    /// The actor is not among those who may.
    #[error("{actor} may not override `{guard}` (overridable_by: {allowed})")]
    NotAllowed {
        /// Who asked.
        actor: String,
        /// The guard.
        guard: String,
        /// Who may, comma-separated.
        allowed: String,
    },
    /// The run's initiator asked to override an Approval guard: that would be approving their
    /// own run.
    #[error("{actor} started this run and may not override its approval `{guard}`: someone else must approve or override it")]
    OwnApproval {
        /// The initiator.
        actor: String,
        /// The guard.
        guard: String,
    },
    /// The guard's check publishes values: an override passes it without them, and a later
    /// step that uses them (which validation let through because the guard runs first on
    /// every path) would have none.
    #[error("guard `{guard}` publishes values ({keys}) that an override cannot supply: fix the check, or roll back")]
    Publishes {
        /// The guard.
        guard: String,
        /// Its declared keys, comma-separated.
        keys: String,
    },
    /// The guard has no recorded result in this visit: there is nothing known to override.
    #[error("guard `{guard}` has not been evaluated in this visit of `{state}`: run `waygate advance` (or `drive`) first, and override what it reports")]
    NotEvaluated {
        /// The guard.
        guard: String,
        /// The run's state.
        state: String,
    },
    /// Its latest result passed.
    #[error("guard `{guard}` passed when last evaluated: there is nothing to override")]
    Passes {
        /// The guard.
        guard: String,
    },
    /// Someone overrode it already in this visit.
    #[error("guard `{guard}` is already overridden in this visit, by {by}: {reason}")]
    AlreadyOverridden {
        /// The guard.
        guard: String,
        /// Who overrode it.
        by: String,
        /// Why.
        reason: String,
    },
}

/// What an allowed override marks passed: the transition's target and what the check said.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OverrideTarget {
    /// The target of the guard's transition.
    pub to: String,
    /// The check's latest recorded outcome and detail in this visit: `fail: HTTP 503`.
    pub said: String,
}

/// Whether `actor` may override guard `guard` of a run in `state` started by `initiator`
/// whose history is `events`: the guard is on exactly one transition out of the state; the
/// actor is in its `overridable_by` or the workflow's; an Approval guard is never overridden
/// by the run's initiator (an override cannot stand in for `not_by_initiator`, or for any
/// approval of one's own run); its check publishes no values (an override cannot supply
/// them); its latest recorded result in this visit failed or waits; it
/// is not overridden already.
pub fn may_override(
    workflow: &Workflow,
    state: NodeIndex,
    events: &[Event],
    guard: &str,
    actor: &str,
    initiator: &str,
) -> Result<OverrideTarget, OverrideRefusal> {
    let state_name = workflow.state(state).name.clone();
    let found: Vec<(&crate::model::Guard, String)> = workflow
        .outgoing_iter(state)
        .flat_map(|t| {
            let to = workflow.state(t.to).name.clone();
            t.transition
                .guards
                .iter()
                .filter(|g| g.name == guard)
                .map(move |g| (g, to.clone()))
        })
        .collect();
    let (g, to) = match found.as_slice() {
        [] => {
            let mut known: Vec<String> = workflow
                .outgoing_iter(state)
                .flat_map(|t| t.transition.guards.iter().map(|g| format!("`{}`", g.name)))
                .collect();
            known.dedup();
            return Err(OverrideRefusal::Unknown {
                guard: guard.to_owned(),
                state: state_name,
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            });
        }
        [one] => one.clone(),
        many => {
            return Err(OverrideRefusal::Ambiguous {
                guard: guard.to_owned(),
                state: state_name,
                targets: many
                    .iter()
                    .map(|(_, to)| format!("-> `{to}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    };
    let allowed: Vec<&String> = g
        .overridable_by
        .iter()
        .chain(&workflow.overridable_by)
        .collect();
    if allowed.is_empty() {
        return Err(OverrideRefusal::NotOverridable {
            guard: guard.to_owned(),
        });
    }
    if !allowed.iter().any(|a| crate::actor::same_actor(a, actor)) {
        return Err(OverrideRefusal::NotAllowed {
            actor: actor.to_owned(),
            guard: guard.to_owned(),
            allowed: allowed
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if matches!(g.check, crate::model::Check::Approval(_))
        && crate::actor::same_actor(actor, initiator)
    {
        return Err(OverrideRefusal::OwnApproval {
            actor: actor.to_owned(),
            guard: guard.to_owned(),
        });
    }
    let keys = crate::outputs::declared(&g.check);
    if !keys.is_empty() {
        return Err(OverrideRefusal::Publishes {
            guard: guard.to_owned(),
            keys: keys
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if let Some(o) = overrides(events)
        .into_iter()
        .find(|o| o.guard == guard && o.to == to)
    {
        return Err(OverrideRefusal::AlreadyOverridden {
            guard: guard.to_owned(),
            by: o.by,
            reason: o.reason,
        });
    }
    let last = crate::visit::current_visit(events)
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            EventKind::GuardsEvaluated {
                state: s,
                to: t,
                guards,
                ..
            } if *s == state_name && *t == to => guards.iter().find(|r| r.name == guard),
            _ => None,
        });
    match last {
        None => Err(OverrideRefusal::NotEvaluated {
            guard: guard.to_owned(),
            state: state_name,
        }),
        Some(r) if r.outcome == Outcome::Pass => Err(OverrideRefusal::Passes {
            guard: guard.to_owned(),
        }),
        Some(r) => Ok(OverrideTarget {
            to,
            said: format!("{}: {}", r.outcome.as_str(), r.detail),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;
    use crate::validate::validate;

    const FLOW: &str = r#"Workflow(
        name: "t",
        initial: "a",
        rollback: "rb",
        states: {
            "a": (deadline: "5m"),
            "b": (on_failure: "rb"),
            "c": (),
            "done": (terminal: Success),
            "rb": (),
            "failed": (terminal: Failure),
        },
        transitions: [
            (from: "a", to: "b", guards: [
                (name: "g1", check: Wait(duration: "1m")),
                (name: "g2", check: Wait(duration: "1m")),
            ]),
            (from: "a", to: "c", guards: [(name: "g3", check: Wait(duration: "1m"))]),
            (from: "b", to: "done", guards: [(name: "w", check: Wait(duration: "1m"))]),
            (from: "c", to: "done"),
            (from: "rb", to: "failed"),
        ],
    )"#;

    fn result(name: &str, outcome: Outcome) -> GuardResult {
        GuardResult::immediate(name, outcome, "")
    }

    fn setup() -> Workflow {
        let v = validate("t.ron", FLOW);
        v.workflow.unwrap_or_else(|| panic!("{:?}", v.diagnostics))
    }

    fn edge(w: &Workflow, from: &str, to: &str) -> EdgeIndex {
        let f = w.state_id(from).expect("state");
        let t = w.state_id(to).expect("state");
        w.outgoing(f).iter().find(|o| o.to == t).expect("edge").id
    }

    use Outcome::{Fail, Pass, Waiting};

    #[test]
    fn table() {
        let w = setup();
        let a = w.state_id("a").expect("a");
        let (ab, ac) = (edge(&w, "a", "b"), edge(&w, "a", "c"));
        let id = |s: &str| w.state_id(s).expect("state");
        // (case, outcomes for a->b, outcomes for a->c, minutes in state, expected)
        type Case<'c> = (&'c str, [Outcome; 2], Outcome, u64, Decision);
        let cases: Vec<Case> = vec![
            (
                "first passing in file order",
                [Pass, Pass],
                Pass,
                0,
                Decision::Take {
                    transition: ab,
                    to: id("b"),
                },
            ),
            (
                "second passes when first fails",
                [Pass, Fail],
                Pass,
                0,
                Decision::Take {
                    transition: ac,
                    to: id("c"),
                },
            ),
            (
                "waiting when nothing passes",
                [Pass, Waiting],
                Fail,
                0,
                Decision::Wait,
            ),
            (
                "a failed guard makes its transition not wait",
                [Fail, Waiting],
                Fail,
                0,
                Decision::Blocked { on_failure: None },
            ),
            (
                "all failing is blocked",
                [Fail, Fail],
                Fail,
                0,
                Decision::Blocked { on_failure: None },
            ),
            (
                "deadline beats a passing transition",
                [Pass, Pass],
                Pass,
                5,
                Decision::Incident {
                    to: Some(id("rb")),
                    incident: Incident::Deadline(Duration::from_secs(300)),
                },
            ),
        ];
        for (name, ab_out, ac_out, minutes, expected) in cases {
            let r_ab = [result("g1", ab_out[0]), result("g2", ab_out[1])];
            let r_ac = [result("g3", ac_out)];
            let evals = [
                Evaluation {
                    transition: ac,
                    results: &r_ac,
                },
                Evaluation {
                    transition: ab,
                    results: &r_ab,
                },
            ];
            let got = decide(&w, a, &[], Duration::from_secs(minutes * 60), &evals);
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn passage_table() {
        // (case, outcomes of one transition's guards, expected)
        let cases: &[(&str, &[Outcome], Passage)] = &[
            ("no guards passes", &[], Passage::Passes),
            ("all pass", &[Pass, Pass], Passage::Passes),
            ("one waiting waits", &[Pass, Waiting], Passage::Waits),
            ("all waiting waits", &[Waiting, Waiting], Passage::Waits),
            ("a failure beats waiting", &[Waiting, Fail], Passage::Fails),
            ("a failure beats passing", &[Fail, Pass], Passage::Fails),
        ];
        for &(name, outcomes, expected) in cases {
            let results: Vec<GuardResult> = outcomes
                .iter()
                .enumerate()
                .map(|(i, &o)| result(&format!("g{i}"), o))
                .collect();
            assert_eq!(passage(&results), expected, "{name}");
        }
    }

    #[test]
    fn only_waiting_and_blocked_leave_room_for_more_evaluations() {
        let w = setup();
        let id = |s: &str| w.state_id(s).expect("state");
        let cases = [
            (Decision::Ended, true),
            (
                Decision::Take {
                    transition: edge(&w, "c", "done"),
                    to: id("done"),
                },
                true,
            ),
            (
                Decision::Incident {
                    to: None,
                    incident: Incident::WatchBroke("w".into()),
                },
                true,
            ),
            (Decision::Wait, false),
            (Decision::Blocked { on_failure: None }, false),
        ];
        for (decision, fin) in cases {
            assert_eq!(decision.is_final(), fin, "{decision:?}");
        }
    }

    #[test]
    fn the_deadline_falls_when_decide_sees_it_passed() {
        let w = setup();
        let (a, c) = (w.state_id("a").expect("a"), w.state_id("c").expect("c"));
        let entered: jiff::Timestamp = "2026-03-02T10:00:00Z".parse().expect("time");
        let at = deadline_at(&w, a, entered).expect("a has a deadline");
        assert_eq!(at.to_string(), "2026-03-02T10:05:00Z");
        // (minutes in state, passed)
        for (minutes, passed) in [(0, false), (4, false), (5, true), (6, true)] {
            let in_state = Duration::from_secs(minutes * 60);
            assert_eq!(deadline_passed(&w, a, in_state), passed, "{minutes}m");
            let incident = matches!(decide(&w, a, &[], in_state, &[]), Decision::Incident { .. });
            assert_eq!(incident, passed, "{minutes}m: decide agrees");
        }
        assert_eq!(deadline_at(&w, c, entered), None);
        assert!(!deadline_passed(&w, c, Duration::from_secs(u64::MAX / 4)));
    }

    #[test]
    fn look_again_at_the_first_waiting_guards_time_or_the_deadline() {
        let ts = |s: &str| -> jiff::Timestamp { s.parse().expect("timestamp") };
        let at = |name: &str, outcome, when: Option<&str>| {
            let mut r = result(name, outcome);
            r.retry_at = when.map(ts);
            r
        };
        let window = at("window", Waiting, Some("2026-03-02T10:30:00Z"));
        let timer = at("timer", Waiting, Some("2026-03-02T10:10:00Z"));
        let approval = at("approval", Waiting, None);
        // A guard that no longer waits says nothing about when to look again.
        let stale = at("passed", Pass, Some("2026-03-02T10:01:00Z"));
        let deadline = Some(ts("2026-03-02T10:20:00Z"));
        // (case, results, deadline, expected)
        type Case<'c> = (
            &'c str,
            Vec<&'c GuardResult>,
            Option<jiff::Timestamp>,
            Option<&'c str>,
        );
        let cases: Vec<Case> = vec![
            ("only approvals: no time", vec![&approval], None, None),
            (
                "the earliest guard",
                vec![&window, &timer, &approval],
                None,
                Some("2026-03-02T10:10:00Z"),
            ),
            (
                "the deadline when it comes first",
                vec![&window],
                deadline,
                Some("2026-03-02T10:20:00Z"),
            ),
            (
                "the deadline alone",
                vec![&approval],
                deadline,
                Some("2026-03-02T10:20:00Z"),
            ),
            (
                "not a guard that passed",
                vec![&stale, &window],
                None,
                Some("2026-03-02T10:30:00Z"),
            ),
        ];
        for (name, results, deadline, expected) in cases {
            assert_eq!(look_again_at(results, deadline), expected.map(ts), "{name}");
        }
    }

    #[test]
    fn a_blocked_run_names_the_guards_that_failed() {
        let results = [
            result("tests", Fail),
            result("flag", Pass),
            result("soak", Waiting),
            result("smoke", Fail),
        ];
        assert_eq!(blocked_reason(&results), "guards failed: tests, smoke");
    }

    #[test]
    fn incidents_name_their_cause_and_reason() {
        let cases = [
            (
                Incident::Deadline(Duration::from_secs(300)),
                Cause::Deadline,
                "deadline of 5m in `bake` passed",
            ),
            (
                Incident::WatchBroke("errors".into()),
                Cause::Watch,
                "watch `errors` failed",
            ),
        ];
        for (incident, cause, reason) in cases {
            assert_eq!(incident.cause(), cause, "{incident:?}");
            assert_eq!(incident.reason("bake"), reason, "{incident:?}");
        }
    }

    #[test]
    fn broken_watch_is_an_incident_to_on_failure() {
        let w = setup();
        let b = w.state_id("b").expect("b");
        let mut broken = result("w", Fail);
        broken.incident = true;
        let r = [broken];
        let evals = [Evaluation {
            transition: edge(&w, "b", "done"),
            results: &r,
        }];
        assert_eq!(
            decide(&w, b, &[], Duration::ZERO, &evals),
            Decision::Incident {
                to: w.state_id("rb"),
                incident: Incident::WatchBroke("w".into())
            }
        );
    }

    #[test]
    fn blocked_offers_the_states_own_on_failure() {
        let w = setup();
        let b = w.state_id("b").expect("b");
        let r = [result("w", Fail)];
        let evals = [Evaluation {
            transition: edge(&w, "b", "done"),
            results: &r,
        }];
        assert_eq!(
            decide(&w, b, &[], Duration::ZERO, &evals),
            Decision::Blocked {
                on_failure: w.state_id("rb")
            }
        );
    }

    #[test]
    fn unguarded_transition_passes_and_terminal_ends() {
        let w = setup();
        let c = w.state_id("c").expect("c");
        let evals = [Evaluation {
            transition: edge(&w, "c", "done"),
            results: &[],
        }];
        assert!(matches!(
            decide(&w, c, &[], Duration::ZERO, &evals),
            Decision::Take { .. }
        ));
        let done = w.state_id("done").expect("done");
        assert_eq!(decide(&w, done, &[], Duration::ZERO, &[]), Decision::Ended);
    }

    #[test]
    fn missing_evaluation_is_not_a_pass() {
        let w = setup();
        let a = w.state_id("a").expect("a");
        let r = [result("g1", Pass)];
        let evals = [Evaluation {
            transition: edge(&w, "a", "b"),
            results: &r,
        }];
        assert_eq!(
            decide(&w, a, &[], Duration::ZERO, &evals),
            Decision::Blocked { on_failure: None }
        );
    }

    /// The deployment, a rollback with a verify step and an escalation, a state both paths
    /// share, and a retry loop from the rollback path back to the start.
    const PATHS: &str = r#"Workflow(
        name: "p",
        initial: "build",
        rollback: "rollback",
        states: {
            "build": (on_failure: "build_failed"),
            "build_failed": (),
            "prod": (on_failure: "rollback"),
            "notify": (),
            "rollback": (on_failure: "escalate"),
            "rb_verify": (deadline: "5m"),
            "escalate": (),
            "retry": (),
            "done": (terminal: Success),
            "rolled_back": (terminal: Failure),
        },
        transitions: [
            (from: "build", to: "prod"),
            (from: "build_failed", to: "rolled_back"),
            (from: "prod", to: "notify"),
            (from: "notify", to: "done"),
            (from: "rollback", to: "rb_verify"),
            (from: "rollback", to: "retry"),
            (from: "rb_verify", to: "notify"),
            (from: "rb_verify", to: "rolled_back"),
            (from: "escalate", to: "rolled_back"),
            (from: "retry", to: "build"),
        ],
    )"#;

    #[test]
    fn rollback_path_table() {
        let v = validate("p.ron", PATHS);
        let w = v.workflow.unwrap_or_else(|| panic!("{:?}", v.diagnostics));
        // (state, on the rollback path, what `waygate rollback` decides)
        let cases: &[(&str, bool, Result<&str, RollbackRefusal>)] = &[
            ("build", false, Ok("rollback")),
            ("build_failed", false, Ok("rollback")),
            ("prod", false, Ok("rollback")),
            // Reached by the deployment too, so not "after" the rollback.
            ("notify", false, Ok("rollback")),
            ("done", false, Ok("rollback")),
            ("rollback", true, Err(RollbackRefusal::AlreadyOnPath)),
            ("rb_verify", true, Err(RollbackRefusal::AlreadyOnPath)),
            // Reached only through the rollback state's on_failure.
            ("escalate", true, Err(RollbackRefusal::AlreadyOnPath)),
            ("retry", true, Err(RollbackRefusal::AlreadyOnPath)),
            // The deployment reaches it too (build_failed -> rolled_back).
            ("rolled_back", false, Ok("rollback")),
        ];
        for &(name, on_path, expected) in cases {
            let id = w.state_id(name).expect("state");
            assert_eq!(w.on_rollback_path(id, &[]), on_path, "{name}: on the path");
            let got = decide_rollback(&w, id, &[]).map(|t| w.state(t).name.as_str());
            assert_eq!(got, expected, "{name}: rollback");
        }
    }

    #[test]
    fn no_rollback_state_refuses_and_nothing_is_on_a_path() {
        let w = setup_without_rollback();
        for (id, _) in w.states() {
            assert!(!w.on_rollback_path(id, &[]));
            assert_eq!(
                decide_rollback(&w, id, &[]),
                Err(RollbackRefusal::NoRollbackState)
            );
        }
    }

    fn setup_without_rollback() -> Workflow {
        let text = FLOW.replace(r#"rollback: "rb","#, "");
        let v = validate("t.ron", &text);
        v.workflow.unwrap_or_else(|| panic!("{:?}", v.diagnostics))
    }

    #[test]
    fn an_incident_on_the_rollback_path_does_not_fall_back_to_the_rollback_state_again() {
        let v = validate("p.ron", PATHS);
        let w = v.workflow.unwrap_or_else(|| panic!("{:?}", v.diagnostics));
        let id = |s: &str| w.state_id(s).expect("state");
        // rb_verify's deadline passes: with no on_failure of its own it fails in place
        // rather than going back to `rollback` and reverting the revert.
        assert_eq!(
            decide(&w, id("rb_verify"), &[], Duration::from_secs(300), &[]),
            Decision::Incident {
                to: None,
                incident: Incident::Deadline(Duration::from_secs(300)),
            }
        );
        // Before the rollback, the fall-back still applies.
        assert_eq!(w.failure_target(id("notify"), &[]), Some(id("rollback")));
        // An explicit on_failure is always followed.
        assert_eq!(w.failure_target(id("rollback"), &[]), Some(id("escalate")));
    }

    /// A run's history: started in `build`, then each move in turn.
    fn history(moves: &[(&str, &str)]) -> Vec<Event> {
        use crate::event::{Cause, EventKind, NewEvent, GENESIS_HASH};
        let at: jiff::Timestamp = "2026-11-29T10:00:00Z".parse().expect("timestamp");
        let started = EventKind::RunStarted {
            workflow: "p".into(),
            env: "e".into(),
            state: "build".into(),
            file: "p.ron".into(),
            definition_hash: String::new(),
            vars: Default::default(),
            workdir: None,
            file_path: None,
        };
        let moved = moves.iter().map(|(from, to)| EventKind::Transitioned {
            from: (*from).into(),
            to: (*to).into(),
            cause: Cause::Advance,
            reason: None,
        });
        std::iter::once(started)
            .chain(moved)
            .enumerate()
            .map(|(i, kind)| {
                let run = crate::run::RunId::from("r");
                Event::seal(
                    i as u64 + 1,
                    run,
                    at,
                    NewEvent::new("a", kind),
                    GENESIS_HASH,
                )
            })
            .collect()
    }

    #[test]
    fn a_shared_state_reached_by_rolling_back_is_on_the_rollback_path() {
        let v = validate("p.ron", PATHS);
        let w = v.workflow.unwrap_or_else(|| panic!("{:?}", v.diagnostics));
        let id = |s: &str| w.state_id(s).expect("state");
        // (case, history, state now, on the path)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, bool);
        let cases: &[Case] = &[
            (
                "deployed to notify",
                &[("build", "prod"), ("prod", "notify")],
                "notify",
                false,
            ),
            (
                "rolled back, then notify",
                &[
                    ("build", "prod"),
                    ("prod", "rollback"),
                    ("rollback", "rb_verify"),
                    ("rb_verify", "notify"),
                ],
                "notify",
                true,
            ),
            (
                "rolled back, then a retry from the start",
                &[
                    ("build", "prod"),
                    ("prod", "rollback"),
                    ("rollback", "retry"),
                    ("retry", "build"),
                ],
                "build",
                false,
            ),
            (
                "the retry deployed to notify",
                &[
                    ("build", "prod"),
                    ("prod", "rollback"),
                    ("rollback", "retry"),
                    ("retry", "build"),
                    ("build", "prod"),
                    ("prod", "notify"),
                ],
                "notify",
                false,
            ),
        ];
        for &(case, moves, state, on_path) in cases {
            let events = history(moves);
            assert_eq!(w.on_rollback_path(id(state), &events), on_path, "{case}");
            let rollback = decide_rollback(&w, id(state), &events);
            let fallback = w.failure_target(id(state), &events);
            if on_path {
                assert_eq!(rollback, Err(RollbackRefusal::AlreadyOnPath), "{case}");
                assert_eq!(fallback, None, "{case}: fails in place");
            } else {
                assert_eq!(rollback, Ok(id("rollback")), "{case}");
                let own = w.state(id(state)).on_failure;
                assert_eq!(fallback, own.or(Some(id("rollback"))), "{case}");
            }
        }
    }

    #[test]
    fn validate_warns_of_actions_after_the_rollback_state_without_on_failure() {
        let text = PATHS
            .replace(
                r#""rb_verify": (deadline: "5m"),"#,
                r#""rb_verify": (deadline: "5m", on_enter: [Command(run: ["true"])]),
            "rollback_notes": (on_enter: [Command(run: ["true"])]),"#,
            )
            .replace(
                r#"(from: "rollback", to: "retry"),"#,
                r#"(from: "rollback", to: "retry"),
            (from: "rollback", to: "rollback_notes"),
            (from: "rollback_notes", to: "rolled_back"),"#,
            )
            .replace(
                r#""rollback": (on_failure: "escalate"),"#,
                r#""rollback": (on_failure: "escalate", on_enter: [Command(run: ["true"])]),"#,
            );
        let v = validate("p.ron", &text);
        assert!(v.workflow.is_some(), "{:?}", v.diagnostics);
        let warned: Vec<String> = v
            .diagnostics
            .iter()
            .filter(|d| d.code == Code::MissingFailurePath)
            .map(|d| d.message.clone())
            .collect();
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert!(
            warned.iter().all(|m| m.contains("on the rollback path")),
            "{warned:?}"
        );
        assert!(
            warned.iter().any(|m| m.contains("`rb_verify`")),
            "{warned:?}"
        );
        assert!(
            warned.iter().any(|m| m.contains("`rollback_notes`")),
            "{warned:?}"
        );
    }
}

#[cfg(test)]
mod override_tests {
    use super::*;
    use crate::test_support::{event as ev, started};

    fn overridden(to: &str, guard: &str, visit: u32) -> EventKind {
        EventKind::Overridden(crate::event::OverrideRecord {
            state: "a".into(),
            to: to.into(),
            guard: guard.into(),
            reason: "probe broken".into(),
            said: "fail: HTTP 503".into(),
            visit,
        })
    }

    fn result(name: &str, outcome: Outcome) -> GuardResult {
        GuardResult {
            incident: outcome == Outcome::Fail,
            ..GuardResult::immediate(name, outcome, "HTTP 503")
        }
    }

    #[test]
    fn an_override_counts_for_its_guard_and_transition_in_its_visit_only() {
        let events = vec![
            ev(1, "ana", started()),
            ev(2, "bob", overridden("b", "health", 1)),
            // A stale one, for an earlier visit: never counts.
            ev(3, "cy", overridden("b", "other", 0)),
        ];
        // (transition target, results before, outcomes after)
        type Case<'a> = (&'a str, &'a [(&'a str, Outcome)], &'a [Outcome]);
        let cases: &[Case] = &[
            (
                "b",
                &[("health", Outcome::Fail), ("x", Outcome::Fail)],
                &[Outcome::Pass, Outcome::Fail],
            ),
            ("b", &[("health", Outcome::Waiting)], &[Outcome::Pass]),
            ("b", &[("other", Outcome::Fail)], &[Outcome::Fail]),
            ("c", &[("health", Outcome::Fail)], &[Outcome::Fail]),
        ];
        for (to, before, after) in cases {
            let mut results: Vec<GuardResult> = before.iter().map(|(n, o)| result(n, *o)).collect();
            apply_overrides(&events, to, &mut results);
            let got: Vec<Outcome> = results.iter().map(|r| r.outcome).collect();
            assert_eq!(&got, after, "{to} {before:?}");
        }
        let mut results = vec![result("health", Outcome::Fail)];
        apply_overrides(&events, "b", &mut results);
        assert_eq!(
            results[0].detail,
            "OVERRIDDEN by bob (probe broken); the check says: fail: HTTP 503"
        );
        assert!(!results[0].incident, "an overridden watch is no incident");
        assert_eq!(passage(&results), Passage::Passes);
    }
}
