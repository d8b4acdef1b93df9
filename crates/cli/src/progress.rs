//! `drive`'s progress on stderr: a status line redrawn in place on a terminal, plain lines
//! (one per change) otherwise, so CI logs stay readable. Written through [`crate::screen`],
//! which keeps the status line below the live output of commands.

use std::time::Instant;

use waygate_core::outcome::Outcome;
use waygate_core::text::escape_control;
use waygate_executor::engine::{Progress, ProgressSink};

use crate::{output, screen};

/// Renders [`Progress`] to stderr.
#[derive(Debug)]
pub struct Sink {
    tty: bool,
    last_waiting: Option<(Vec<String>, Instant)>,
}

impl Sink {
    /// A sink for this process's stderr.
    pub fn new() -> Sink {
        Sink {
            tty: screen::is_tty(),
            last_waiting: None,
        }
    }

    /// Prints one progress line; the names and details in it are escaped, so it stays one
    /// line.
    fn line(&mut self, text: &str) {
        screen::line(&escape_control(text));
    }

    /// Ends an open status line.
    pub fn finish(&mut self) {
        screen::end_status();
    }
}

impl ProgressSink for Sink {
    fn report(&mut self, progress: &Progress) {
        match progress {
            Progress::Evaluated { state, reports } => {
                for r in reports {
                    for g in r.results.iter().filter(|g| g.outcome == Outcome::Fail) {
                        self.line(&format!(
                            "  {state} -> {}: guard {} failed: {}",
                            r.to, g.name, g.detail
                        ));
                    }
                }
            }
            Progress::Moved { from, to, cause } => {
                self.last_waiting = None;
                let cause = serde_json::to_value(cause)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned));
                self.line(&format!("→ {from} -> {to} ({})", cause.unwrap_or_default()));
            }
            Progress::Waiting {
                state,
                guards,
                until,
                deadline,
            } => {
                let names: Vec<String> = guards.iter().map(|(n, _)| n.clone()).collect();
                let detail: Vec<String> = guards.iter().map(|(n, d)| format!("{n}: {d}")).collect();
                let mut text = format!("… {state}: waiting on {}", detail.join("; "));
                if let Some(t) = until {
                    text.push_str(&format!("; next look in {}", left(*t)));
                }
                if let Some(d) = deadline {
                    text.push_str(&format!(
                        "; deadline in {} ({})",
                        left(*d),
                        output::time(*d)
                    ));
                }
                if self.tty {
                    screen::status(&escape_control(&text));
                    return;
                }
                // Plain output: a line when what is waited on changes, else once a minute.
                let quiet = self.last_waiting.as_ref().is_some_and(|(prev, at)| {
                    *prev == names && at.elapsed() < std::time::Duration::from_secs(60)
                });
                if !quiet {
                    self.line(&text);
                    self.last_waiting = Some((names, Instant::now()));
                }
            }
        }
    }
}

/// Time from now until `t`, as authors write durations (`4m30s`), `0s` if past.
fn left(t: jiff::Timestamp) -> String {
    use waygate_executor::Clock as _;
    let now = crate::app::process_clock().now();
    let d = std::time::Duration::try_from(t.duration_since(now)).unwrap_or_default();
    waygate_core::duration::format_duration(std::time::Duration::from_secs(d.as_secs()))
}
