//! `Approval(prompt, min, approvers, not_by_initiator)`: passes when `min` distinct allowed
//! people approved this guard on this run (in any state: an approval may be given ahead of
//! time, as the contract's "approved it for this run" says).
//!
//! Two pure functions: [`may_approve`] is asked by the `approve` command before it records
//! anything (a refusal is recorded as refused and never counts), and [`check`] counts the
//! recorded approvals. `check` applies the same rules again, so an approval recorded before
//! the rules changed, or by a buggy caller, cannot slip through.

use std::collections::BTreeSet;

use waygate_core::model::ApprovalCheck;

use crate::context::ApprovalRecord;
use crate::guard::Verdict;

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
    if !check.approvers.is_empty() && !check.approvers.iter().any(|a| a == actor) {
        return Err(Refusal::NotAnApprover {
            actor: actor.to_owned(),
            allowed: check.approvers.clone(),
        });
    }
    if check.not_by_initiator && actor == initiator {
        return Err(Refusal::Initiator {
            actor: actor.to_owned(),
        });
    }
    Ok(())
}

/// Counts the distinct allowed people who approved `guard`.
pub fn check(
    check: &ApprovalCheck,
    guard: &str,
    approvals: &[ApprovalRecord],
    initiator: &str,
    prompt: &str,
) -> Verdict {
    let approvers: BTreeSet<&str> = approvals
        .iter()
        .filter(|r| r.guard == guard && r.accepted)
        .filter(|r| may_approve(check, &r.actor, initiator).is_ok())
        .map(|r| r.actor.as_str())
        .collect();
    // `min: 0` would make the guard pass unattended; an approval always needs someone.
    let (have, min) = (approvers.len(), check.min.max(1) as usize);
    let mut detail = format!(
        "{have} of {min} approval{}",
        if min == 1 { "" } else { "s" }
    );
    if have > 0 {
        detail.push_str(&format!(
            " ({})",
            approvers.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if have >= min {
        Verdict::pass(detail)
    } else {
        detail.push_str(&format!(": {prompt}"));
        Verdict::waiting(detail, None)
    }
}

#[cfg(test)]
mod tests {
    use waygate_core::outcome::Outcome;

    use super::*;

    fn approval(min: u32, approvers: &[&str], not_by_initiator: bool) -> ApprovalCheck {
        ApprovalCheck {
            prompt: waygate_core::template::Template::parse("staging works").expect("plain text"),
            min,
            approvers: approvers.iter().map(|s| s.to_string()).collect(),
            not_by_initiator,
        }
    }

    fn rec(guard: &str, actor: &str, accepted: bool) -> ApprovalRecord {
        ApprovalRecord {
            guard: guard.into(),
            actor: actor.into(),
            accepted,
        }
    }

    #[test]
    fn counting_table() {
        let cases: &[(&str, ApprovalCheck, Vec<ApprovalRecord>, Outcome, &str)] = &[
            (
                "none yet",
                approval(1, &[], false),
                vec![],
                Outcome::Waiting,
                "0 of 1 approval: staging works",
            ),
            (
                "one is enough",
                approval(1, &[], false),
                vec![rec("g", "bob", true)],
                Outcome::Pass,
                "1 of 1 approval (bob)",
            ),
            (
                "duplicates count once",
                approval(2, &[], false),
                vec![rec("g", "bob", true), rec("g", "bob", true)],
                Outcome::Waiting,
                "1 of 2 approvals (bob): staging works",
            ),
            (
                "two distinct",
                approval(2, &[], false),
                vec![rec("g", "bob", true), rec("g", "carol", true)],
                Outcome::Pass,
                "2 of 2 approvals (bob, carol)",
            ),
            (
                "refused ones do not count",
                approval(1, &[], false),
                vec![rec("g", "bob", false)],
                Outcome::Waiting,
                "0 of 1 approval: staging works",
            ),
            (
                "other guards do not count",
                approval(1, &[], false),
                vec![rec("h", "bob", true)],
                Outcome::Waiting,
                "0 of 1 approval: staging works",
            ),
            (
                "only listed approvers",
                approval(1, &["carol"], false),
                vec![rec("g", "bob", true)],
                Outcome::Waiting,
                "0 of 1 approval: staging works",
            ),
            (
                "listed approver passes",
                approval(1, &["carol"], false),
                vec![rec("g", "carol", true)],
                Outcome::Pass,
                "1 of 1 approval (carol)",
            ),
            (
                "initiator excluded",
                approval(1, &[], true),
                vec![rec("g", "alice", true)],
                Outcome::Waiting,
                "0 of 1 approval: staging works",
            ),
            (
                "initiator allowed by default",
                approval(1, &[], false),
                vec![rec("g", "alice", true)],
                Outcome::Pass,
                "1 of 1 approval (alice)",
            ),
        ];
        for (name, check_, records, outcome, detail) in cases {
            let v = check(check_, "g", records, "alice", "staging works");
            assert_eq!(
                (v.outcome, v.detail.as_str()),
                (*outcome, *detail),
                "{name}"
            );
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
