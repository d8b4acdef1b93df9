//! Events as text for people: one line per event (`history`, `audit`, the audit report), a
//! guard outcome as a word, the time format people read and the one they write (`--since`,
//! a page's filter), and events as CSV. Plain text, not escaped: each renderer escapes for its
//! medium (`text::escape_control` for a terminal, XML escaping for a page; `text::csv_field`).

use crate::event::{Event, EventKind};
use crate::outcome::Outcome;

/// A guard outcome as a short word.
pub fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Waiting => "waiting",
    }
}

/// "event 3 (why)" or "events 3 to 5 (why)", seqs of the damaged store.
pub fn lost_events(lost: &crate::event::LostEvents) -> String {
    if lost.first == lost.last {
        format!("event {} ({})", lost.first, lost.why)
    } else {
        format!("events {} to {} ({})", lost.first, lost.last, lost.why)
    }
}

/// A one-line summary of an event for people.
pub fn event_summary(e: &Event) -> String {
    match &e.kind {
        EventKind::Overridden { .. } => e.kind.as_override().map_or_else(String::new, |o| {
            format!(
                "OVERRIDDEN `{}` of `{}` -> `{}` by {}: {} (the check said {})",
                o.guard, o.state, o.to, e.actor, o.reason, o.said
            )
        }),
        EventKind::RunStarted {
            workflow,
            env,
            state,
            file,
            definition_hash,
            ..
        } => format!(
            "started {workflow} in {env} at `{state}` ({file}, sha256 {})",
            &definition_hash[..definition_hash.len().min(12)]
        ),
        EventKind::GuardsEvaluated {
            state,
            to,
            passed,
            guards,
        } => {
            let list: Vec<String> = guards
                .iter()
                .map(|g| {
                    format!(
                        "{} {}{}",
                        g.name,
                        outcome_word(g.outcome),
                        published(&g.outputs)
                    )
                })
                .collect();
            let verdict = if *passed { "passed" } else { "not passed" };
            if list.is_empty() {
                format!("`{state}` -> `{to}` {verdict} (no guards)")
            } else {
                format!("`{state}` -> `{to}` {verdict}: {}", list.join(", "))
            }
        }
        EventKind::Approved {
            guard,
            comment,
            accepted: true,
            ..
        } => match comment {
            Some(c) => format!("approved `{guard}`: {c}"),
            None => format!("approved `{guard}`"),
        },
        EventKind::ApprovalWithdrawn { guard, comment, .. } => match comment {
            Some(c) => format!("withdrew the approval of `{guard}`: {c}"),
            None => format!("withdrew the approval of `{guard}`"),
        },
        EventKind::Approved { guard, reason, .. } => {
            format!(
                "REFUSED approval of `{guard}`: {}",
                reason.as_deref().unwrap_or("not allowed")
            )
        }
        EventKind::Notified {
            hook,
            on,
            ok,
            detail,
            ..
        } => format!(
            "notification {} ({on}) {}: {detail}",
            hook + 1,
            if *ok { "sent" } else { "FAILED" }
        ),
        EventKind::Transitioned {
            from,
            to,
            cause,
            reason,
        } => {
            let cause = cause.as_str();
            match reason {
                Some(r) => format!("`{from}` -> `{to}` ({cause}: {r})"),
                None => format!("`{from}` -> `{to}` ({cause})"),
            }
        }
        EventKind::ActionStarted {
            state,
            index,
            action,
        } => {
            format!("action {} of `{state}` started: {action}", index + 1)
        }
        EventKind::ActionFinished {
            state,
            index,
            ok,
            detail,
            duration_ms,
            outputs,
            ..
        } => format!(
            "action {} of `{state}` {}: {detail} ({duration_ms} ms){}",
            index + 1,
            if *ok { "ok" } else { "FAILED" },
            published(outputs)
        ),
        EventKind::ActionInterrupted {
            state,
            index,
            signal,
        } => format!(
            "action {} of `{state}` interrupted by {signal} (an operator's stop, not a failure; \
             it runs again on resume)",
            index + 1
        ),
        EventKind::RollbackRequested { from, to, reason } => {
            format!("rollback requested from `{from}` to `{to}`: {reason}")
        }
        EventKind::Aborted { state, reason } => format!("aborted in `{state}`: {reason}"),
        EventKind::RunEnded { state, status } => format!("ended in `{state}`: {}", status.as_str()),
        EventKind::StoreSalvaged {
            from,
            carried,
            lost,
        } => {
            let lost: Vec<String> = lost.iter().map(lost_events).collect();
            format!(
                "store salvaged from {from}: {carried} events carried; lost: {}",
                if lost.is_empty() {
                    "nothing".to_owned()
                } else {
                    lost.join("; ")
                }
            )
        }
    }
}

/// ` (published k=v, ..)` for values a step published, or nothing.
fn published(outputs: &std::collections::BTreeMap<String, String>) -> String {
    if outputs.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = outputs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(" (published {})", pairs.join(", "))
}

/// Human time: `2026-11-26 16:45:01Z`.
pub fn time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// What a time as people write it may be: said wherever one is refused.
pub const TIME_SYNTAX: &str = "expected an RFC 3339 time such as 2026-11-26T09:00:00Z (or with \
                               an offset, 2026-11-26T10:00:00+01:00), or a date such as \
                               2026-11-26 (midnight UTC)";

/// A time as people write it (`--since`, `--until`, a page's filter) that is none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: {}", self.why())]
pub struct BadTime {
    /// What was written.
    pub text: String,
    /// What is wrong with it.
    pub reason: BadTimeReason,
}

/// What is wrong with a [`BadTime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadTimeReason {
    /// Neither an RFC 3339 time nor a date.
    Syntax,
    /// A date and time without an offset: it names no instant.
    NoOffset,
    /// An offset beyond ±23:59, the most RFC 3339 allows (jiff reads up to ±25:59).
    OffsetTooLarge,
}

impl BadTime {
    /// Why it is none, without the text itself (for a caller that shows it already).
    pub fn why(&self) -> &'static str {
        match self.reason {
            BadTimeReason::NoOffset => {
                "this date and time has no UTC offset, so it names no instant: add one, as in \
                 2026-11-26T09:00:00Z or 2026-11-26T10:00:00+01:00"
            }
            BadTimeReason::OffsetTooLarge => {
                "this UTC offset is beyond ±23:59, the largest RFC 3339 allows: write the \
                 offset of a real place, as in 2026-11-26T10:00:00+01:00, or the time in UTC \
                 with Z"
            }
            BadTimeReason::Syntax => TIME_SYNTAX,
        }
    }
}

/// The largest UTC offset RFC 3339 allows (`time-numoffset`: hours 00-23, minutes 00-59), in
/// seconds.
const MAX_OFFSET_SECONDS: i32 = 23 * 3600 + 59 * 60;

/// A time as people write it: an RFC 3339 time, or a date (midnight UTC); blanks around
/// ignored. Nothing relative (`yesterday`, `2h`): an audit scope must mean the same whenever
/// it is asked. A date and time without an offset names no instant and is refused: it is not
/// the midnight of its date (jiff reads a date off the front of any date and time), which
/// would widen or cut the scope by up to a day. An offset beyond ±23:59 is refused too: RFC
/// 3339 has none, and jiff's wider range (±25:59) reads as a typo's instant.
pub fn parse_time(text: &str) -> Result<jiff::Timestamp, BadTime> {
    let trimmed = text.trim();
    let bad = |reason| BadTime {
        text: text.to_owned(),
        reason,
    };
    if let Ok(t) = trimmed.parse::<jiff::Timestamp>() {
        if offset_beyond_rfc3339(trimmed) {
            return Err(bad(BadTimeReason::OffsetTooLarge));
        }
        return Ok(t);
    }
    // The date alone: no time after it (`T`, or a blank, then hours).
    if !trimmed.contains(['T', 't', ' ', ':']) {
        if let Ok(d) = trimmed.parse::<jiff::civil::Date>() {
            if let Ok(z) = d.to_zoned_datetime(jiff::tz::TimeZone::UTC) {
                return Ok(z.timestamp());
            }
        }
    }
    Err(bad(if trimmed.parse::<jiff::civil::DateTime>().is_ok() {
        BadTimeReason::NoOffset
    } else {
        BadTimeReason::Syntax
    }))
}

/// Whether `text`, a time jiff reads, has a numeric UTC offset beyond ±23:59.
fn offset_beyond_rfc3339(text: &str) -> bool {
    use jiff::fmt::temporal::{Pieces, PiecesOffset};
    matches!(
        Pieces::parse(text).ok().and_then(|p| p.offset()),
        Some(PiecesOffset::Numeric(n)) if n.offset().seconds().abs() > MAX_OFFSET_SECONDS
    )
}

/// The columns of events as CSV (`audit --format csv`, `history --format csv`, the API's
/// `/v1/audit?format=csv`).
pub const EVENT_CSV_COLUMNS: [&str; 8] = [
    "seq",
    "run_id",
    "at",
    "actor",
    "kind",
    "summary",
    "prev_hash",
    "hash",
];

/// Events as RFC 4180 CSV with a header row ([`EVENT_CSV_COLUMNS`]), for spreadsheets: the
/// text quoted where needed, a cell that would start a formula led by `'`
/// ([`crate::text::csv_field`]).
pub fn events_csv(events: &[Event]) -> String {
    let mut out = crate::text::csv_row(EVENT_CSV_COLUMNS.iter().copied());
    for e in events {
        out.push_str(&crate::text::csv_row(
            [
                e.seq.to_string(),
                e.run_id.to_string(),
                e.at.to_string(),
                e.actor.clone(),
                e.kind.name().to_owned(),
                event_summary(e),
                e.prev_hash.clone(),
                e.hash.clone(),
            ]
            .iter()
            .map(String::as_str),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_beyond_rfc3339_is_refused_and_the_largest_allowed_reads() {
        let read = |text: &str| {
            parse_time(text)
                .map(|t| t.to_string())
                .map_err(|e| e.reason)
        };
        for bad in [
            "2026-11-29T10:00:00+25:00",
            "2026-11-29T10:00:00-25:59",
            "2026-11-29T10:00:00+24:00",
            "2026-11-29T10:00:00+23:59:01",
        ] {
            assert_eq!(read(bad), Err(BadTimeReason::OffsetTooLarge), "{bad}");
            let e = parse_time(bad).expect_err(bad);
            assert!(e.why().contains("beyond ±23:59"), "{bad}: {e}");
        }
        let edge = read("2026-11-29T10:00:00+23:59");
        assert_eq!(edge.as_deref(), Ok("2026-11-28T10:01:00Z"));
        let edge = read(" 2026-11-29T10:00:00-23:59 ");
        assert_eq!(edge.as_deref(), Ok("2026-11-30T09:59:00Z"));
        let utc = read("2026-11-29T10:00:00Z");
        assert_eq!(utc.as_deref(), Ok("2026-11-29T10:00:00Z"));
        // The other refusals keep their reasons.
        assert_eq!(read("2026-11-29T10:00:00"), Err(BadTimeReason::NoOffset));
        assert_eq!(read("yesterday"), Err(BadTimeReason::Syntax));
    }
}
