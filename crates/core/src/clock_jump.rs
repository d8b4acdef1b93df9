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
            rounded(self.ahead()),
            self.now
        )
    }
}

/// `d` for people: to the nearest minute from an hour on, else to the nearest second (two
/// clock readings are a moment apart; `365d` reads better than `364d23h59m59s`).
fn rounded(d: Duration) -> String {
    let secs = d
        .as_secs()
        .saturating_add(u64::from(d.subsec_millis() >= 500));
    let secs = if secs >= 3600 {
        secs.saturating_add(30) / 60 * 60
    } else {
        secs
    };
    crate::duration::format_duration(Duration::from_secs(secs))
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

/// Why a run's stored entry time is not what its stay in the state counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryJump {
    /// The entry time lies beyond the tolerance ahead of the reading clock: the clock that
    /// stamped it ran ahead.
    Ahead(ClockJump),
    /// The entry time lies beyond the tolerance before an earlier event of the run that the
    /// reading clock can vouch for: the clock that stamped it ran behind.
    Behind {
        /// The stored entry time.
        entered: Timestamp,
        /// The earlier event's (later) time.
        earlier: Timestamp,
    },
}

impl fmt::Display for EntryJump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryJump::Ahead(jump) => write!(
                f,
                "{jump}: the run entered its state at a time this clock has not reached"
            ),
            EntryJump::Behind { entered, earlier } => write!(
                f,
                "clock jump: the run entered its state at {entered}, {} before an earlier \
                 event of the run ({earlier}); the clock that stamped the entry ran behind",
                rounded(Duration::try_from(earlier.duration_since(*entered)).unwrap_or_default())
            ),
        }
    }
}

/// The time a run's stay in its state counts from, for waits, watches and deadlines.
///
/// `stored` is when the store says the run entered the state; `before` are the times of the
/// run's events before that visit, `visit` those of the visit (its entry first), in seq order.
/// The stored time counts unless clocks contradict it: it lies beyond the tolerance ahead of
/// `now` (a clock that ran ahead stamped it), or beyond the tolerance before an earlier event
/// that `now` can vouch for (a clock that ran behind). Then the stay counts from the first time
/// of the visit that fits both (the first look this process or another recorded), else from
/// `now`: a wait then takes its own length from when the state was first seen, never a year
/// more, and a deadline does not pass a year early.
pub fn entered_at(
    stored: Timestamp,
    before: impl IntoIterator<Item = Timestamp>,
    visit: impl IntoIterator<Item = Timestamp>,
    now: Timestamp,
) -> (Timestamp, Option<EntryJump>) {
    let vouched = |t: Timestamp| jump(t, now).is_none();
    let floor = before.into_iter().filter(|&t| vouched(t)).max();
    let why = if let Some(ahead) = jump(stored, now) {
        EntryJump::Ahead(ahead)
    } else if let Some(earlier) = floor.filter(|&f| jump(f, stored).is_some()) {
        EntryJump::Behind {
            entered: stored,
            earlier,
        }
    } else {
        return (stored, None);
    };
    let fits = |t: Timestamp| vouched(t) && floor.is_none_or(|f| jump(f, t).is_none());
    let from = visit.into_iter().find(|&t| fits(t)).unwrap_or(now);
    (from, Some(why))
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
        let started = ts("2026-06-01T08:00:00Z");
        let ahead = ts("2027-06-01T10:00:00Z");
        let behind = ts("2025-06-01T10:00:00Z");
        let look = ts("2026-06-01T09:59:00Z");
        /// (what, stored, before, visit after the entry, counts from, jump)
        type Case<'a> = (
            &'a str,
            Timestamp,
            &'a [Timestamp],
            &'a [Timestamp],
            Timestamp,
            bool,
        );
        let cases: &[Case] = &[
            (
                "in the past",
                ts("2026-06-01T09:00:00Z"),
                &[started],
                &[],
                ts("2026-06-01T09:00:00Z"),
                false,
            ),
            (
                "a few seconds ahead",
                ts("2026-06-01T10:00:03Z"),
                &[started],
                &[],
                ts("2026-06-01T10:00:03Z"),
                false,
            ),
            (
                "a year ahead, nothing since",
                ahead,
                &[started],
                &[],
                now,
                true,
            ),
            (
                "a year ahead, then a look",
                ahead,
                &[started],
                &[look, now],
                look,
                true,
            ),
            (
                "a year ahead, an earlier event a year ahead too",
                ahead,
                &[ahead],
                &[look],
                look,
                true,
            ),
            (
                "a year behind the run's start",
                behind,
                &[started, behind],
                &[],
                now,
                true,
            ),
            (
                "a year behind, then a look",
                behind,
                &[started],
                &[behind, look],
                look,
                true,
            ),
            (
                "after an event a year ahead: as stored",
                look,
                &[started, ahead],
                &[],
                look,
                false,
            ),
            (
                "long after the start: as stored",
                look,
                &[behind, started],
                &[],
                look,
                false,
            ),
        ];
        for (what, stored, before, after, from, jumped) in cases {
            let visit = std::iter::once(*stored).chain(after.iter().copied());
            let (at, jump) = entered_at(*stored, before.iter().copied(), visit, now);
            assert_eq!(at, *from, "{what}");
            assert_eq!(jump.is_some(), *jumped, "{what}: {jump:?}");
        }
    }
}
