//! The 5-state guarded cycle (`bench/cycle5.ron`) that the `decide` bench and the
//! `decide_rate` example (run by `bench/compare` next to other state-machine libraries) both
//! drive: one step finds the state's only transition, decides on its guard's result and
//! moves.

use std::hint::black_box;
use std::time::Duration;

use petgraph::graph::NodeIndex;
use waygate_core::decide::{decide, Decision, Evaluation};
use waygate_core::model::Workflow;
use waygate_core::outcome::{GuardResult, Outcome};
use waygate_core::validate::validate;

const CYCLE: &str = include_str!("../../../../bench/cycle5.ron");

/// The validated cycle.
pub fn workflow() -> Result<Workflow, String> {
    let validated = validate("cycle5.ron", CYCLE);
    validated
        .workflow
        .ok_or_else(|| format!("cycle5.ron is invalid: {:?}", validated.diagnostics))
}

/// The one guard's result, passing; a caller reuses it and changes only its outcome.
pub fn passing() -> [GuardResult; 1] {
    [GuardResult::immediate("ok", Outcome::Pass, "")]
}

/// One step from `state` with the guard's `results`: the state the decision moves to.
#[inline]
pub fn step(
    workflow: &Workflow,
    state: NodeIndex,
    results: &[GuardResult],
) -> Result<NodeIndex, String> {
    let t = workflow
        .outgoing_iter(state)
        .next()
        .ok_or("state without a transition")?;
    let evaluations = [Evaluation {
        transition: t.id,
        results,
    }];
    match decide(
        workflow,
        state,
        &[],
        Duration::ZERO,
        black_box(&evaluations),
    ) {
        Decision::Take { to, .. } => Ok(to),
        other => Err(format!("unexpected decision {other:?}")),
    }
}
