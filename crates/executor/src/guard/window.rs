//! `Window(days, start, end, tz)`: passes while now is inside a deploy window in an IANA time
//! zone.
//!
//! Openings are computed in local civil time and only then turned into instants with jiff,
//! so DST is handled by the time zone database: a 09:00 opening is 09:00 on the wall clock
//! in winter and summer alike. Daylight-saving transitions follow one rule, [`instant`], for
//! `start` and `end` alike (docs/workflow-format.md, Window): a local time that does not exist
//! (in a spring-forward gap) is the first instant after the gap; one that happens twice (in a
//! fall-back fold) is its first occurrence. A window left empty by that (both ends inside one
//! gap) does not open that day, and is never announced as opening.
//! A window whose `end <= start` spans midnight; its listed day is the day it opens (Fri
//! 22:00–02:00 is open early Saturday). Closed windows wait with `retry_at` at the next
//! opening instant. [`check`] is a pure function of `now`.

use jiff::civil::{Date, DateTime, Weekday as CivilWeekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
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
        if let Some((open, close)) = opening(window, day).filter(|(open, close)| open < close) {
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
    let open = instant(&window.tz, day.to_datetime(window.start))?;
    let close_day = if window.end <= window.start {
        day.tomorrow().ok()?
    } else {
        day
    };
    let close = instant(&window.tz, close_day.to_datetime(window.end))?;
    Some((open, close))
}

/// The instant a local time stands for in `tz`: the only one, or for a time in a
/// spring-forward gap the first instant after the gap (the transition itself), or for a time
/// in a fall-back fold its first occurrence.
fn instant(tz: &TimeZone, local: DateTime) -> Option<Timestamp> {
    let ambiguous = tz.to_ambiguous_timestamp(local);
    match ambiguous.offset() {
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the offset in force after the gap, the time lies before the
            // transition; the transition is the next one from there.
            let before_gap = after.to_timestamp(local).ok()?;
            Some(tz.following(before_gap).next()?.timestamp())
        }
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => {
            ambiguous.earlier().ok()
        }
    }
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
                Some("2026-03-29T01:00:00Z"),
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

    fn zoned(tz: &str, days: &[Weekday], start: &str, end: &str) -> WindowCheck {
        WindowCheck {
            tz_name: tz.into(),
            tz: TimeZone::get(tz).expect("bundled tzdb"),
            ..window(days, start, end)
        }
    }

    /// One rule on both transitions of four zones (two northern, two southern, one of them
    /// with a 30-minute shift): a start or end in a spring-forward gap is the first instant
    /// after the gap; one in a fall-back fold is its first occurrence. A window whose start
    /// fell in the gap used to open an hour late, or never (`opens in 14s`, then closed).
    #[test]
    fn gaps_and_folds_follow_one_rule_in_every_zone() {
        let cases: &[(&str, WindowCheck, &str, Outcome, Option<&str>)] = &[
            // Europe/London: 2026-03-29 01:00 GMT -> 02:00 BST (01:00Z).
            (
                "London gap, start in gap, before",
                zoned("Europe/London", &[Sun], "01:30", "03:00"),
                "2026-03-29T00:59:00Z",
                Outcome::Waiting,
                Some("2026-03-29T01:00:00Z"),
            ),
            (
                "London gap, opens at the gap's end",
                zoned("Europe/London", &[Sun], "01:30", "03:00"),
                "2026-03-29T01:00:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "London gap, closes at 03:00 BST",
                zoned("Europe/London", &[Sun], "01:30", "03:00"),
                "2026-03-29T02:00:00Z",
                Outcome::Waiting,
                Some("2026-04-05T00:30:00Z"),
            ),
            (
                "London gap, short window after the gap opens",
                zoned("Europe/London", &[Sun], "01:30", "02:15"),
                "2026-03-29T01:10:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "London gap, window wholly inside it stays shut and says so",
                zoned("Europe/London", &[Sun], "01:15", "01:45"),
                "2026-03-29T00:30:00Z",
                Outcome::Waiting,
                Some("2026-04-05T00:15:00Z"),
            ),
            (
                "London gap, window wholly inside it never passes",
                zoned("Europe/London", &[Sun], "01:15", "01:45"),
                "2026-03-29T01:00:00Z",
                Outcome::Waiting,
                Some("2026-04-05T00:15:00Z"),
            ),
            // 2026-10-25 02:00 BST -> 01:00 GMT (01:00Z).
            (
                "London fold, start's first occurrence",
                zoned("Europe/London", &[Sun], "01:30", "03:00"),
                "2026-10-25T00:30:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "London fold, still open in the second 01:30",
                zoned("Europe/London", &[Sun], "01:30", "03:00"),
                "2026-10-25T01:30:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "London fold, end's first occurrence",
                zoned("Europe/London", &[Sun], "00:30", "01:30"),
                "2026-10-25T00:29:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "London fold, closed in the second 01:15",
                zoned("Europe/London", &[Sun], "00:30", "01:30"),
                "2026-10-25T01:15:00Z",
                Outcome::Waiting,
                Some("2026-11-01T00:30:00Z"),
            ),
            // America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z).
            (
                "New York gap, before",
                zoned("America/New_York", &[Sun], "02:30", "04:00"),
                "2026-03-08T06:59:00Z",
                Outcome::Waiting,
                Some("2026-03-08T07:00:00Z"),
            ),
            (
                "New York gap, opens at 03:00 EDT",
                zoned("America/New_York", &[Sun], "02:30", "04:00"),
                "2026-03-08T07:00:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "New York gap, closes at 04:00 EDT",
                zoned("America/New_York", &[Sun], "02:30", "04:00"),
                "2026-03-08T08:00:00Z",
                Outcome::Waiting,
                Some("2026-03-15T06:30:00Z"),
            ),
            (
                "New York gap, short window after the gap opens",
                zoned("America/New_York", &[Sun], "02:30", "03:15"),
                "2026-03-08T07:10:00Z",
                Outcome::Pass,
                None,
            ),
            // 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z).
            (
                "New York fold, start's first occurrence",
                zoned("America/New_York", &[Sun], "01:30", "03:00"),
                "2026-11-01T05:30:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "New York fold, open in the second 01:45",
                zoned("America/New_York", &[Sun], "01:30", "03:00"),
                "2026-11-01T06:45:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "New York fold, end's first occurrence",
                zoned("America/New_York", &[Sun], "00:30", "01:30"),
                "2026-11-01T05:29:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "New York fold, closed in the second 01:15",
                zoned("America/New_York", &[Sun], "00:30", "01:30"),
                "2026-11-01T06:15:00Z",
                Outcome::Waiting,
                Some("2026-11-08T05:30:00Z"),
            ),
            // Australia/Sydney: 2026-10-04 02:00 AEST -> 03:00 AEDT (2026-10-03 16:00Z).
            (
                "Sydney gap, before",
                zoned("Australia/Sydney", &[Sun], "02:30", "04:00"),
                "2026-10-03T15:59:00Z",
                Outcome::Waiting,
                Some("2026-10-03T16:00:00Z"),
            ),
            (
                "Sydney gap, opens at 03:00 AEDT",
                zoned("Australia/Sydney", &[Sun], "02:30", "04:00"),
                "2026-10-03T16:00:00Z",
                Outcome::Pass,
                None,
            ),
            // 2026-04-05 03:00 AEDT -> 02:00 AEST (2026-04-04 16:00Z).
            (
                "Sydney fold, start's first occurrence",
                zoned("Australia/Sydney", &[Sun], "02:30", "04:00"),
                "2026-04-04T15:30:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "Sydney fold, open in the second 02:45",
                zoned("Australia/Sydney", &[Sun], "02:30", "04:00"),
                "2026-04-04T16:45:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "Sydney fold, closed in the second 02:30",
                zoned("Australia/Sydney", &[Sun], "01:00", "02:30"),
                "2026-04-04T16:30:00Z",
                Outcome::Waiting,
                Some("2026-04-11T15:00:00Z"),
            ),
            // Australia/Lord_Howe, half-hour shifts: 2026-10-04 02:00 -> 02:30 (2026-10-03 15:30Z).
            (
                "Lord Howe gap, before",
                zoned("Australia/Lord_Howe", &[Sun], "02:15", "03:00"),
                "2026-10-03T15:29:00Z",
                Outcome::Waiting,
                Some("2026-10-03T15:30:00Z"),
            ),
            (
                "Lord Howe gap, opens at 02:30",
                zoned("Australia/Lord_Howe", &[Sun], "02:15", "03:00"),
                "2026-10-03T15:30:00Z",
                Outcome::Pass,
                None,
            ),
            // 2026-04-05 02:00 -> 01:30 (2026-04-04 15:00Z).
            (
                "Lord Howe fold, start's first occurrence",
                zoned("Australia/Lord_Howe", &[Sun], "01:45", "03:00"),
                "2026-04-04T14:45:00Z",
                Outcome::Pass,
                None,
            ),
            (
                "Lord Howe fold, closed in the second 01:40",
                zoned("Australia/Lord_Howe", &[Sun], "01:00", "01:45"),
                "2026-04-04T15:10:00Z",
                Outcome::Waiting,
                Some("2026-04-11T14:30:00Z"),
            ),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(what, w, now, outcome, retry_at)| {
                let v = check(w, ts(now));
                (v.outcome != *outcome || v.retry_at != retry_at.map(ts))
                    .then(|| format!("{what}: {:?} {:?} ({})", v.outcome, v.retry_at, v.detail))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
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
