//! `drive`'s progress on stderr: a status line redrawn in place on a terminal, plain lines
//! otherwise, so CI logs stay readable: one when what is waited on changes, and at least once
//! a minute while it does not, so an hour's watch shows it is alive ([`Pacer`]). Written
//! through [`crate::screen`], which keeps the status line below the live output of commands.

use std::time::{Duration, Instant};

use waygate_core::outcome::Outcome;
use waygate_core::text::escape_control;
use waygate_executor::engine::{Progress, ProgressSink};

use crate::{output, screen};

/// Renders [`Progress`] to stderr.
#[derive(Debug)]
pub struct Sink {
    tty: bool,
    pacer: Pacer,
    /// The state the last move told as it was made ([`Progress::Entered`]) went to: the move
    /// reported once the step is over is already on the screen then.
    entered: Option<String>,
    /// The state whose entry, begun by another process, this sink said it finishes: said once
    /// for all of its actions.
    finishing: Option<String>,
}

/// When plain (non-terminal) output prints a waiting line: whenever the guards waited on
/// change, else once `every` has passed since the last line. Never more, so a CI log gets a
/// line a minute, not one per poll.
#[derive(Debug)]
struct Pacer {
    every: Duration,
    last: Option<(Vec<String>, Instant)>,
}

impl Pacer {
    fn new(every: Duration) -> Pacer {
        Pacer { every, last: None }
    }

    /// Whether a line waiting on `names` is due at `now`; if so, it counts as printed.
    fn due(&mut self, names: &[String], now: Instant) -> bool {
        let quiet = self.last.as_ref().is_some_and(|(prev, at)| {
            prev.as_slice() == names && now.saturating_duration_since(*at) < self.every
        });
        if !quiet {
            self.last = Some((names.to_vec(), now));
        }
        !quiet
    }

    /// Something else was printed (a move): the next waiting line is due at once.
    fn reset(&mut self) {
        self.last = None;
    }
}

impl Sink {
    /// A sink for this process's stderr.
    pub fn new() -> Sink {
        Sink {
            tty: screen::is_tty(),
            pacer: Pacer::new(Duration::from_secs(60)),
            entered: None,
            finishing: None,
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
            // Each move as it is made, before what the new state's actions print.
            Progress::Entered { from, to, cause } => {
                self.pacer.reset();
                self.entered = Some(to.clone());
                self.finishing = None;
                self.line(&format!("→ {from} -> {to} ({})", cause.as_str()));
            }
            Progress::Action {
                state,
                action,
                again,
                at_start,
            } => match again {
                Some(why) => {
                    self.pacer.reset();
                    self.line(&format!(
                        "↻ action {} of `{state}` runs again: {} (actions run at least once)",
                        action + 1,
                        why.why()
                    ));
                }
                // A move this sink did not tell: made by a process that stopped before the
                // state's actions were done. (The initial state was entered by the run's
                // start, not by a move: its actions run at the first drive as a matter of
                // course.)
                None if !at_start
                    && self.entered.as_deref() != Some(state.as_str())
                    && self.finishing.as_deref() != Some(state.as_str()) =>
                {
                    self.pacer.reset();
                    self.finishing = Some(state.clone());
                    self.line(&format!(
                        "↻ `{state}` was entered but its actions had not finished: action {} \
                         runs now",
                        action + 1
                    ));
                }
                None => {}
            },
            // Told already as it was made, unless another process made it.
            Progress::Moved { from, to, cause } => {
                self.finishing = None;
                if self.entered.take().as_ref() != Some(to) {
                    self.pacer.reset();
                    self.line(&format!("→ {from} -> {to} ({})", cause.as_str()));
                }
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
                if self.pacer.due(&names, Instant::now()) {
                    self.line(&text);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_waiting_lines_come_on_change_and_once_a_minute_not_per_poll() {
        let mut pacer = Pacer::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let watch = vec!["healthy".to_owned()];
        let at = |s: u64| t0 + Duration::from_secs(s);
        // An hour's watch, looked at every poll (2 s): a line at once, then one a minute.
        let printed: Vec<u64> = (0..3600)
            .step_by(2)
            .filter(|&s| pacer.due(&watch, at(s)))
            .collect();
        assert_eq!(printed.len(), 60, "{printed:?}");
        assert_eq!(&printed[..3], &[0, 60, 120]);
        // What is waited on changed: a line at once.
        let approval = vec!["sign-off".to_owned()];
        assert!(pacer.due(&approval, at(3601)));
        assert!(!pacer.due(&approval, at(3602)));
        // After a move, the first waiting line is printed at once.
        pacer.reset();
        assert!(pacer.due(&approval, at(3603)));
    }
}
