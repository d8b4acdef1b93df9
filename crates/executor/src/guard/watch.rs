//! `Watch(check, duration, interval)`: the inner check must hold at every look for the whole
//! duration; the first failure is an incident that sends the run to `on_failure` at once.
//!
//! Each evaluation runs the inner check once. The watch window is measured from the stored
//! state entry time (`GuardContext::state_entered_at`), not from when this process started
//! watching, so a watch interrupted by a crash resumes where it was instead of restarting
//! from zero. Between looks the guard is Waiting with `retry_at` one interval on (but never
//! past the end of the window, so the closing look happens on time).

use jiff::Timestamp;
use waygate_core::model::WatchCheck;
use waygate_core::outcome::Outcome;

use crate::clock::{add, human, since};
use crate::guard::Verdict;

/// Combines one look at the inner check with the watch's progress at `now`.
pub fn check(watch: &WatchCheck, inner: Verdict, entered_at: Timestamp, now: Timestamp) -> Verdict {
    let elapsed = since(now, entered_at);
    match inner.outcome {
        Outcome::Fail => Verdict {
            incident: true,
            detail: format!("watch broken after {}: {}", human(elapsed), inner.detail),
            ..inner
        },
        Outcome::Pass if elapsed >= watch.duration => Verdict {
            detail: format!("held for {}: {}", human(watch.duration), inner.detail),
            ..inner
        },
        Outcome::Pass | Outcome::Waiting => {
            let next = add(now, watch.interval).min(add(entered_at, watch.duration));
            let next = if next <= now {
                add(now, watch.interval)
            } else {
                next
            };
            let state = if inner.outcome == Outcome::Pass {
                "holding"
            } else {
                "inner check waiting"
            };
            Verdict {
                outcome: Outcome::Waiting,
                detail: format!(
                    "{state} for {} of {}: {}",
                    human(elapsed),
                    human(watch.duration),
                    inner.detail
                ),
                retry_at: Some(next),
                ..inner
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use waygate_core::model::Check;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("valid timestamp")
    }

    fn watch() -> WatchCheck {
        WatchCheck {
            check: Box::new(Check::Wait(Duration::ZERO)),
            duration: Duration::from_secs(15 * 60),
            interval: Duration::from_secs(30),
        }
    }

    #[test]
    fn holding_then_held() {
        let entered = ts("2026-03-02T10:00:00Z");
        let v = check(
            &watch(),
            Verdict::pass("exit status 0"),
            entered,
            ts("2026-03-02T10:05:00Z"),
        );
        assert_eq!(v.outcome, Outcome::Waiting);
        assert_eq!(v.detail, "holding for 5m of 15m: exit status 0");
        assert_eq!(v.retry_at, Some(ts("2026-03-02T10:05:30Z")));
        assert!(!v.incident);

        let v = check(
            &watch(),
            Verdict::pass("exit status 0"),
            entered,
            ts("2026-03-02T10:14:50Z"),
        );
        assert_eq!(
            v.retry_at,
            Some(ts("2026-03-02T10:15:00Z")),
            "the last look is on time"
        );

        let v = check(
            &watch(),
            Verdict::pass("exit status 0"),
            entered,
            ts("2026-03-02T10:15:00Z"),
        );
        assert_eq!(v.outcome, Outcome::Pass);
    }

    #[test]
    fn a_failure_is_an_incident() {
        let entered = ts("2026-03-02T10:00:00Z");
        let v = check(
            &watch(),
            Verdict::fail("exit status 1"),
            entered,
            ts("2026-03-02T10:03:00Z"),
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.incident);
        assert_eq!(v.detail, "watch broken after 3m: exit status 1");
    }

    #[test]
    fn resumes_from_the_stored_entry_time() {
        // A process that starts watching 14m after the state was entered (after a crash)
        // needs only one more minute, not fifteen.
        let entered = ts("2026-03-02T10:00:00Z");
        let v = check(
            &watch(),
            Verdict::pass("ok"),
            entered,
            ts("2026-03-02T10:14:00Z"),
        );
        assert_eq!(v.detail, "holding for 14m of 15m: ok");
    }
}
