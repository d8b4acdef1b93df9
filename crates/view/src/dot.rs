//! The workflow as Graphviz DOT (`waygate graph`): terminal states are double circles (green
//! for success, red for failure), the initial state has an arrow from a point, guards label the
//! edges and `on_failure` moves are dashed red edges. Every label is escaped, so any state or
//! guard name renders.

use std::fmt::Write as _;

use waygate_core::duration::format_duration;
use waygate_core::model::{Terminal, Workflow};
use waygate_core::text::escape_control;

use crate::labels::{described, guard_label, wrap};

/// Escapes a DOT double-quoted string.
fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Renders the workflow as Graphviz DOT.
pub fn to_dot(w: &Workflow) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "digraph \"{}\" {{",
        dot_escape(&escape_control(&w.name))
    );
    let _ = writeln!(out, "  rankdir=LR;\n  node [shape=box, style=rounded];");
    // The workflow's name and description as the graph's title.
    let mut title = escape_control(&w.name).into_owned();
    if let Some(d) = &w.description {
        title.push('\n');
        title.push_str(&described(d));
    }
    let _ = writeln!(out, "  labelloc=t;\n  label=\"{}\";", dot_escape(&title));
    let _ = writeln!(out, "  __start [shape=point, label=\"\"];");
    for (id, s) in w.states() {
        let attrs = match s.terminal {
            Some(Terminal::Success) => ", shape=doublecircle, color=darkgreen",
            Some(Terminal::Failure) => ", shape=doublecircle, color=red",
            None => "",
        };
        let mut label = escape_control(&s.name).into_owned();
        if let Some(d) = s.deadline {
            label.push_str(&format!("\ndeadline {}", format_duration(d)));
        }
        // A state's description: a tooltip (SVG) and a second line of its label.
        let described = match &s.description {
            Some(d) => {
                let d = described(d);
                label.push('\n');
                label.push_str(&wrap(&d, 40));
                format!(", tooltip=\"{}\"", dot_escape(&d))
            }
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  n{} [label=\"{}\"{attrs}{described}];",
            id.index(),
            dot_escape(&label)
        );
    }
    let _ = writeln!(out, "  __start -> n{};", w.initial.index());
    for (id, _) in w.states() {
        for t in w.outgoing(id) {
            let label: Vec<String> = t.transition.guards.iter().map(guard_label).collect();
            let _ = writeln!(
                out,
                "  n{} -> n{} [label=\"{}\"];",
                id.index(),
                t.to.index(),
                dot_escape(&label.join("\n"))
            );
        }
        if let Some(f) = w.state(id).on_failure {
            let _ = writeln!(
                out,
                "  n{} -> n{} [label=\"on_failure\", style=dashed, color=red];",
                id.index(),
                f.index()
            );
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(dot_escape("a \"b\" \\ c\nd"), "a \\\"b\\\" \\\\ c\\nd");
    }
}
