//! The workflow graph as SVG (`waygate graph --format svg`, and every run's picture in the
//! audit report): states as boxes top to bottom ([`crate::layout`]), guards on the edges,
//! `on_failure` moves dashed. Given a run's [`Trail`], the states it visited, the moves it made
//! and where it is now are marked, each in words on the picture (`current state`, `visited`,
//! `taken`) as well as by line and colour, so nothing is said by colour alone.
//!
//! The picture has no element ids, no script and no external reference, so any number of them
//! can sit in one page; every name is escaped ([`crate::xml`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use waygate_core::duration::format_duration;
use waygate_core::event::{Cause, Event, EventKind};
use waygate_core::model::{Terminal, Workflow};

use crate::labels::{described, guard_label};
use crate::layout::{layout, EdgeSpec, Point, Size, TOP};
use crate::xml;

/// What a run did on its workflow's graph, read off its events: where it is (or ended), which
/// states it entered and which moves it made, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trail {
    /// The state the run is in, or ended in.
    pub current: Option<String>,
    /// Whether the run has ended (then `current` is where it ended).
    pub ended: bool,
    /// Every state the run entered, with how many times.
    pub visited: BTreeMap<String, usize>,
    /// Every move, in order: from, to, and why.
    pub moves: Vec<(String, String, Cause)>,
}

impl Trail {
    /// The trail of a run from all its events, oldest first.
    pub fn of_events(events: &[Event]) -> Trail {
        let mut trail = Trail::default();
        for e in events {
            match &e.kind {
                EventKind::RunStarted { state, .. } => {
                    *trail.visited.entry(state.clone()).or_default() += 1;
                    trail.current = Some(state.clone());
                }
                EventKind::Transitioned {
                    from, to, cause, ..
                } => {
                    *trail.visited.entry(to.clone()).or_default() += 1;
                    trail.moves.push((from.clone(), to.clone(), *cause));
                    trail.current = Some(to.clone());
                }
                EventKind::RunEnded { state, .. } | EventKind::Aborted { state, .. } => {
                    trail.current = Some(state.clone());
                    trail.ended = true;
                }
                _ => {}
            }
        }
        trail
    }

    /// The states in the order the run entered them: `a → b → c`.
    pub fn path(&self) -> Vec<&str> {
        let mut path: Vec<&str> = Vec::new();
        if let Some((from, _, _)) = self.moves.first() {
            path.push(from);
        } else if let Some(c) = &self.current {
            path.push(c);
        }
        path.extend(self.moves.iter().map(|(_, to, _)| to.as_str()));
        path
    }
}

/// How the picture is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embed {
    /// A file of its own: an XML declaration and the SVG namespace.
    Standalone,
    /// Inside an HTML page, where the HTML parser supplies the namespace.
    Inline,
}

/// Font size of every label, in px.
const FONT: f64 = 13.0;
/// Line height, in px.
const LINE: f64 = 17.0;
/// Padding inside a state's box.
const PAD: f64 = 10.0;

/// The estimated width of a line of text: a sans-serif character is about 0.6 em on average,
/// a wide (East Asian, emoji) one about 1 em. Estimates only need to leave room enough.
fn text_width(line: &str, bold: bool) -> f64 {
    let em = line
        .chars()
        .map(|c| if (c as u32) >= 0x1100 { 1.0 } else { 0.6 })
        .sum::<f64>();
    em * FONT * if bold { 1.08 } else { 1.0 }
}

fn block_size(lines: &[String], bold_first: bool) -> Size {
    let w = lines
        .iter()
        .enumerate()
        .map(|(i, l)| text_width(l, bold_first && i == 0))
        .fold(0.0, f64::max);
    Size {
        w,
        h: lines.len() as f64 * LINE,
    }
}

/// An edge as drawn.
struct Edge {
    from: usize,
    to: usize,
    lines: Vec<String>,
    /// An `on_failure` move, or a move the graph has no edge for (a rollback).
    dashed: bool,
    failure: bool,
    taken: usize,
}

/// The workflow's graph as SVG, with `trail` marked on it when given.
pub fn graph_svg(w: &Workflow, trail: Option<&Trail>, embed: Embed) -> String {
    let states: Vec<(usize, &waygate_core::model::State)> =
        w.states().map(|(id, s)| (id.index(), s)).collect();
    let index_of = |name: &str| w.state_id(name).map(|id| id.index());

    // Moves taken, counted per (from, to, failure or not).
    let mut taken: BTreeMap<(usize, usize, bool), usize> = BTreeMap::new();
    if let Some(t) = trail {
        for (from, to, cause) in &t.moves {
            if let (Some(a), Some(b)) = (index_of(from), index_of(to)) {
                *taken
                    .entry((a, b, cause.is_failure() || *cause == Cause::Rollback))
                    .or_default() += 1;
            }
        }
    }
    let mut edges: Vec<Edge> = Vec::new();
    let mut drawn: BTreeSet<(usize, usize, bool)> = BTreeSet::new();
    for (id, s) in w.states() {
        let a = id.index();
        for t in w.outgoing(id) {
            let b = t.to.index();
            drawn.insert((a, b, false));
            edges.push(Edge {
                from: a,
                to: b,
                lines: t.transition.guards.iter().map(guard_label).collect(),
                dashed: false,
                failure: false,
                taken: taken.get(&(a, b, false)).copied().unwrap_or(0),
            });
        }
        if let Some(f) = s.on_failure {
            let b = f.index();
            drawn.insert((a, b, true));
            edges.push(Edge {
                from: a,
                to: b,
                lines: vec!["on_failure".into()],
                dashed: true,
                failure: true,
                taken: taken.get(&(a, b, true)).copied().unwrap_or(0),
            });
        }
    }
    // Moves the graph draws no edge for: a rollback (or a failure falling back to the
    // rollback state) from wherever the run was, shown where they happened.
    for (&(a, b, failure), &count) in &taken {
        if !drawn.contains(&(a, b, failure)) {
            edges.push(Edge {
                from: a,
                to: b,
                lines: vec![if failure { "rollback" } else { "move" }.into()],
                dashed: true,
                failure,
                taken: count,
            });
        }
    }
    for e in &mut edges {
        match e.taken {
            0 => {}
            1 => e.lines.insert(0, "taken".into()),
            n => e.lines.insert(0, format!("taken ×{n}")),
        }
    }

    // Each state's lines: its name, then its deadline, its end, and what the run did there.
    let node_lines: Vec<Vec<String>> = states
        .iter()
        .map(|(_, s)| {
            let mut lines = vec![waygate_core::text::escape_control(&s.name).into_owned()];
            if let Some(d) = s.deadline {
                lines.push(format!("deadline {}", format_duration(d)));
            }
            match s.terminal {
                Some(Terminal::Success) => lines.push("end: success".into()),
                Some(Terminal::Failure) => lines.push("end: failure".into()),
                None => {}
            }
            if let Some(t) = trail {
                let here = t.current.as_deref() == Some(s.name.as_str());
                match (here, t.ended, t.visited.get(&s.name)) {
                    (true, false, _) => lines.push("▶ current state".into()),
                    (true, true, _) => lines.push("■ ended here".into()),
                    (false, _, Some(1)) => lines.push("✓ visited".into()),
                    (false, _, Some(n)) => lines.push(format!("✓ visited ×{n}")),
                    (false, _, None) => {}
                }
            }
            lines
        })
        .collect();

    let sizes: Vec<Size> = node_lines
        .iter()
        .map(|l| {
            let b = block_size(l, true);
            Size {
                w: (b.w + 2.0 * PAD).max(60.0),
                h: b.h + 2.0 * PAD,
            }
        })
        .collect();
    let specs: Vec<EdgeSpec> = edges
        .iter()
        .map(|e| EdgeSpec {
            from: e.from,
            to: e.to,
            label: block_size(&e.lines, false),
        })
        .collect();
    let placed = layout(&sizes, &specs, w.initial.index());

    let mut out = String::new();
    let path = trail.map(|t| t.path().join(" → ")).unwrap_or_default();
    let mut name = format!("The graph of workflow {}", w.name);
    if !path.is_empty() {
        name.push_str(&format!("; the path taken: {path}"));
    }
    if embed == Embed::Standalone {
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    }
    let _ = writeln!(
        out,
        "<svg{} class=\"wg-graph\" role=\"img\" aria-label=\"{}\" width=\"{w:.0}\" height=\"{h:.0}\" \
         viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"sans-serif\" font-size=\"{FONT}\">",
        if embed == Embed::Standalone {
            " xmlns=\"http://www.w3.org/2000/svg\""
        } else {
            ""
        },
        xml::text(&name),
        w = placed.width.ceil(),
        h = placed.height.ceil(),
    );
    let _ = writeln!(out, "<title>{}</title>", xml::text(&name));
    if let Some(d) = &w.description {
        let _ = writeln!(out, "<desc>{}</desc>", xml::lines(&described(d)));
    }
    out.push_str(STYLE);

    // The initial state's marker: a dot above it, an arrow into it.
    let first = placed.nodes[w.initial.index()];
    let cx = first.x + first.w / 2.0;
    let _ = writeln!(
        out,
        "<circle class=\"wg-start\" cx=\"{cx:.1}\" cy=\"{:.1}\" r=\"5\"/>",
        first.y - TOP + 8.0
    );
    arrow(
        &mut out,
        &[(cx, first.y - TOP + 13.0), (cx, first.y)],
        "wg-edge",
    );

    for (e, route) in edges.iter().zip(&placed.edges) {
        let mut class = String::from("wg-edge");
        if e.dashed {
            class.push_str(" wg-dashed");
        }
        if e.failure {
            class.push_str(" wg-failure");
        }
        if e.taken > 0 {
            class.push_str(" wg-taken");
        }
        out.push_str("<g>");
        arrow(&mut out, &route.points, &class);
        text_block(
            &mut out,
            route.label_at.0,
            route.label_at.1,
            &e.lines,
            "wg-label",
            false,
            e.taken > 0,
        );
        out.push_str("</g>\n");
    }

    for ((i, s), lines) in states.iter().zip(&node_lines) {
        let r = placed.nodes[*i];
        let mut class = String::from("wg-state");
        match s.terminal {
            Some(Terminal::Success) => class.push_str(" wg-success"),
            Some(Terminal::Failure) => class.push_str(" wg-fail"),
            None => {}
        }
        if let Some(t) = trail {
            if t.current.as_deref() == Some(s.name.as_str()) {
                class.push_str(" wg-current");
            } else if t.visited.contains_key(&s.name) {
                class.push_str(" wg-visited");
            }
        }
        let _ = write!(out, "<g class=\"{class}\">");
        if let Some(d) = &s.description {
            let _ = write!(out, "<title>{}</title>", xml::lines(&described(d)));
        }
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"8\"/>",
            r.x, r.y, r.w, r.h
        );
        if s.terminal.is_some() {
            let _ = write!(
                out,
                "<rect class=\"wg-inner\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"6\"/>",
                r.x + 3.0,
                r.y + 3.0,
                r.w - 6.0,
                r.h - 6.0
            );
        }
        text_block(
            &mut out,
            r.x + r.w / 2.0,
            r.y + PAD,
            lines,
            "wg-name",
            true,
            false,
        );
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

/// The picture's styles: lines and fills, and what marks a run's trail (thicker lines and
/// borders besides the colour; the words on the picture say the same).
const STYLE: &str = "<style>\
.wg-graph .wg-edge{fill:none;stroke:#444;stroke-width:1.3}\
.wg-graph .wg-head{fill:#444;stroke:none}\
.wg-graph .wg-dashed{stroke-dasharray:6 4}\
.wg-graph .wg-failure{stroke:#b00020}.wg-graph .wg-failure.wg-head{fill:#b00020}\
.wg-graph .wg-taken{stroke:#0b57d0;stroke-width:3.2}.wg-graph .wg-taken.wg-head{fill:#0b57d0;stroke:none}\
.wg-graph .wg-label{fill:#333}.wg-graph .wg-label-taken{fill:#0b57d0;font-weight:bold}\
.wg-graph .wg-state rect{fill:#fff;stroke:#444;stroke-width:1.3}\
.wg-graph .wg-state .wg-inner{fill:none}\
.wg-graph .wg-success rect{stroke:#1e7b34}.wg-graph .wg-fail rect{stroke:#b00020}\
.wg-graph .wg-visited rect{fill:#e8f0fe;stroke-width:2.4}\
.wg-graph .wg-current rect{fill:#fff4c2;stroke:#000;stroke-width:3.5}\
.wg-graph .wg-current .wg-inner{stroke-width:1.3}\
.wg-graph .wg-name{fill:#111}\
.wg-graph .wg-start{fill:#444}\
</style>\n";

/// A polyline with an arrow head at its last point.
fn arrow(out: &mut String, points: &[Point], class: &str) {
    if points.len() < 2 {
        return;
    }
    let d: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, (x, y))| format!("{}{x:.1} {y:.1}", if i == 0 { "M" } else { "L" }))
        .collect();
    let _ = write!(out, "<path class=\"{class}\" d=\"{}\"/>", d.join(" "));
    let (x1, y1) = points[points.len() - 2];
    let (x2, y2) = points[points.len() - 1];
    let len = ((x2 - x1).powi(2) + (y2 - y1).powi(2)).sqrt().max(0.001);
    let (ux, uy) = ((x2 - x1) / len, (y2 - y1) / len);
    let size = if class.contains("wg-taken") {
        11.0
    } else {
        8.0
    };
    let (bx, by) = (x2 - ux * size, y2 - uy * size);
    let (px, py) = (-uy * size * 0.45, ux * size * 0.45);
    let head_class = class
        .replace("wg-edge", "wg-head")
        .replace(" wg-dashed", "");
    let _ = write!(
        out,
        "<polygon class=\"{head_class}\" points=\"{x2:.1},{y2:.1} {:.1},{:.1} {:.1},{:.1}\"/>",
        bx + px,
        by + py,
        bx - px,
        by - py
    );
}

/// Lines of text from `(x, y)` down: centred on `x` when `centre`, else starting at `x`.
/// The first line bold when `centre` (a state's name); all bold when `strong` (a move taken).
fn text_block(
    out: &mut String,
    x: f64,
    y: f64,
    lines: &[String],
    class: &str,
    centre: bool,
    strong: bool,
) {
    let anchor = if centre { "middle" } else { "start" };
    let class = if strong {
        format!("{class} {class}-taken")
    } else {
        class.to_owned()
    };
    let _ = write!(out, "<text class=\"{class}\" text-anchor=\"{anchor}\">");
    for (i, line) in lines.iter().enumerate() {
        let weight = if centre && i == 0 {
            " font-weight=\"bold\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tspan x=\"{x:.1}\" y=\"{:.1}\"{weight}>{}</tspan>",
            y + (i as f64 + 0.75) * LINE,
            xml::text(line)
        );
    }
    out.push_str("</text>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use waygate_core::validate::pinned;

    /// A run's pinned definition: read without the name rule (runs started before it stay
    /// readable), so names can hold anything a file can.
    fn workflow(text: &str) -> Workflow {
        let v = pinned("t.ron", text);
        v.workflow.unwrap_or_else(|| panic!("{:?}", v.diagnostics))
    }

    const HOSTILE: &str = r#"Workflow(
        name: "hostile",
        description: "a<b> & \"c\"",
        initial: "<script>alert('x')</script>",
        states: {
            "<script>alert('x')</script>": (description: "</title><script>bad()</script>"),
            "Q&A \"quoted\"": (on_failure: "bell\u{7}\u{1b}[31m"),
            "bell\u{7}\u{1b}[31m": (terminal: Failure),
            "done": (terminal: Success),
        },
        transitions: [
            (from: "<script>alert('x')</script>", to: "Q&A \"quoted\"", guards: [(name: "g<1>&", check: Approval(prompt: "ok?"))]),
            (from: "Q&A \"quoted\"", to: "done"),
        ],
    )"#;

    #[test]
    fn hostile_names_are_escaped() {
        let w = workflow(HOSTILE);
        let svg = graph_svg(&w, None, Embed::Standalone);
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(svg.contains("Q&amp;A &quot;quoted&quot;"));
        assert!(svg.contains("g&lt;1&gt;&amp; (Approval)"));
        assert!(svg.contains("&lt;/title&gt;&lt;script&gt;bad()"));
        // Control characters are written as their code points: XML allows none of them.
        assert!(svg.contains(">bell\\u{7}\\u{1b}[31m<"), "{svg}");
        assert!(!svg.chars().any(|c| c.is_control() && c != '\n'));
    }

    fn event(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            run_id: waygate_core::run::RunId("r".into()),
            at: jiff::Timestamp::UNIX_EPOCH,
            actor: "ana".into(),
            kind,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn moved(seq: u64, from: &str, to: &str, cause: Cause) -> Event {
        event(
            seq,
            EventKind::Transitioned {
                from: from.into(),
                to: to.into(),
                cause,
                reason: None,
            },
        )
    }

    #[test]
    fn a_trail_is_read_off_the_events() {
        let events = [
            event(
                1,
                EventKind::RunStarted {
                    workflow: "w".into(),
                    env: "dev".into(),
                    state: "a".into(),
                    file: "w.ron".into(),
                    definition_hash: String::new(),
                    vars: Default::default(),
                    file_path: None,
                    workdir: None,
                },
            ),
            moved(2, "a", "b", Cause::Advance),
            moved(3, "b", "a", Cause::OnFailure),
            moved(4, "a", "b", Cause::Advance),
        ];
        let trail = Trail::of_events(&events);
        assert_eq!(trail.path(), ["a", "b", "a", "b"]);
        assert_eq!(trail.current.as_deref(), Some("b"));
        assert!(!trail.ended);
        assert_eq!(trail.visited.get("a"), Some(&2));
        assert_eq!(trail.visited.get("b"), Some(&2));
        let ended = Trail::of_events(&[
            events[0].clone(),
            event(
                2,
                EventKind::Aborted {
                    state: "a".into(),
                    reason: "no".into(),
                },
            ),
        ]);
        assert!(ended.ended);
        assert_eq!(ended.path(), ["a"]);
    }

    #[test]
    fn a_trail_is_marked_in_words() {
        let w = workflow(HOSTILE);
        let trail = Trail {
            current: Some("Q&A \"quoted\"".into()),
            ended: false,
            visited: [
                ("<script>alert('x')</script>".to_owned(), 1),
                ("Q&A \"quoted\"".to_owned(), 1),
            ]
            .into(),
            moves: vec![(
                "<script>alert('x')</script>".into(),
                "Q&A \"quoted\"".into(),
                Cause::Advance,
            )],
        };
        let svg = graph_svg(&w, Some(&trail), Embed::Inline);
        assert!(!svg.contains("xmlns"), "inline pictures name no namespace");
        assert_eq!(svg.matches("▶ current state").count(), 1);
        assert_eq!(svg.matches("✓ visited").count(), 1);
        assert_eq!(svg.matches(">taken<").count(), 1);
        assert_eq!(
            svg.matches("wg-current").count(),
            1 + 2,
            "one state, two style rules"
        );
        assert!(svg.contains("the path taken: &lt;script&gt;"));
    }
}
