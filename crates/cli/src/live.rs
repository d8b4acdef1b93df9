//! Live output of commands on stderr: each line the executor hands over, marked with its
//! state and action (or guard) and escaped, printed above `drive`'s status line.
//!
//! The format is documented in `docs/cli.md` ("Live output"):
//! `[deploy] action 1 | text` for stdout, `!` instead of `|` for stderr, `guard NAME` for a
//! guard's command. A long line comes in pieces, each marked `…` where it was cut.
//!
//! The executor sends the lines on a bounded channel; one thread prints them, and [`flush`]
//! lets progress and results wait until what came before them is printed.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;
use waygate_executor::live::{Origin, OutputLine, OutputSender, Stream};

use crate::screen;
use waygate_core::text::escape_control;

/// Lines queued between the commands and the printing thread (at most about 4 KiB each).
const QUEUED_LINES: usize = 256;

/// The printing thread's end of things, shared with [`flush`].
struct Writer {
    sender: OutputSender,
    /// Who waits for the next flush marker to be reached.
    acks: Arc<Mutex<Vec<std_mpsc::Sender<()>>>>,
    /// One flush at a time, so a marker acknowledges only its own flush.
    flushing: Mutex<()>,
}

static WRITER: OnceLock<Option<Writer>> = OnceLock::new();

/// Starts the thread that prints live output on stderr (once per process) and returns the
/// sender the engine's commands write to; `None` if no thread can be started (then commands
/// run without live output).
///
/// Printing happens on its own thread so that a stderr that blocks (a paused terminal) holds
/// up only the commands' output, never the runtime: timeouts and Ctrl-C still work.
pub fn start() -> Option<OutputSender> {
    let writer = WRITER.get_or_init(|| {
        let (sender, mut receiver) = mpsc::channel::<OutputLine>(QUEUED_LINES);
        let acks: Arc<Mutex<Vec<std_mpsc::Sender<()>>>> = Arc::default();
        let thread_acks = acks.clone();
        let spawned = std::thread::Builder::new()
            .name("live-output".into())
            .spawn(move || {
                while let Some(line) = receiver.blocking_recv() {
                    if is_marker(&line) {
                        for ack in lock(&thread_acks).drain(..) {
                            let _ = ack.send(());
                        }
                    } else {
                        screen::above_status(&render(&line));
                    }
                }
            });
        match spawned {
            Ok(_) => Some(Writer {
                sender,
                acks,
                flushing: Mutex::new(()),
            }),
            Err(e) => {
                tracing::warn!("no live output of commands: cannot start its thread: {e}");
                None
            }
        }
    });
    writer.as_ref().map(|w| w.sender.clone())
}

/// Waits until every line sent so far is printed, so that what is printed next (progress,
/// results) comes after the output that led to it. No-op without live output.
pub fn flush() {
    let Some(Some(writer)) = WRITER.get() else {
        return;
    };
    let _one = lock(&writer.flushing);
    let (ack, acked) = std_mpsc::channel();
    lock(&writer.acks).push(ack);
    let mut marker = marker();
    loop {
        match writer.sender.try_send(marker) {
            Ok(()) => break,
            Err(mpsc::error::TrySendError::Full(m)) => {
                // The printing thread is behind; it empties the queue as stderr accepts.
                marker = m;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
    // An error means the printing thread is gone: nothing more will be printed anyway.
    let _ = acked.recv();
}

/// The flush marker: a line of no run, which no command sends.
fn marker() -> OutputLine {
    OutputLine {
        run: String::new(),
        state: String::new(),
        origin: Origin::Action { index: 0 },
        stream: Stream::Stdout,
        text: String::new(),
        cut: false,
        continued: false,
    }
}

fn is_marker(line: &OutputLine) -> bool {
    line.run.is_empty()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing is left half-done under these locks by a panic: carry on.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One output line as printed.
fn render(line: &OutputLine) -> String {
    let source = match &line.origin {
        Origin::Action { index } => format!("action {}", index + 1),
        Origin::Guard { name } => format!("guard {}", escape_control(name)),
    };
    let mark = match line.stream {
        Stream::Stdout => '|',
        Stream::Stderr => '!',
    };
    format!(
        "[{}] {source} {mark} {}{}{}",
        escape_control(&line.state),
        if line.continued { "…" } else { "" },
        escape_control(&line.text),
        if line.cut { "…" } else { "" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(origin: Origin, stream: Stream, text: &str) -> OutputLine {
        OutputLine {
            run: "r1".into(),
            state: "deploy".into(),
            origin,
            stream,
            text: text.into(),
            cut: false,
            continued: false,
        }
    }

    #[test]
    fn lines_are_marked_with_state_source_and_stream() {
        let action = Origin::Action { index: 0 };
        assert_eq!(
            render(&line(action.clone(), Stream::Stdout, "pushed")),
            "[deploy] action 1 | pushed"
        );
        assert_eq!(
            render(&line(action, Stream::Stderr, "warning")),
            "[deploy] action 1 ! warning"
        );
        let guard = Origin::Guard {
            name: "health".into(),
        };
        assert_eq!(
            render(&line(guard, Stream::Stdout, "200")),
            "[deploy] guard health | 200"
        );
    }

    #[test]
    fn escape_sequences_cannot_rewrite_the_screen() {
        let l = line(
            Origin::Action { index: 2 },
            Stream::Stdout,
            "\u{1b}[2Jok\rfake",
        );
        assert_eq!(render(&l), r"[deploy] action 3 | \u{1b}[2Jok\rfake");
    }

    #[test]
    fn pieces_of_a_long_line_are_marked() {
        let mut l = line(Origin::Action { index: 0 }, Stream::Stdout, "middle");
        (l.cut, l.continued) = (true, true);
        assert_eq!(render(&l), "[deploy] action 1 | …middle…");
    }
}
