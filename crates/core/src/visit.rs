//! A visit: the stretch of a run's history from entering a state to leaving it.
//!
//! A run that comes back to a state (a retry loop, `a -> b -> a`) starts a new visit, and
//! what was recorded in an earlier visit (approvals, action outcomes, guard looks) does not
//! carry over. Visits are told apart by the events alone (a `RunStarted` or `Transitioned`
//! starts one), not by clock times, so two events stamped in the same instant or a clock that
//! jumped cannot blur the boundary.

use crate::event::{Event, EventKind};

/// Whether `kind` puts the run in a state, starting a visit.
pub fn starts_visit(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::RunStarted { .. } | EventKind::Transitioned { .. }
    )
}

/// The events of the run's current visit: from the last event that entered a state
/// (included) to the end. `events` are one run's events, oldest first.
pub fn current_visit(events: &[Event]) -> &[Event] {
    &events[visit_start(events)..]
}

/// Where the current visit begins among one run's `events`: the index of the last event that
/// entered a state (0 when there is none).
pub fn visit_start(events: &[Event]) -> usize {
    events
        .iter()
        .rposition(|e| starts_visit(&e.kind))
        .unwrap_or(0)
}

/// The current visit's number: 1 for the initial state's first visit, one more for every
/// move since. Approvals record it, so one recorded as the run moved does not count in a
/// later visit.
pub fn visit_number(events: &[Event]) -> u32 {
    let n = events.iter().filter(|e| starts_visit(&e.kind)).count();
    u32::try_from(n).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{event, moved, started};

    fn ev(seq: u64, kind: EventKind) -> Event {
        event(seq, "a", kind)
    }

    fn aborted() -> EventKind {
        EventKind::Aborted {
            state: "a".into(),
            reason: "r".into(),
        }
    }

    #[test]
    fn visits_are_told_apart_by_events_not_times() {
        let cases: Vec<(&str, Vec<EventKind>, usize, u32)> = vec![
            ("no events", vec![], 0, 1),
            ("just started", vec![started()], 1, 1),
            ("started, then more", vec![started(), aborted()], 2, 1),
            (
                "one move",
                vec![started(), aborted(), moved("a", "b")],
                1,
                2,
            ),
            (
                "back again",
                vec![started(), moved("a", "b"), moved("b", "a"), aborted()],
                2,
                3,
            ),
        ];
        for (name, kinds, len, number) in cases {
            let events: Vec<Event> = kinds
                .into_iter()
                .enumerate()
                .map(|(i, k)| ev(i as u64 + 1, k))
                .collect();
            assert_eq!(current_visit(&events).len(), len, "{name}");
            assert_eq!(visit_number(&events), number, "{name}");
        }
    }
}
