//! Builders the unit tests of several modules share: events at one fixed instant (so that
//! nothing can depend on the clock), a run's first event, a guard's result.

use crate::event::{Event, EventKind, NewEvent, GENESIS_HASH};
use crate::outcome::{GuardResult, Outcome};
use crate::run::RunId;

/// Event `seq` of run `r` by `actor`, stamped 2026-11-26T16:45:01Z like every other.
pub(crate) fn event(seq: u64, actor: &str, kind: EventKind) -> Event {
    let at: jiff::Timestamp = "2026-11-26T16:45:01Z".parse().expect("timestamp");
    Event::seal(
        seq,
        RunId::from("r"),
        at,
        NewEvent::new(actor, kind),
        GENESIS_HASH,
    )
}

/// The `RunStarted` of a run of workflow `w` in `e` starting in `state`.
pub(crate) fn run_started(state: &str) -> EventKind {
    EventKind::RunStarted {
        workflow: "w".into(),
        env: "e".into(),
        state: state.into(),
        file: "w.ron".into(),
        definition_hash: String::new(),
        vars: Default::default(),
        workdir: None,
        file_path: None,
    }
}

/// Guard `name`'s result with `outcome` and `detail`, one try, no evidence.
pub(crate) fn guard_result(name: &str, outcome: Outcome, detail: &str) -> GuardResult {
    GuardResult {
        name: name.into(),
        outcome,
        detail: detail.into(),
        evidence: None,
        duration_ms: 0,
        attempts: 1,
        retry_at: None,
        incident: false,
        outputs: Default::default(),
    }
}
