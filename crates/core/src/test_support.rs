//! Events for the unit tests of the rules that read a run's history (visits, approvals,
//! overrides, notifications).

use crate::event::{Cause, Event, EventKind, NewEvent, GENESIS_HASH};
use crate::run::RunId;

/// Event `seq` of run `r` by `actor`. Every event is stamped at the same instant: the rules
/// under test must tell events apart by what they are, never by the clock.
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

/// A run of workflow `w` started in state `a`.
pub(crate) fn started() -> EventKind {
    EventKind::RunStarted {
        workflow: "w".into(),
        env: "e".into(),
        state: "a".into(),
        file: "w.ron".into(),
        definition_hash: String::new(),
        vars: Default::default(),
        workdir: None,
        file_path: None,
    }
}

/// An advance from `from` to `to`.
pub(crate) fn moved(from: &str, to: &str) -> EventKind {
    EventKind::Transitioned {
        from: from.into(),
        to: to.into(),
        cause: Cause::Advance,
        reason: None,
    }
}
