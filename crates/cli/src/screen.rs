//! This process's stderr, shared by `drive`'s status line and the live output of commands.
//!
//! On a terminal the progress keeps one status line redrawn in place ("… waiting on …"),
//! while commands print lines at any moment from the tasks reading their pipes. Every write
//! goes through here, under one lock, so a line is never interleaved with another and the
//! status line is cleared before a line is printed and redrawn after it (`docs/cli.md`,
//! "Live output").

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::live;

/// What is on stderr now.
#[derive(Debug)]
struct Screen {
    tty: bool,
    /// The status line drawn last and not yet ended (terminals only).
    status: Option<String>,
}

fn screen() -> MutexGuard<'static, Screen> {
    static SCREEN: OnceLock<Mutex<Screen>> = OnceLock::new();
    SCREEN
        .get_or_init(|| {
            Mutex::new(Screen {
                tty: std::io::stderr().is_terminal(),
                status: None,
            })
        })
        .lock()
        // A panic while printing leaves nothing half-done that matters: keep printing.
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether stderr is a terminal (a status line can be redrawn in place).
pub fn is_tty() -> bool {
    screen().tty
}

/// Prints `text` as a line of its own, after the live output sent so far; an open status line
/// is replaced by it and ends.
pub fn line(text: &str) {
    live::flush();
    let mut s = screen();
    let mut err = std::io::stderr().lock();
    if s.status.take().is_some() {
        let _ = write!(err, "\r\x1b[K");
    }
    let _ = writeln!(err, "{text}");
}

/// Prints `text` as a line above the status line, which stays (redrawn below it). Only the
/// live output thread calls this: it must not wait for [`live::flush`].
pub fn above_status(text: &str) {
    let s = screen();
    let mut err = std::io::stderr().lock();
    match &s.status {
        Some(status) => {
            let _ = write!(err, "\r\x1b[K{text}\n{status}");
        }
        None => {
            let _ = writeln!(err, "{text}");
        }
    }
    let _ = err.flush();
}

/// Draws `text` as the status line, in place of the previous one (terminals only), after the
/// live output sent so far.
pub fn status(text: &str) {
    live::flush();
    let mut s = screen();
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[K{text}");
    let _ = err.flush();
    s.status = Some(text.to_owned());
}

/// Ends an open status line, leaving it on screen, after the live output sent so far.
pub fn end_status() {
    live::flush();
    let mut s = screen();
    if s.status.take().is_some() {
        let _ = writeln!(std::io::stderr());
    }
}
