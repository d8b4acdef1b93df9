//! Printing results: aligned tables for people, JSON and JSON lines for scripts, CSV for
//! spreadsheets.
//!
//! Every piece of stored or user-supplied text that reaches human output goes through
//! [`escape_control`] (tables escape every cell; other human text escapes each value it
//! interpolates), so a name or comment always prints as what it is. JSON keeps the exact
//! text; CSV keeps it too, quoted, except the leading `'` before a cell that would start a
//! spreadsheet formula (`waygate_core::text::csv_field`).

use std::io::Write;

use serde::Serialize;
use waygate_core::outcome::{GuardResult, Outcome};
pub use waygate_core::summary::{event_summary, lost_events, time};
use waygate_core::text::{csv_row, escape_control};

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

    /// RFC 4180 CSV with a header row, cells safe in a spreadsheet
    /// (`waygate_core::text::csv_row`).
    pub fn csv(&self) -> String {
        let header: Vec<String> = self.headers.iter().map(|h| h.to_lowercase()).collect();
        std::iter::once(&header)
            .chain(&self.rows)
            .map(|row| csv_row(row.iter().map(String::as_str)))
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_cells_are_escaped_for_people_and_exact_in_csv() {
        let mut t = Table::new(&["WHO", "WHAT"]);
        t.row(vec!["a\nb".into(), "\x1b[2Jx".into()]);
        assert_eq!(t.human(), "WHO   WHAT\na\\nb  \\u{1b}[2Jx\n");
        assert_eq!(t.csv(), "who,what\r\n\"a\nb\",\x1b[2Jx\r\n");
    }

    #[test]
    fn table_csv_cells_start_no_spreadsheet_formula() {
        let mut t = Table::new(&["STATE", "ENV"]);
        t.row(vec!["=1+1".into(), "@x;y".into()]);
        assert_eq!(t.human(), "STATE  ENV\n=1+1   @x;y\n");
        assert_eq!(t.csv(), "state,env\r\n'=1+1,\"'@x;y\"\r\n");
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["A", "LONGER"]);
        t.row(vec!["xyz".into(), "1".into()]);
        assert_eq!(t.human(), "A    LONGER\nxyz  1\n");
        assert_eq!(t.csv(), "a,longer\r\nxyz,1\r\n");
    }
}
