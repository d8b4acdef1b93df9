//! Live output of commands on stderr: each line the executor hands over, marked with its
//! state and action (or guard) and escaped, printed above `drive`'s status line.
//!
//! The format is documented in `docs/cli.md` ("Live output"):
//! `[deploy] action 1 | text` for stdout, `!` instead of `|` for stderr, `guard NAME` for a
//! guard's command. A long line comes in pieces, each marked `…` where it was cut.

use waygate_executor::live::{Origin, OutputLine, OutputSink, Stream};

use crate::output::escape_control;
use crate::screen;

/// Renders live output to stderr.
#[derive(Debug, Default)]
pub struct Renderer;

impl OutputSink for Renderer {
    fn line(&self, line: &OutputLine) {
        screen::above_status(&render(line));
    }
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
            "\x1b[2Jok\rfake",
        );
        assert_eq!(render(&l), r"[deploy] action 3 | \x1b[2Jok\rfake");
    }

    #[test]
    fn pieces_of_a_long_line_are_marked() {
        let mut l = line(Origin::Action { index: 0 }, Stream::Stdout, "middle");
        (l.cut, l.continued) = (true, true);
        assert_eq!(render(&l), "[deploy] action 1 | …middle…");
    }
}
