//! Approvals: who may approve an `Approval` guard, which guards may be approved now, and which
//! recorded approvals count. One rule, asked by the guard, `status` and `approve`.
//!
//! An approval counts only for a guard of a transition out of the state the run is in, and
//! only in the visit of that state it was given in ([`crate::visit`]): approving a guard of a
//! later state ahead of time is refused, and re-entering a state starts with no approvals.
//! An approver may withdraw an approval that has not been used yet (the run has not left the
//! state); a withdrawal is recorded as an `ApprovalWithdrawn` event. See
//! `docs/workflow-format.md` ("Approval") and `docs/cli.md` (`waygate approve`).

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::NodeIndex;

use crate::actor::same_actor;
use crate::event::{Event, EventKind};
use crate::model::{ApprovalCheck, Check, Workflow};
use crate::visit::{current_visit, visit_number};

/// Why someone may not approve a guard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The guard lists its approvers and this actor is not among them.
    #[error("{actor} may not approve this guard; allowed approvers: {}", allowed.join(", "))]
    NotAnApprover {
        /// Who tried.
        actor: String,
        /// Who may.
        allowed: Vec<String>,
    },
    /// The guard is `not_by_initiator` and this actor started the run.
    #[error("{actor} started this run and may not approve it (not_by_initiator)")]
    Initiator {
        /// Who tried.
        actor: String,
    },
}

/// Whether `actor` may approve a guard with `check` on a run started by `initiator`.
pub fn may_approve(check: &ApprovalCheck, actor: &str, initiator: &str) -> Result<(), Refusal> {
    if !check.approvers.is_empty() && !check.approvers.iter().any(|a| same_actor(a, actor)) {
        return Err(Refusal::NotAnApprover {
            actor: actor.to_owned(),
            allowed: check.approvers.clone(),
        });
    }
    if check.not_by_initiator && same_actor(actor, initiator) {
        return Err(Refusal::Initiator {
            actor: actor.to_owned(),
        });
    }
    Ok(())
}

/// Why a guard cannot be approved (or an approval withdrawn) in the run's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotApprovable {
    /// The workflow has no Approval guard of that name.
    #[error(
        "workflow `{workflow}` has no Approval guard named `{guard}`{}",
        list_hint(known)
    )]
    Unknown {
        /// The workflow.
        workflow: String,
        /// The name given.
        guard: String,
        /// Every Approval guard's name.
        known: Vec<String>,
    },
    /// The guard exists but guards no transition out of the current state.
    #[error(
        "the run is in `{state}`: `{guard}` guards {}, not a transition out of `{state}`, and an \
         approval counts only in the state the run is in (approvable now: {})",
        transitions.join(", "),
        if here.is_empty() { "none".to_owned() } else { here.join(", ") }
    )]
    NotHere {
        /// The run's state.
        state: String,
        /// The name given.
        guard: String,
        /// The transitions it guards, as `from -> to`.
        transitions: Vec<String>,
        /// The Approval guards out of the current state.
        here: Vec<String>,
    },
}

fn list_hint(known: &[String]) -> String {
    if known.is_empty() {
        " (it has no approval guards)".into()
    } else {
        format!(" (approval guards: {})", known.join(", "))
    }
}

fn approval_of(check: &Check) -> Option<&ApprovalCheck> {
    match check {
        Check::Approval(a) => Some(a),
        _ => None,
    }
}

/// The Approval guard `guard` of the first transition (file order) out of `state` that has
/// one: what `waygate approve` may approve now.
pub fn approvable<'w>(
    workflow: &'w Workflow,
    state: NodeIndex,
    guard: &str,
) -> Result<&'w ApprovalCheck, NotApprovable> {
    let here = workflow
        .outgoing_iter(state)
        .flat_map(|t| &t.transition.guards)
        .filter_map(|g| approval_of(&g.check).map(|a| (g.name.as_str(), a)));
    let mut names_here = Vec::new();
    for (name, check) in here {
        if name == guard {
            return Ok(check);
        }
        names_here.push(name.to_owned());
    }
    names_here.dedup();
    let mut elsewhere = Vec::new();
    let mut known = BTreeSet::new();
    for (from, _) in workflow.states() {
        for t in workflow.outgoing_iter(from) {
            for g in &t.transition.guards {
                if approval_of(&g.check).is_some() {
                    known.insert(g.name.clone());
                    if g.name == guard {
                        elsewhere.push(format!(
                            "`{} -> {}`",
                            workflow.state(from).name,
                            workflow.state(t.to).name
                        ));
                    }
                }
            }
        }
    }
    if elsewhere.is_empty() {
        return Err(NotApprovable::Unknown {
            workflow: workflow.name.clone(),
            guard: guard.to_owned(),
            known: known.into_iter().collect(),
        });
    }
    Err(NotApprovable::NotHere {
        state: workflow.state(state).name.clone(),
        guard: guard.to_owned(),
        transitions: elsewhere,
        here: names_here,
    })
}

/// One recorded approval or withdrawal that may count in the current visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// The guard.
    pub guard: String,
    /// Who.
    pub actor: String,
    /// True for an accepted approval, false for a withdrawal.
    pub given: bool,
}

/// The accepted approvals and the withdrawals recorded in the current visit of the run's
/// state `state`, oldest first. Refused approvals never count, nor do records of another
/// state or another visit (an approval recorded as the run moved names the visit it was
/// given in). `events` are all of one run's events, oldest first.
pub fn visit_records(events: &[Event], state: &str) -> Vec<ApprovalRecord> {
    let visit = visit_number(events);
    current_visit(events)
        .iter()
        .filter_map(|e| {
            let (guard, given) = match &e.kind {
                EventKind::Approved {
                    state: s,
                    guard,
                    accepted: true,
                    visit: v,
                    ..
                } if s == state && v.is_none_or(|v| v == visit) => (guard, true),
                EventKind::ApprovalWithdrawn {
                    state: s,
                    guard,
                    visit: v,
                    ..
                } if s == state && *v == visit => (guard, false),
                _ => return None,
            };
            Some(ApprovalRecord {
                guard: guard.clone(),
                actor: e.actor.clone(),
                given,
            })
        })
        .collect()
}

/// Where an Approval guard stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// The distinct allowed people whose approval counts, sorted.
    pub approvers: Vec<String>,
    /// How many it needs (`min`, at least 1: an approval always needs someone).
    pub need: u32,
}

impl Tally {
    /// Whether enough people approved.
    pub fn met(&self) -> bool {
        self.approvers.len() >= self.need as usize
    }

    /// Whether `actor`'s approval is among those that count ([`same_actor`]: in any case).
    pub fn counts(&self, actor: &str) -> bool {
        self.approvers.iter().any(|a| same_actor(a, actor))
    }
}

/// Counts the approvals of `guard` among `records` ([`visit_records`]): each allowed person
/// once, a withdrawal cancelling that person's earlier approval. The rules of
/// [`may_approve`] apply again, so an approval recorded before the rules changed, or by a
/// buggy caller, cannot slip through.
pub fn tally(
    check: &ApprovalCheck,
    guard: &str,
    records: &[ApprovalRecord],
    initiator: &str,
) -> Tally {
    // Each person once, whatever the case they typed their name in ([`same_actor`]): keyed
    // by the name in lower case, shown as they first wrote it.
    let mut approvers: BTreeMap<String, &str> = BTreeMap::new();
    for r in records.iter().filter(|r| r.guard == guard) {
        let person = crate::actor::person(&r.actor);
        if !r.given {
            approvers.remove(&person);
        } else if may_approve(check, &r.actor, initiator).is_ok() {
            approvers.entry(person).or_insert(r.actor.as_str());
        }
    }
    let mut names: Vec<String> = approvers.into_values().map(str::to_owned).collect();
    names.sort();
    Tally {
        approvers: names,
        need: check.min.max(1),
    }
}

/// An Approval guard out of the run's state that does not have enough approvals yet.
#[derive(Debug, Clone)]
pub struct Pending<'w> {
    /// The guard's name.
    pub guard: &'w str,
    /// The state its transition leads to.
    pub to: NodeIndex,
    /// The guard's check (its prompt, approvers, `min`, `not_by_initiator`).
    pub check: &'w ApprovalCheck,
    /// Where it stands in this visit.
    pub tally: Tally,
}

/// The Approval guards of the transitions out of `state` (file order) without enough
/// approvals in the current visit: what `status` lists and the run page offers to approve.
/// `events` are all of the run's events, oldest first.
pub fn pending<'w>(
    workflow: &'w Workflow,
    state: NodeIndex,
    events: &[Event],
    initiator: &str,
) -> Vec<Pending<'w>> {
    let records = visit_records(events, &workflow.state(state).name);
    let mut out = Vec::new();
    for t in workflow.outgoing_iter(state) {
        for g in &t.transition.guards {
            let Some(check) = approval_of(&g.check) else {
                continue;
            };
            let tally = tally(check, &g.name, &records, initiator);
            if !tally.met() {
                out.push(Pending {
                    guard: &g.name,
                    to: t.to,
                    check,
                    tally,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{event as ev, moved, started};
    use crate::validate::validate;

    const FLOW: &str = r#"Workflow(
        name: "gates",
        initial: "a",
        states: { "a": (), "b": (), "done": (terminal: Success) },
        transitions: [
            (from: "a", to: "b", guards: [
                (name: "first", check: Approval(prompt: "a ok")),
                (name: "tests", check: Wait(duration: "1s")),
            ]),
            (from: "b", to: "a", guards: [(name: "again", check: Approval(prompt: "retry"))]),
            (from: "b", to: "done", guards: [(name: "later", check: Approval(prompt: "prod ok", min: 2))]),
        ],
    )"#;

    fn workflow() -> Workflow {
        let v = validate("g.ron", FLOW);
        v.workflow.unwrap_or_else(|| panic!("{:?}", v.diagnostics))
    }

    fn approval(min: u32, approvers: &[&str], not_by_initiator: bool) -> ApprovalCheck {
        ApprovalCheck {
            prompt: crate::template::Template::parse("x").expect("plain text"),
            min,
            approvers: approvers.iter().map(|s| s.to_string()).collect(),
            not_by_initiator,
        }
    }

    fn rec(guard: &str, actor: &str, given: bool) -> ApprovalRecord {
        ApprovalRecord {
            guard: guard.into(),
            actor: actor.into(),
            given,
        }
    }

    #[test]
    fn counting_table() {
        // (case, check, records, counted approvers)
        let cases: Vec<(&str, ApprovalCheck, Vec<ApprovalRecord>, &[&str])> = vec![
            ("none yet", approval(1, &[], false), vec![], &[]),
            (
                "one",
                approval(1, &[], false),
                vec![rec("g", "bob", true)],
                &["bob"],
            ),
            (
                "duplicates count once",
                approval(2, &[], false),
                vec![rec("g", "bob", true), rec("g", "bob", true)],
                &["bob"],
            ),
            (
                "other guards do not count",
                approval(1, &[], false),
                vec![rec("h", "bob", true)],
                &[],
            ),
            (
                "only listed approvers",
                approval(1, &["carol"], false),
                vec![rec("g", "bob", true), rec("g", "carol", true)],
                &["carol"],
            ),
            (
                "initiator excluded",
                approval(1, &[], true),
                vec![rec("g", "alice", true)],
                &[],
            ),
            (
                "a withdrawal cancels that person's approval",
                approval(2, &[], false),
                vec![
                    rec("g", "bob", true),
                    rec("g", "carol", true),
                    rec("g", "bob", false),
                ],
                &["carol"],
            ),
            (
                "approving again after withdrawing counts",
                approval(1, &[], false),
                vec![
                    rec("g", "bob", true),
                    rec("g", "bob", false),
                    rec("g", "bob", true),
                ],
                &["bob"],
            ),
            (
                "a withdrawal of another guard changes nothing",
                approval(1, &[], false),
                vec![rec("g", "bob", true), rec("h", "bob", false)],
                &["bob"],
            ),
        ];
        for (name, check, records, want) in cases {
            let t = tally(&check, "g", &records, "alice");
            assert_eq!(t.approvers, want.to_vec(), "{name}");
            assert_eq!(t.met(), want.len() >= check.min as usize, "{name}");
        }
        assert_eq!(tally(&approval(0, &[], false), "g", &[], "a").need, 1);
    }

    #[test]
    fn only_guards_out_of_the_current_state_may_be_approved() {
        let w = workflow();
        let id = |s: &str| w.state_id(s).expect("state");
        assert!(approvable(&w, id("a"), "first").is_ok());
        assert!(approvable(&w, id("b"), "later").is_ok());
        assert!(approvable(&w, id("b"), "again").is_ok());
        let ahead = approvable(&w, id("a"), "later").expect_err("a later state's guard");
        assert_eq!(
            ahead.to_string(),
            "the run is in `a`: `later` guards `b -> done`, not a transition out of `a`, and an \
             approval counts only in the state the run is in (approvable now: first)"
        );
        // A guard of another kind is no Approval guard at all.
        let other = approvable(&w, id("a"), "tests").expect_err("a Wait");
        assert!(matches!(other, NotApprovable::Unknown { .. }), "{other}");
        assert_eq!(
            approvable(&w, id("done"), "nope")
                .expect_err("unknown")
                .to_string(),
            "workflow `gates` has no Approval guard named `nope` (approval guards: again, first, later)"
        );
    }

    fn approved(state: &str, guard: &str, accepted: bool, visit: Option<u32>) -> EventKind {
        EventKind::Approved {
            state: state.into(),
            guard: guard.into(),
            comment: None,
            accepted,
            reason: None,
            visit,
        }
    }

    fn withdrawn(state: &str, guard: &str, visit: u32) -> EventKind {
        EventKind::ApprovalWithdrawn {
            state: state.into(),
            guard: guard.into(),
            comment: None,
            visit,
        }
    }

    #[test]
    fn records_come_from_the_current_visit_of_the_current_state() {
        // (case, events as (actor, kind), state, records that count)
        type Case = (
            &'static str,
            Vec<(&'static str, EventKind)>,
            &'static str,
            Vec<ApprovalRecord>,
        );
        let cases: Vec<Case> = vec![
            (
                "given in this visit",
                vec![
                    ("x", started()),
                    ("bob", approved("a", "first", true, Some(1))),
                ],
                "a",
                vec![rec("first", "bob", true)],
            ),
            (
                "an old store's approval without a visit counts in its visit",
                vec![
                    ("x", started()),
                    ("bob", approved("a", "first", true, None)),
                ],
                "a",
                vec![rec("first", "bob", true)],
            ),
            (
                "refused ones never count",
                vec![
                    ("x", started()),
                    ("bob", approved("a", "first", false, Some(1))),
                ],
                "a",
                vec![],
            ),
            (
                "recorded for another state (the run moved as it was given)",
                vec![
                    ("x", started()),
                    ("x", moved("a", "b")),
                    ("bob", approved("a", "later", true, Some(1))),
                ],
                "b",
                vec![],
            ),
            (
                "an earlier visit's approvals are not reused",
                vec![
                    ("x", started()),
                    ("bob", approved("a", "first", true, Some(1))),
                    ("x", moved("a", "b")),
                    ("x", moved("b", "a")),
                ],
                "a",
                vec![],
            ),
            (
                "given for the previous visit but recorded after the run came back",
                vec![
                    ("x", started()),
                    ("x", moved("a", "b")),
                    ("x", moved("b", "a")),
                    ("bob", approved("a", "first", true, Some(1))),
                ],
                "a",
                vec![],
            ),
            (
                "withdrawals of this visit",
                vec![
                    ("x", started()),
                    ("bob", approved("a", "first", true, Some(1))),
                    ("bob", withdrawn("a", "first", 1)),
                ],
                "a",
                vec![rec("first", "bob", true), rec("first", "bob", false)],
            ),
        ];
        for (name, kinds, state, want) in cases {
            let events: Vec<Event> = kinds
                .into_iter()
                .enumerate()
                .map(|(i, (actor, k))| ev(i as u64 + 1, actor, k))
                .collect();
            assert_eq!(visit_records(&events, state), want, "{name}");
        }
    }

    #[test]
    fn refusals_explain_themselves() {
        let c = approval(1, &["bob", "carol"], true);
        assert_eq!(may_approve(&c, "bob", "alice"), Ok(()));
        let e = may_approve(&c, "mallory", "alice").expect_err("not listed");
        assert_eq!(
            e.to_string(),
            "mallory may not approve this guard; allowed approvers: bob, carol"
        );
        let c = approval(1, &[], true);
        let e = may_approve(&c, "alice", "alice").expect_err("initiator");
        assert_eq!(
            e.to_string(),
            "alice started this run and may not approve it (not_by_initiator)"
        );
    }
}
