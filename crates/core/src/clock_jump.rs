//! One writer's wrong clock stays its own: the rule for the times a store records and the
//! times waits are measured from, when clocks disagree (docs/storage.md, "Times and clocks").
//!
//! Every writer stamps what it writes with its own clock. Small disagreements (a clock
//! stepped back a second, two processes' clocks a little apart) are absorbed: an event is never
//! stamped earlier than the previous one as long as that one lies at most [`TOLERANCE`] ahead,
//! so the log stays ordered by time. A stored time further ahead than that is a
//! [`ClockJump`]: it is reported, never copied, so a process whose clock ran a year ahead
//! cannot push every later event, and every wait measured from one, a year into the future.
//! Elapsed time is likewise never measured from a time that lies beyond the tolerance in the
//! future ([`entered_at`]).

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// How far a stored time may lie ahead of the reading clock before it counts as a clock jump.
pub const TOLERANCE: Duration = Duration::from_secs(10);

/// A stored time lying more than [`TOLERANCE`] ahead of the clock reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockJump {
    /// The stored time.
    pub stored: Timestamp,
    /// The reading clock's time.
    pub now: Timestamp,
}

impl ClockJump {
    /// How far ahead the stored time lies.
    pub fn ahead(&self) -> Duration {
        Duration::try_from(self.stored.duration_since(self.now)).unwrap_or(Duration::ZERO)
    }
}

impl fmt::Display for ClockJump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clock jump: a stored time ({}) lies {} ahead of this clock ({}); one of the \
             two clocks is wrong",
            self.stored,
            // To the nearest second: the two readings are a moment apart.
            crate::duration::format_duration(Duration::from_secs(
                u64::try_from(self.ahead().as_millis())
                    .unwrap_or(u64::MAX)
                    .saturating_add(500)
                    / 1000
            )),
            self.now
        )
    }
}

/// Whether `stored` lies more than [`TOLERANCE`] ahead of `now`.
pub fn jump(stored: Timestamp, now: Timestamp) -> Option<ClockJump> {
    let limit = now
        .saturating_add(SignedDuration::try_from(TOLERANCE).unwrap_or(SignedDuration::ZERO))
        .unwrap_or(Timestamp::MAX);
    (stored > limit).then_some(ClockJump { stored, now })
}

/// The time to stamp a commit with, given the writer's clock (`now`) and the previous event's
/// time: `now`, or the previous time when that lies ahead but within [`TOLERANCE`] (the log
/// stays ordered by time); a previous time further ahead is a jump, reported and not copied.
pub fn commit_time(now: Timestamp, last: Option<Timestamp>) -> (Timestamp, Option<ClockJump>) {
    match last {
        Some(last) if last > now => match jump(last, now) {
            Some(jump) => (now, Some(jump)),
            None => (last, None),
        },
        _ => (now, None),
    }
}

/// The time a run's stay in its state counts from, for waits, watches and deadlines:
/// `stored` (when the store says the run entered it), unless that lies beyond the tolerance
/// ahead of `now`. Then the stored time came from a clock that ran ahead, and the stay counts
/// from the first later time of the visit (`visit`, its events' times in seq order) that this
/// clock can vouch for, else from `now`: a wait then takes its own length from when this
/// process (or an earlier one that recorded a look) first saw the state, never a year.
pub fn entered_at(
    stored: Timestamp,
    visit: impl IntoIterator<Item = Timestamp>,
    now: Timestamp,
) -> (Timestamp, Option<ClockJump>) {
    match jump(stored, now) {
        None => (stored, None),
        Some(jumped) => {
            let sane = visit.into_iter().find(|&t| jump(t, now).is_none());
            (sane.unwrap_or(now), Some(jumped))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("valid timestamp")
    }

    #[test]
    fn commit_times() {
        let now = ts("2026-06-01T10:00:00Z");
        // (what, previous event, stamped, jump reported)
        let cases: &[(&str, Option<&str>, &str, bool)] = &[
            ("first event", None, "2026-06-01T10:00:00Z", false),
            (
                "previous in the past",
                Some("2026-06-01T09:00:00Z"),
                "2026-06-01T10:00:00Z",
                false,
            ),
            (
                "previous a little ahead: kept in order",
                Some("2026-06-01T10:00:05Z"),
                "2026-06-01T10:00:05Z",
                false,
            ),
            (
                "previous exactly at the tolerance",
                Some("2026-06-01T10:00:10Z"),
                "2026-06-01T10:00:10Z",
                false,
            ),
            (
                "previous a year ahead: not copied",
                Some("2027-06-01T10:00:00Z"),
                "2026-06-01T10:00:00Z",
                true,
            ),
            (
                "previous just past the tolerance",
                Some("2026-06-01T10:00:10.001Z"),
                "2026-06-01T10:00:00Z",
                true,
            ),
        ];
        for (what, last, stamped, jumped) in cases {
            let (at, jump) = commit_time(now, last.map(ts));
            assert_eq!(at, ts(stamped), "{what}");
            assert_eq!(jump.is_some(), *jumped, "{what}");
        }
    }

    #[test]
    fn a_jump_says_how_far_ahead() {
        let (_, jump) = commit_time(ts("2026-06-01T10:00:00Z"), Some(ts("2027-06-01T10:00:00Z")));
        let jump = jump.expect("a jump");
        assert_eq!(jump.ahead(), Duration::from_secs(365 * 86400));
        assert!(jump.to_string().contains("365d ahead"), "{jump}");
    }

    #[test]
    fn entry_times() {
        let now = ts("2026-06-01T10:00:00Z");
        let ahead = ts("2027-06-01T10:00:00Z");
        let look = ts("2026-06-01T09:59:00Z");
        // Entered in the past: as stored.
        assert_eq!(
            entered_at(ts("2026-06-01T09:00:00Z"), [], now),
            (ts("2026-06-01T09:00:00Z"), None)
        );
        // A few seconds ahead (clocks a little apart): as stored.
        assert_eq!(
            entered_at(ts("2026-06-01T10:00:03Z"), [], now).0,
            ts("2026-06-01T10:00:03Z")
        );
        // A year ahead, nothing since: from now.
        let (at, jump) = entered_at(ahead, [ahead], now);
        assert_eq!(at, now);
        assert!(jump.is_some());
        // A year ahead, then a look this clock vouches for: from that look.
        let (at, jump) = entered_at(ahead, [ahead, look, now], now);
        assert_eq!(at, look);
        assert!(jump.is_some());
    }
}
