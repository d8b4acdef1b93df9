//! Printing results: aligned tables for people, JSON, JSON lines and CSV for scripts.
//!
//! Every piece of stored or user-supplied text that reaches human output goes through
//! [`escape_control`] (tables escape every cell; other human text escapes each value it
//! interpolates), so a name or comment always prints as what it is. JSON and CSV keep the
//! exact text: their encodings quote it.

use std::io::Write;

use serde::Serialize;
use waygate_core::event::{Event, EventKind};
use waygate_core::outcome::{GuardResult, Outcome};
use waygate_core::text::escape_control;

use crate::exit::CliError;

/// Rows with a header, printable as an aligned table or CSV.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as headers).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Columns padded to their widest cell; the last column is not padded. Cells are
    /// escaped: one row is one line.
    pub fn human(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(|c| escape_control(c).into_owned()).collect())
            .collect();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&header).chain(&rows) {
            let last = row.len().saturating_sub(1);
            for (i, cell) in row.iter().enumerate() {
                if i == last {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            out.push('\n');
        }
        out
    }

    /// RFC 4180 CSV with a header row.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_lowercase()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let cells: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

/// Quotes a CSV field when it needs it.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Writes `text` to stdout, after the live output of commands sent so far (on a terminal
/// both show in one place, in order).
pub fn print(text: &str) -> Result<(), CliError> {
    crate::live::flush();
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Writes one line of human text to stdout, escaped: `text` is one line whatever it holds.
pub fn print_line(text: &str) -> Result<(), CliError> {
    print(&format!("{}\n", escape_control(text)))
}

/// Writes `value` as pretty JSON to stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::from)?;
    print(&format!("{text}\n"))
}

/// Writes each item as one JSON line.
pub fn jsonl<T: Serialize>(items: &[T]) -> Result<(), CliError> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item).map_err(std::io::Error::from)?);
        text.push('\n');
    }
    print(&text)
}

/// A guard outcome as a short word.
pub fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Waiting => "waiting",
    }
}

/// One line per guard, names aligned: `    ok   prod-health  200 OK (3 attempts)`, the mark
/// `ok`, `FAIL` or `wait`.
pub fn guard_lines(results: &[GuardResult]) -> String {
    let width = results
        .iter()
        .map(|r| escape_control(&r.name).chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for r in results {
        let mark = match r.outcome {
            Outcome::Pass => "ok  ",
            Outcome::Fail => "FAIL",
            Outcome::Waiting => "wait",
        };
        let attempts = if r.attempts > 1 {
            format!(" ({} attempts)", r.attempts)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "    {mark} {:<width$}  {}{attempts}\n",
            escape_control(&r.name),
            escape_control(&r.detail)
        ));
    }
    out
}

/// "event 3 (why)" or "events 3 to 5 (why)", seqs of the damaged store.
pub fn lost_events(lost: &waygate_core::event::LostEvents) -> String {
    if lost.first == lost.last {
        format!("event {} ({})", lost.first, lost.why)
    } else {
        format!("events {} to {} ({})", lost.first, lost.last, lost.why)
    }
}

/// A one-line summary of an event for people.
pub fn event_summary(e: &Event) -> String {
    match &e.kind {
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
        EventKind::Overridden {
            state,
            to,
            guard,
            reason,
            said,
            ..
        } => format!(
            "OVERRIDDEN `{guard}` of `{state}` -> `{to}` by {}: {reason} (the check said {said})",
            e.actor
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn table_cells_are_escaped_for_people_and_exact_in_csv() {
        let mut t = Table::new(&["WHO", "WHAT"]);
        t.row(vec!["a\nb".into(), "\x1b[2Jx".into()]);
        assert_eq!(t.human(), "WHO   WHAT\na\\nb  \\u{1b}[2Jx\n");
        assert_eq!(t.csv(), "who,what\r\n\"a\nb\",\x1b[2Jx\r\n");
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["A", "LONGER"]);
        t.row(vec!["xyz".into(), "1".into()]);
        assert_eq!(t.human(), "A    LONGER\nxyz  1\n");
        assert_eq!(t.csv(), "a,longer\r\nxyz,1\r\n");
    }
}
