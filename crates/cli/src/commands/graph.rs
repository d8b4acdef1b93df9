//! `waygate graph FILE [--mermaid]`: the state graph for people to look at.
//!
//! DOT by default: terminal states are double circles (green for success, red for failure),
//! the initial state has an arrow from a point, guards label the edges and `on_failure` moves
//! are dashed red edges. Every label is escaped, so any state or guard name renders: names
//! first through [`escape_control`] (a name is shown as one line, without terminal escapes
//! or invisible characters, as everywhere else), then for the output's syntax.

use std::fmt::Write as _;
use std::path::Path;

use waygate_core::duration::format_duration;
use waygate_core::model::{Check, Guard, Terminal, Workflow};
use waygate_core::spec::Weekday;
use waygate_core::text::escape_control;

use crate::exit::{CliError, Exit};
use crate::workflow;

/// Runs the command.
pub fn run(file: &Path, mermaid: bool) -> Result<Exit, CliError> {
    let loaded = workflow::load(file)?;
    let text = if mermaid {
        to_mermaid(&loaded.workflow)
    } else {
        to_dot(&loaded.workflow)
    };
    use std::io::Write;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(Exit::Ok)
}

/// A guard as the graph and `simulate` show it: `name (Kind detail)`.
pub(crate) fn guard_label(g: &Guard) -> String {
    let detail = match &g.check {
        Check::Wait(d) => format!("Wait {}", format_duration(*d)),
        Check::Watch(w) => format!("Watch {}", format_duration(w.duration)),
        Check::Window(w) => format!(
            "Window {} {}-{} {}",
            days_label(&w.days),
            w.start.strftime("%H:%M"),
            w.end.strftime("%H:%M"),
            w.tz_name
        ),
        other => other.kind().to_owned(),
    };
    format!("{} ({detail})", escape_control(&g.name))
}

/// A window's days: `Mon-Fri` for a run of three or more consecutive days, else `Mon,Wed`.
fn days_label(days: &[Weekday]) -> String {
    const ORDER: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let open: Vec<usize> = (0..7).filter(|&i| days.contains(&ORDER[i])).collect();
    let name = |i: usize| format!("{:?}", ORDER[i]);
    if open.len() == 7 {
        return "every day".into();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < open.len() {
        let mut j = i;
        while j + 1 < open.len() && open[j + 1] == open[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            parts.push(format!("{}-{}", name(open[i]), name(open[j])));
        } else {
            parts.extend((i..=j).map(|k| name(open[k])));
        }
        i = j + 1;
    }
    parts.join(",")
}

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

/// A description as shown: its own line breaks kept, every other control or invisible
/// character escaped (descriptions are text from the file, like names).
fn described(text: &str) -> String {
    text.lines()
        .map(|l| escape_control(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` broken into lines of about `width` characters at spaces.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.chars().count() > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.chars().count();
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
    fn window_days_are_named() {
        use Weekday::*;
        assert_eq!(days_label(&[Mon, Tue, Wed, Thu, Fri]), "Mon-Fri");
        assert_eq!(days_label(&[Mon, Wed]), "Mon,Wed");
        assert_eq!(days_label(&[Sat, Mon, Tue, Sun, Wed]), "Mon-Wed,Sat,Sun");
        assert_eq!(
            days_label(&[Mon, Tue, Wed, Thu, Fri, Sat, Sun]),
            "every day"
        );
        assert_eq!(yaml_quote("a \"b\"\n"), "\"a \\\"b\\\"\\n\"");
    }

    #[test]
    fn descriptions_keep_their_lines_and_escape_the_rest() {
        assert_eq!(described("a\nb\u{1b}[2J"), "a\nb\\u{1b}[2J");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(dot_escape("a \"b\" \\ c\nd"), "a \\\"b\\\" \\\\ c\\nd");
        assert_eq!(
            mermaid_escape("x: \"y\"; #1"),
            "x#58; #quot;y#quot;#59; #35;1"
        );
    }
}
