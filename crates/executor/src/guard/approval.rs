//! `Approval(prompt, min, approvers, not_by_initiator)`: passes when `min` distinct allowed
//! people approved this guard in the run's current visit of its state.
//!
//! Which approvals count is one rule in core ([`waygate_core::approval`]), shared with
//! `status` and `approve`; this guard only turns its tally into a verdict.

use waygate_core::approval::{tally, ApprovalRecord};
use waygate_core::model::ApprovalCheck;

use crate::guard::Verdict;

/// Passes when enough of `approvals` (the current visit's records) count for `guard`.
pub fn check(
    check: &ApprovalCheck,
    guard: &str,
    approvals: &[ApprovalRecord],
    initiator: &str,
    prompt: &str,
) -> Verdict {
    let t = tally(check, guard, approvals, initiator);
    let (have, need) = (t.approvers.len(), t.need);
    let mut detail = format!(
        "{have} of {need} approval{}",
        if need == 1 { "" } else { "s" }
    );
    if have > 0 {
        detail.push_str(&format!(" ({})", t.approvers.join(", ")));
    }
    if t.met() {
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

    fn approval(min: u32) -> ApprovalCheck {
        ApprovalCheck {
            prompt: waygate_core::template::Template::parse("staging works").expect("plain text"),
            min,
            approvers: Vec::new(),
            not_by_initiator: false,
        }
    }

    fn rec(actor: &str, given: bool) -> ApprovalRecord {
        ApprovalRecord {
            guard: "g".into(),
            actor: actor.into(),
            given,
        }
    }

    #[test]
    fn verdict_and_detail_table() {
        let cases: &[(&str, u32, Vec<ApprovalRecord>, Outcome, &str)] = &[
            (
                "none yet",
                1,
                vec![],
                Outcome::Waiting,
                "0 of 1 approval: staging works",
            ),
            (
                "one is enough",
                1,
                vec![rec("bob", true)],
                Outcome::Pass,
                "1 of 1 approval (bob)",
            ),
            (
                "short of two",
                2,
                vec![rec("bob", true)],
                Outcome::Waiting,
                "1 of 2 approvals (bob): staging works",
            ),
            (
                "withdrawn",
                1,
                vec![rec("bob", true), rec("bob", false)],
                Outcome::Waiting,
                "0 of 1 approval: staging works",
            ),
        ];
        for (name, min, records, outcome, detail) in cases {
            let v = check(&approval(*min), "g", records, "alice", "staging works");
            assert_eq!(
                (v.outcome, v.detail.as_str()),
                (*outcome, *detail),
                "{name}"
            );
        }
    }
}
