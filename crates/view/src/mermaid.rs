//! The workflow as a Mermaid `stateDiagram-v2` (`waygate graph --mermaid`), titled in its
//! front matter, each state's description as a note. Every label is escaped.

use std::fmt::Write as _;

use waygate_core::model::Workflow;
use waygate_core::text::escape_control;

use crate::labels::{described, guard_label};

/// Escapes text for a Mermaid label: entity codes for the characters Mermaid parses.
fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            ':' => out.push_str("#58;"),
            ';' => out.push_str("#59;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// A YAML double-quoted scalar on one line.
fn yaml_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders the workflow as a Mermaid state diagram.
pub fn to_mermaid(w: &Workflow) -> String {
    // The workflow's name and description as the diagram's title (front matter).
    let mut title = escape_control(&w.name).into_owned();
    if let Some(d) = &w.description {
        title.push_str(": ");
        title.push_str(&described(d));
    }
    let mut out = format!("---\ntitle: {}\n---\nstateDiagram-v2\n", yaml_quote(&title));
    for (id, s) in w.states() {
        let _ = writeln!(
            out,
            "    state \"{}\" as s{}",
            mermaid_escape(&escape_control(&s.name)),
            id.index()
        );
        if let Some(d) = &s.description {
            let _ = writeln!(
                out,
                "    note right of s{}: {}",
                id.index(),
                mermaid_escape(&described(d))
            );
        }
    }
    let _ = writeln!(out, "    [*] --> s{}", w.initial.index());
    for (id, s) in w.states() {
        for t in w.outgoing(id) {
            let label: Vec<String> = t.transition.guards.iter().map(guard_label).collect();
            let arrow = format!("    s{} --> s{}", id.index(), t.to.index());
            if label.is_empty() {
                let _ = writeln!(out, "{arrow}");
            } else {
                let _ = writeln!(out, "{arrow}: {}", mermaid_escape(&label.join("\n")));
            }
        }
        if let Some(f) = s.on_failure {
            let _ = writeln!(out, "    s{} --> s{}: on_failure", id.index(), f.index());
        }
        if s.terminal.is_some() {
            let _ = writeln!(out, "    s{} --> [*]", id.index());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(
            mermaid_escape("x: \"y\"; #1"),
            "x#58; #quot;y#quot;#59; #35;1"
        );
        assert_eq!(yaml_quote("a \"b\"\n"), "\"a \\\"b\\\"\\n\"");
    }
}
