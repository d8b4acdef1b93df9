//! Rendering diagnostics for people: miette's graphical report with the offending line and a
//! caret. Colour only on a terminal without `NO_COLOR`; width pinned so output is stable.
//! The file's text and the names in messages are untrusted: control and invisible characters
//! never reach the terminal (see [`waygate_core::text`]).

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme};
use waygate_core::diagnostic::{Diagnostic, Source};
use waygate_core::text::{escape_control, is_unsafe_char};

/// Renders `diagnostics` of the file `name` with text `text`.
pub fn render(name: &str, text: &str, diagnostics: &[Diagnostic]) -> String {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let source = Source::new(&escape_control(name), &displayable_source(text));
    let mut out = String::new();
    for d in diagnostics {
        let mut d = d.clone();
        d.message = escape_control(&d.message).into_owned();
        d.label = escape_control(&d.label).into_owned();
        d.help = d.help.map(|h| escape_control(&h).into_owned());
        for (_, label) in &mut d.related {
            *label = escape_control(label).into_owned();
        }
        let rendered = d.with_source(&source);
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, &rendered);
        out.push('\n');
    }
    out
}

/// The file's text for display: line breaks and tabs stay, every other unsafe character
/// becomes a visible stand-in of the same UTF-8 length, so the diagnostics' byte spans still
/// point at the right text.
fn displayable_source(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\n' | '\r' | '\t') || !is_unsafe_char(c) {
            out.push(c);
            continue;
        }
        match c.len_utf8() {
            2 => out.push('¿'),
            3 => out.push('\u{fffd}'),
            n => out.extend(std::iter::repeat_n('?', n)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displayable_source_keeps_lengths_and_lines() {
        let text = "a\x1b[2J\u{9b}\u{202e}\u{e0041}\r\n\tb";
        let shown = displayable_source(text);
        assert_eq!(shown.len(), text.len());
        assert_eq!(shown, "a?[2J¿\u{fffd}????\r\n\tb");
    }
}
