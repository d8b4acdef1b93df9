//! `Watch(check, duration, interval)`: the inner check must hold at every look for the whole
//! duration; the first failure is an incident that sends the run to `on_failure` at once.
//!
//! Each evaluation runs the inner check once. The watch's window is measured from stored
//! times, not from when this process started watching: it starts when the run entered its
//! state, and every look is a recorded `GuardsEvaluated` event. A watch interrupted by a crash
//! therefore resumes where it was instead of restarting from zero, as long as somebody looks
//! again soon enough. A pause between two looks longer than [`max_gap`] (nobody was driving the
//! run) means nobody watched: the window starts again at the first look after the pause, so a
//! watch never passes on the strength of one look at its end.
//!
//! Between looks the guard is Waiting with `retry_at` one interval on (but never past the end
//! of the window, so the closing look happens on time).

use std::time::Duration;

use jiff::Timestamp;
use waygate_core::model::WatchCheck;
use waygate_core::outcome::Outcome;

use crate::clock::{add, human, since};
use crate::guard::Verdict;

/// The longest pause between two looks that still counts as watching: twice the interval,
/// and never less than a minute, so a `drive` restarted promptly after a crash picks the
/// watch up where it was.
pub fn max_gap(interval: Duration) -> Duration {
    (interval * 2).max(Duration::from_secs(60))
}

/// Where a watch's window starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowStart {
    /// The instant the watched time counts from.
    pub at: Timestamp,
    /// The unwatched pause that made the window start late, if one did.
    pub pause: Option<Pause>,
}

/// An unwatched pause that moved a watch's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// The first look came this long after the state was entered (entry actions ran long,
    /// or nobody drove the run).
    BeforeFirstLook(Duration),
    /// Nobody looked for this long after an earlier look.
    BetweenLooks(Duration),
}

/// The start of the window for a look at `now`, given when the run entered the state and the
/// earlier looks recorded in this visit (any order; those before `entered_at` are ignored).
///
/// Counting from `entered_at`, every pause longer than [`max_gap`] between consecutive looks
/// (the entry counts as the first, `now` as the last) moves the start to the look that ended it.
pub fn window_start(
    watch: &WatchCheck,
    entered_at: Timestamp,
    looks: &[Timestamp],
    now: Timestamp,
) -> WindowStart {
    let gap_limit = max_gap(watch.interval);
    let mut times: Vec<Timestamp> = looks
        .iter()
        .copied()
        .filter(|&t| t >= entered_at && t <= now)
        .collect();
    times.sort_unstable();
    times.push(now);
    let mut start = WindowStart {
        at: entered_at,
        pause: None,
    };
    let mut previous = None;
    for t in times {
        let pause = since(t, previous.unwrap_or(entered_at));
        if pause > gap_limit {
            start = WindowStart {
                at: t,
                pause: Some(match previous {
                    None => Pause::BeforeFirstLook(pause),
                    Some(_) => Pause::BetweenLooks(pause),
                }),
            };
        }
        previous = Some(t);
    }
    start
}

/// Combines one look at the inner check with the watch's progress at `now`, the window
/// starting at `start` (see [`window_start`]).
pub fn check(watch: &WatchCheck, inner: Verdict, start: WindowStart, now: Timestamp) -> Verdict {
    let elapsed = since(now, start.at);
    let restarted = match start.pause {
        None => String::new(),
        Some(Pause::BeforeFirstLook(p)) => {
            format!(" (counting from the first look, {} after entry)", human(p))
        }
        Some(Pause::BetweenLooks(p)) => format!(" (started over: no look for {})", human(p)),
    };
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
            let next = add(now, watch.interval).min(add(start.at, watch.duration));
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
                    "{state} for {} of {}{restarted}: {}",
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

    /// Looks every 30 s from `from` up to and including `to` (both "HH:MM:SS" on one day).
    fn looks_every_30s(from: &str, to: &str) -> Vec<Timestamp> {
        let (from, to) = (
            ts(&format!("2026-03-02T{from}Z")),
            ts(&format!("2026-03-02T{to}Z")),
        );
        std::iter::successors(Some(from), |&t| Some(add(t, Duration::from_secs(30))))
            .take_while(|&t| t <= to)
            .collect()
    }

    fn look(looks: &[Timestamp], inner: Verdict, now: &str) -> Verdict {
        let (entered, now) = (ts("2026-03-02T10:00:00Z"), ts(now));
        check(
            &watch(),
            inner,
            window_start(&watch(), entered, looks, now),
            now,
        )
    }

    #[test]
    fn holding_then_held() {
        let v = look(
            &looks_every_30s("10:00:30", "10:04:30"),
            Verdict::pass("exit status 0"),
            "2026-03-02T10:05:00Z",
        );
        assert_eq!(v.outcome, Outcome::Waiting);
        assert_eq!(v.detail, "holding for 5m of 15m: exit status 0");
        assert_eq!(v.retry_at, Some(ts("2026-03-02T10:05:30Z")));
        assert!(!v.incident);

        let v = look(
            &looks_every_30s("10:00:30", "10:14:30"),
            Verdict::pass("exit status 0"),
            "2026-03-02T10:14:50Z",
        );
        assert_eq!(
            v.retry_at,
            Some(ts("2026-03-02T10:15:00Z")),
            "the last look is on time"
        );

        let v = look(
            &looks_every_30s("10:00:30", "10:14:30"),
            Verdict::pass("exit status 0"),
            "2026-03-02T10:15:00Z",
        );
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.detail, "held for 15m: exit status 0");
    }

    #[test]
    fn a_failure_is_an_incident() {
        let v = look(
            &looks_every_30s("10:00:30", "10:02:30"),
            Verdict::fail("exit status 1"),
            "2026-03-02T10:03:00Z",
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.incident);
        assert_eq!(v.detail, "watch broken after 3m: exit status 1");
    }

    #[test]
    fn resumes_from_the_stored_entry_time_after_a_short_interruption() {
        // Looks until 10:13:30, then the process died; a new `drive` looks at 10:14:00 and
        // needs only one more minute, not fifteen.
        let v = look(
            &looks_every_30s("10:00:30", "10:13:30"),
            Verdict::pass("ok"),
            "2026-03-02T10:14:00Z",
        );
        assert_eq!(v.detail, "holding for 14m of 15m: ok");
        let v = look(
            &looks_every_30s("10:00:30", "10:13:00"),
            Verdict::pass("ok"),
            "2026-03-02T10:14:00Z",
        );
        assert_eq!(
            v.detail, "holding for 14m of 15m: ok",
            "a 1m pause is tolerated"
        );
    }

    #[test]
    fn one_look_at_the_end_is_not_a_watch() {
        // Nobody drove the run for 15 minutes; a single passing look proves nothing.
        let v = look(&[], Verdict::pass("ok"), "2026-03-02T10:15:00Z");
        assert_eq!(v.outcome, Outcome::Waiting);
        assert_eq!(
            v.detail,
            "holding for 0ms of 15m (counting from the first look, 15m after entry): ok"
        );
        assert_eq!(v.retry_at, Some(ts("2026-03-02T10:15:30Z")));
    }

    #[test]
    fn a_long_pause_between_looks_starts_the_window_over() {
        let looks = looks_every_30s("10:00:30", "10:05:00");
        let v = look(&looks, Verdict::pass("ok"), "2026-03-02T10:20:00Z");
        assert_eq!(v.outcome, Outcome::Waiting);
        assert_eq!(
            v.detail,
            "holding for 0ms of 15m (started over: no look for 15m): ok"
        );
        // Watching from there on, it holds 15 minutes after the pause ended.
        let mut looks = looks;
        looks.extend(looks_every_30s("10:20:00", "10:34:30"));
        let v = look(&looks, Verdict::pass("ok"), "2026-03-02T10:35:00Z");
        assert_eq!(v.outcome, Outcome::Pass);
    }

    #[test]
    fn looks_from_an_earlier_visit_do_not_count() {
        let earlier = looks_every_30s("09:40:00", "09:59:30");
        let start = window_start(
            &watch(),
            ts("2026-03-02T10:00:00Z"),
            &earlier,
            ts("2026-03-02T10:00:30Z"),
        );
        assert_eq!(start.at, ts("2026-03-02T10:00:00Z"));
        assert_eq!(start.pause, None);
    }

    #[test]
    fn the_tolerated_pause_is_twice_the_interval_and_at_least_a_minute() {
        assert_eq!(max_gap(Duration::from_secs(5)), Duration::from_secs(60));
        assert_eq!(max_gap(Duration::from_secs(30)), Duration::from_secs(60));
        assert_eq!(max_gap(Duration::from_secs(300)), Duration::from_secs(600));
    }
}
