//! `Wait(duration)`: bake time. Passes once `duration` has passed since the run entered its
//! current state.
//!
//! The start is the state entry time as stored, not when this process began looking, so a
//! wait survives restarts and crashes without starting over; an entry time stamped by a clock
//! that ran ahead is replaced by the engine first (`waygate_core::clock_jump::entered_at`).

use std::time::Duration;

use jiff::Timestamp;

use crate::clock::{add, human, since};
use crate::guard::Verdict;

/// Pass when `now - entered_at >= duration`, else Waiting until `entered_at + duration`.
pub fn check(duration: Duration, entered_at: Timestamp, now: Timestamp) -> Verdict {
    let elapsed = since(now, entered_at);
    if elapsed >= duration {
        Verdict::pass(format!("waited {}", human(duration)))
    } else {
        let left = duration - elapsed;
        Verdict::waiting(
            format!("{} left of {}", human(left), human(duration)),
            Some(add(entered_at, duration)),
        )
    }
}

#[cfg(test)]
mod tests {
    use waygate_core::outcome::Outcome;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("valid timestamp")
    }

    #[test]
    fn waits_from_state_entry() {
        let entered = ts("2026-03-02T10:00:00Z");
        let v = check(
            Duration::from_secs(600),
            entered,
            ts("2026-03-02T10:04:00Z"),
        );
        assert_eq!(v.outcome, Outcome::Waiting);
        assert_eq!(v.detail, "6m left of 10m");
        assert_eq!(v.retry_at, Some(ts("2026-03-02T10:10:00Z")));
        let v = check(
            Duration::from_secs(600),
            entered,
            ts("2026-03-02T10:10:00Z"),
        );
        assert_eq!(v.outcome, Outcome::Pass);
    }

    #[test]
    fn a_clock_behind_the_entry_time_just_waits() {
        let entered = ts("2026-03-02T10:00:00Z");
        let v = check(Duration::from_secs(60), entered, ts("2026-03-02T09:59:00Z"));
        assert_eq!(v.outcome, Outcome::Waiting);
    }
}
