//! Rendering diagnostics for people: miette's graphical report with the offending line and a
//! caret. Colour only on a terminal without `NO_COLOR`; width pinned so output is stable.

use miette::{GraphicalReportHandler, GraphicalTheme};
use std::io::IsTerminal;
use waygate_core::diagnostic::{Diagnostic, Source};

/// Renders `diagnostics` of the file `name` with text `text`.
pub fn diagnostics(name: &str, text: &str, diagnostics: &[Diagnostic]) -> String {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let source = Source::new(name, text);
    let mut out = String::new();
    for d in diagnostics {
        let rendered = d.with_source(&source);
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, &rendered);
        out.push('\n');
    }
    out
}
