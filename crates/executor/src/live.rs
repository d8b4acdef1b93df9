//! Live output: what a command prints while it runs, handed over line by line as it comes.
//!
//! Deploy scripts take minutes, and the operator wants to see them work, not only the
//! evidence tail once they end. The executor knows nothing about terminals: the caller gives
//! the engine the sending end of a bounded channel, and every `Command` guard or action then
//! sends each line of its stdout and stderr there, tagged with the run, the state, where it
//! came from (action or guard, [`Origin`]) and the stream. The CLI renders them (`docs/cli.md`,
//! "Live output").
//!
//! A channel rather than a callback, so that a reader that falls behind (a paused terminal,
//! a pipe nobody empties) makes the sending task wait without blocking a runtime thread: the
//! command's timeout and Ctrl-C keep working, and the child, once its pipe is full, waits as
//! it would writing to that terminal itself.
//!
//! Lines are redacted here, by the run's [`GuardContext`], like everything else that leaves
//! the executor, so a sink never sees a secret. Redaction needs whole lines (a secret split
//! across two reads is still one line), and memory must stay bounded whatever the child
//! prints: a line longer than [`MAX_LINE`] bytes is sent in pieces, cut where no secret
//! crosses the cut. Nothing else is kept: the stored evidence remains the bounded tail of
//! [`crate::process`].

use tokio::sync::mpsc;

use crate::context::GuardContext;
use crate::process::Tap;

/// The longest piece of a line sent at once, in bytes; a longer line comes in pieces.
pub const MAX_LINE: usize = 4096;

/// What printed a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The state's `on_enter` action at this index (0-based, as in `ActionStarted`).
    Action {
        /// Index among the state's actions.
        index: u32,
    },
    /// The guard of this name, on a transition out of the state.
    Guard {
        /// The guard's name.
        name: String,
    },
}

/// Which output stream a line was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line (or piece of a long line) a command printed, redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// The run.
    pub run: String,
    /// The state the run was in.
    pub state: String,
    /// The action or guard running the command.
    pub origin: Origin,
    /// The stream it was read from.
    pub stream: Stream,
    /// The text, without its line break, secrets replaced by `***`. Raw otherwise: it may hold
    /// control characters, which a terminal renderer must escape.
    pub text: String,
    /// The line goes on in the next piece (it was longer than [`MAX_LINE`]).
    pub cut: bool,
    /// This piece continues a cut one.
    pub continued: bool,
}

/// Where live output goes: lines from every command of the engine, possibly from several at
/// once (guards run concurrently). A closed receiver drops them.
pub type OutputSender = mpsc::Sender<OutputLine>;

/// Where a context's commands send live output, and the state they run in.
#[derive(Debug, Clone)]
pub struct LiveOutput {
    sender: OutputSender,
    state: String,
}

impl LiveOutput {
    /// Live output of commands run in `state`, sent to `sender`.
    pub fn new(sender: OutputSender, state: impl Into<String>) -> LiveOutput {
        LiveOutput {
            sender,
            state: state.into(),
        }
    }

    /// A splitter for one stream of a command run by `origin`.
    pub(crate) fn lines<'a>(
        &'a self,
        ctx: &'a GuardContext,
        origin: &'a Origin,
        stream: Stream,
    ) -> Lines<'a> {
        Lines {
            live: self,
            ctx: ctx.for_lines(),
            origin,
            stream,
            buf: Vec::new(),
            continued: false,
        }
    }
}

/// Splits one stream into lines, redacts them and sends them to the sink. Holds at most
/// [`MAX_LINE`] bytes plus the longest secret plus one read.
pub(crate) struct Lines<'a> {
    live: &'a LiveOutput,
    /// The run's context, its secrets as they can appear within a line.
    ctx: GuardContext,
    origin: &'a Origin,
    stream: Stream,
    buf: Vec<u8>,
    /// The bytes in `buf` continue a piece already sent.
    continued: bool,
}

impl Tap for Lines<'_> {
    async fn bytes(&mut self, bytes: &[u8]) {
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            let (body, complete) = match piece.strip_suffix(b"\n") {
                Some(body) => (body, true),
                None => (piece, false),
            };
            self.buf.extend_from_slice(body);
            // Pieces of an overlong line, keeping enough bytes back that a secret crossing
            // the cut is seen whole.
            let hold = self.ctx.secrets.first().map_or(0, String::len);
            while self.buf.len() >= MAX_LINE + hold {
                let at = cut_point(&self.buf, &self.ctx.secrets);
                let piece: Vec<u8> = self.buf.drain(..at).collect();
                let text = self.ctx.redact(&String::from_utf8_lossy(&piece));
                self.send(text, true).await;
            }
            if complete {
                let mut line = std::mem::take(&mut self.buf);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let text = self.ctx.redact(&String::from_utf8_lossy(&line));
                self.send(text, false).await;
            }
        }
    }

    async fn end(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        // The stream ended without a line break, maybe while printing a secret.
        let line = std::mem::take(&mut self.buf);
        let text = self.ctx.redact_tail(&line, false);
        self.send(text, false).await;
    }
}

impl Lines<'_> {
    async fn send(&mut self, text: String, cut: bool) {
        let line = OutputLine {
            run: self.ctx.run_id.clone(),
            state: self.live.state.clone(),
            origin: self.origin.clone(),
            stream: self.stream,
            text,
            cut,
            continued: self.continued,
        };
        self.continued = cut;
        // Nobody listening any more (the caller is shutting down): the line is only display.
        let _ = self.live.sender.send(line).await;
    }
}

/// Where to cut `buf` (longer than [`MAX_LINE`] plus the longest secret): at most
/// [`MAX_LINE`] bytes in, on a character boundary, never inside a secret. Never 0.
fn cut_point(buf: &[u8], secrets: &[String]) -> usize {
    let mut at = MAX_LINE;
    // Back to a character start (at most 3 continuation bytes), unless that is no progress.
    let boundary = (at.saturating_sub(3)..=at)
        .rev()
        .find(|&i| i < buf.len() && buf[i] & 0b1100_0000 != 0b1000_0000);
    if let Some(b) = boundary.filter(|&b| b > 0) {
        at = b;
    }
    // Back to the start of any secret crossing the cut, until none does.
    loop {
        let crossing = secrets
            .iter()
            .filter_map(|s| {
                let s = s.as_bytes();
                let first = (at + 1).saturating_sub(s.len());
                (first..at).find(|&i| buf[i..].starts_with(s))
            })
            .min();
        match crossing {
            Some(0) => {
                // A secret longer than a piece starts the line: send it whole (redacted).
                return secrets
                    .iter()
                    .map(String::as_bytes)
                    .filter(|s| buf.starts_with(s))
                    .map(<[u8]>::len)
                    .max()
                    .unwrap_or(MAX_LINE);
            }
            Some(start) => at = start,
            None => return at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::ctx;

    /// Feeds `chunks` to one stdout splitter of an action; returns (text, cut, continued).
    fn split(ctx: &GuardContext, chunks: &[&[u8]]) -> Vec<(String, bool, bool)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (sender, mut receiver) = mpsc::channel(1 << 16);
        let live = LiveOutput::new(sender, "deploy");
        let origin = Origin::Action { index: 0 };
        runtime.block_on(async {
            let mut lines = live.lines(ctx, &origin, Stream::Stdout);
            for chunk in chunks {
                lines.bytes(chunk).await;
            }
            lines.end().await;
        });
        drop(live);
        let mut got = Vec::new();
        while let Some(l) = receiver.blocking_recv() {
            got.push((l.text, l.cut, l.continued));
        }
        got
    }

    fn texts(ctx: &GuardContext, chunks: &[&[u8]]) -> Vec<String> {
        split(ctx, chunks).into_iter().map(|(t, ..)| t).collect()
    }

    #[test]
    fn lines_are_joined_across_reads_and_split_within_one() {
        assert_eq!(
            texts(&ctx(), &[b"one\ntw", b"o\r\nthree\n\n", b"four"]),
            ["one", "two", "three", "", "four"]
        );
    }

    #[test]
    fn a_secret_split_across_two_reads_is_masked() {
        assert_eq!(
            texts(&ctx(), &[b"token=s3cr", b"3t-value ok\n"]),
            ["token=*** ok"]
        );
    }

    #[test]
    fn a_stream_cut_inside_a_secret_hides_its_start() {
        assert_eq!(
            texts(&ctx(), &[b"done\ntoken=s3cr3t"]),
            ["done", "token=***"]
        );
    }

    #[test]
    fn an_endless_line_comes_in_bounded_pieces() {
        let chunk = vec![b'x'; 16 * 1024];
        let chunks: Vec<&[u8]> = std::iter::repeat_n(chunk.as_slice(), 64).collect();
        let pieces = split(&ctx(), &chunks);
        let total: usize = pieces.iter().map(|(t, ..)| t.len()).sum();
        assert_eq!(total, 64 * 16 * 1024);
        assert!(pieces.iter().all(|(t, ..)| t.len() <= MAX_LINE));
        let last = pieces.len() - 1;
        for (i, (_, cut, continued)) in pieces.iter().enumerate() {
            assert_eq!((*cut, *continued), (i != last, i != 0), "piece {i}");
        }
    }

    #[test]
    fn a_secret_on_a_cut_is_never_split() {
        // Put the secret across every possible cut position around MAX_LINE.
        let secret = "s3cr3t-value";
        for offset in 0..secret.len() + 2 {
            let mut line = "y".repeat(MAX_LINE - offset);
            line.push_str(secret);
            line.push_str(&"z".repeat(MAX_LINE));
            line.push('\n');
            let joined: String = texts(&ctx(), &[line.as_bytes()]).concat();
            assert!(!joined.contains("s3cr"), "offset {offset}");
            assert!(!joined.contains("value"), "offset {offset}");
            assert_eq!(joined.matches("***").count(), 1, "offset {offset}");
        }
    }

    #[test]
    fn each_line_of_a_multi_line_secret_is_masked() {
        let key = "-----BEGIN KEY-----\r\nMIIEvQIBADANBgkq\nhkiG9w0BAQEF\n-----END KEY-----\n";
        let vars = std::collections::HashMap::from([("key".to_owned(), key.to_owned())]);
        let c = GuardContext::new(
            "r1",
            "staging",
            "alice",
            vars,
            std::collections::HashSet::from(["key".to_owned()]),
        );
        let out = format!("key is:\n{key}done\n");
        assert_eq!(
            texts(&c, &[out.as_bytes()]),
            ["key is:", "***", "***", "***", "***", "done"]
        );
    }

    #[test]
    fn a_secret_longer_than_a_piece_is_masked_whole() {
        let long = "L".repeat(MAX_LINE * 2);
        let vars = std::collections::HashMap::from([("big".to_owned(), long.clone())]);
        let c = GuardContext::new(
            "r1",
            "staging",
            "alice",
            vars,
            std::collections::HashSet::from(["big".to_owned()]),
        );
        let text = format!("{long}{long}tail\n");
        assert_eq!(texts(&c, &[text.as_bytes()]).concat(), "******tail");
    }

    #[test]
    fn pieces_end_on_character_boundaries() {
        // Three bytes each, so MAX_LINE falls inside a character.
        let line = "€".repeat(MAX_LINE);
        let pieces = texts(&ctx(), &[line.as_bytes()]);
        assert!(pieces.iter().all(|p| !p.contains('\u{fffd}')));
        assert_eq!(pieces.concat(), line);
    }
}
