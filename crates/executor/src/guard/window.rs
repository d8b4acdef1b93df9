//! `Window(days, start, end, tz)`: passes while now is inside a deploy window in an IANA time
//! zone.
//!
//! Openings are computed in local civil time and only then turned into instants with jiff,
//! so DST is handled by the time zone database: a 09:00 opening is 09:00 on the wall clock
//! in winter and summer alike. A local time that does not exist (spring-forward gap) opens at
//! the first instant after the gap; one that happens twice (fall-back) opens at the first.
//! A window whose `end <= start` spans midnight; its listed day is the day it opens (Fri
//! 22:00–02:00 is open early Saturday). Closed windows wait with `retry_at` at the next
//! opening instant. [`check`] is a pure function of `now`.

use jiff::civil::{Date, Weekday as CivilWeekday};
use jiff::Timestamp;
use waygate_core::model::{Weekday, WindowCheck};

use crate::clock::{human, since};
use crate::guard::Verdict;

/// Open or closed at `now`.
pub fn check(window: &WindowCheck, now: Timestamp) -> Verdict {
    if window.days.is_empty() {
        return Verdict::fail("the window has no open days");
    }
    let today = window.tz.to_datetime(now).date();
    // An opening yesterday may still be open (windows spanning midnight).
    let mut day = today.yesterday().unwrap_or(today);
    let mut next_opening = None;
    // Yesterday, today and a week on always contain the next opening.
    for _ in 0..9 {
        if let Some((open, close)) = opening(window, day) {
            if open <= now && now < close {
                return Verdict::pass(format!("open until {}", local(window, close)));
            }
            if open > now && next_opening.is_none() {
                next_opening = Some(open);
            }
        }
        match day.tomorrow() {
            Ok(d) => day = d,
            Err(_) => break,
        }
    }
    match next_opening {
        Some(at) => Verdict::waiting(
            format!(
                "closed; opens {} (in {})",
                local(window, at),
                human(since(at, now))
            ),
            Some(at),
        ),
        None => Verdict::fail("the window never opens"),
    }
}

/// The window opening on `day`, as instants, if `day` is an open day.
fn opening(window: &WindowCheck, day: Date) -> Option<(Timestamp, Timestamp)> {
    if !window.days.iter().any(|d| civil(*d) == day.weekday()) {
        return None;
    }
    let open = window.tz.to_timestamp(day.to_datetime(window.start)).ok()?;
    let close_day = if window.end <= window.start {
        day.tomorrow().ok()?
    } else {
        day
    };
    let close = window
        .tz
        .to_timestamp(close_day.to_datetime(window.end))
        .ok()?;
    Some((open, close))
}

fn local(window: &WindowCheck, at: Timestamp) -> String {
    format!(
        "{} {}",
        window.tz.to_datetime(at).strftime("%a %H:%M"),
        window.tz_name
    )
}

fn civil(day: Weekday) -> CivilWeekday {
    match day {
        Weekday::Mon => CivilWeekday::Monday,
        Weekday::Tue => CivilWeekday::Tuesday,
        Weekday::Wed => CivilWeekday::Wednesday,
        Weekday::Thu => CivilWeekday::Thursday,
        Weekday::Fri => CivilWeekday::Friday,
        Weekday::Sat => CivilWeekday::Saturday,
        Weekday::Sun => CivilWeekday::Sunday,
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::Time;
    use jiff::tz::TimeZone;
    use waygate_core::outcome::Outcome;

    use super::*;

    fn window(days: &[Weekday], start: &str, end: &str) -> WindowCheck {
        WindowCheck {
            days: days.to_vec(),
            start: start.parse::<Time>().expect("valid time"),
            end: end.parse::<Time>().expect("valid time"),
            tz_name: "Europe/London".into(),
            tz: TimeZone::get("Europe/London").expect("bundled tzdb"),
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("valid timestamp")
    }

    use Weekday::*;

    /// (what, window, now, outcome, retry_at)
    #[test]
    fn windows_table() {
        let weekdays = window(&[Mon, Tue, Wed, Thu], "09:00", "16:00");
        let sunday = window(&[Sun], "09:00", "17:00");
        let friday_night = window(&[Fri], "22:00", "02:00");
        let gap = window(&[Sun], "01:30", "03:00");
        let all_monday = window(&[Mon], "00:00", "00:00");
        let cases: &[(&str, &WindowCheck, &str, Outcome, Option<&str>)] = &[
            (
                "winter Monday 10:00 GMT",
                &weekdays,
                "2026-01-05T10:00:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "winter Monday before opening",
                &weekdays,
                "2026-01-05T08:59:59Z",
                Outcome::Waiting,
                Some("2026-01-05T09:00:00Z"),
            ),
            (
                "end is exclusive",
                &weekdays,
                "2026-01-05T16:00:00Z",
                Outcome::Waiting,
                Some("2026-01-06T09:00:00Z"),
            ),
            (
                "summer opens at 08:00 UTC",
                &weekdays,
                "2026-06-01T08:30:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "summer closes at 15:00 UTC",
                &weekdays,
                "2026-06-01T15:30:00Z",
                Outcome::Waiting,
                Some("2026-06-02T08:00:00Z"),
            ),
            (
                "Thursday evening waits for Monday",
                &weekdays,
                "2026-01-08T17:00:00Z",
                Outcome::Waiting,
                Some("2026-01-12T09:00:00Z"),
            ),
            // 2026-03-29: clocks go forward at 01:00 GMT. The Sunday window opens at 09:00 BST.
            (
                "spring-forward day, before",
                &sunday,
                "2026-03-28T12:00:00Z",
                Outcome::Waiting,
                Some("2026-03-29T08:00:00Z"),
            ),
            (
                "spring-forward day, open in BST",
                &sunday,
                "2026-03-29T08:30:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "spring-forward day, closes 17:00 BST",
                &sunday,
                "2026-03-29T16:00:00Z",
                Outcome::Waiting,
                Some("2026-04-05T08:00:00Z"),
            ),
            // 01:30 does not exist that day; the window opens at the end of the gap.
            (
                "opening inside the gap",
                &gap,
                "2026-03-29T00:30:00Z",
                Outcome::Waiting,
                Some("2026-03-29T01:30:00Z"),
            ),
            // 2026-10-25: clocks go back at 02:00 BST; the window runs 09:00-17:00 GMT.
            (
                "fall-back day, before",
                &sunday,
                "2026-10-24T12:00:00Z",
                Outcome::Waiting,
                Some("2026-10-25T09:00:00Z"),
            ),
            (
                "fall-back day, open in GMT",
                &sunday,
                "2026-10-25T16:30:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "fall-back day, closes 17:00 GMT",
                &sunday,
                "2026-10-25T17:00:00Z",
                Outcome::Waiting,
                Some("2026-11-01T09:00:00Z"),
            ),
            (
                "across midnight, Saturday 01:00",
                &friday_night,
                "2026-01-10T01:00:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "across midnight, Friday 23:00",
                &friday_night,
                "2026-01-09T23:00:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "across midnight, Saturday 02:00",
                &friday_night,
                "2026-01-10T02:00:00Z",
                Outcome::Waiting,
                Some("2026-01-16T22:00:00Z"),
            ),
            (
                "across midnight, Thursday 23:00",
                &friday_night,
                "2026-01-08T23:00:00Z",
                Outcome::Waiting,
                Some("2026-01-09T22:00:00Z"),
            ),
            (
                "end == start is a whole day",
                &all_monday,
                "2026-01-05T23:59:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "end == start ends at midnight",
                &all_monday,
                "2026-01-06T00:00:00Z",
                Outcome::Waiting,
                Some("2026-01-12T00:00:00Z"),
            ),
        ];
        for (what, w, now, outcome, retry_at) in cases {
            let v = check(w, ts(now));
            assert_eq!(v.outcome, *outcome, "{what}: {}", v.detail);
            assert_eq!(v.retry_at, retry_at.map(ts), "{what}: {}", v.detail);
        }
    }

    #[test]
    fn details_speak_local_time() {
        let weekdays = window(&[Mon, Tue, Wed, Thu], "09:00", "16:00");
        let v = check(&weekdays, ts("2026-06-01T08:30:00Z"));
        assert_eq!(v.detail, "open until Mon 16:00 Europe/London");
        let v = check(&weekdays, ts("2026-06-01T05:55:00Z"));
        assert_eq!(v.detail, "closed; opens Mon 09:00 Europe/London (in 2h5m)");
    }

    #[test]
    fn no_days_never_opens() {
        assert_eq!(
            check(&window(&[], "09:00", "10:00"), ts("2026-01-05T10:00:00Z")).outcome,
            Outcome::Fail
        );
    }
}
