//! The audit report (`waygate audit report`): one self-contained HTML file an auditor can keep.
//! Inline CSS and SVG only: no script, no external URL, no font or image to fetch, so it opens
//! offline in any browser, years later, exactly as written; and it prints (print styles put
//! each run on its own page and open every evidence block).
//!
//! What it shows: the chain's verification and head at the time of export first (the proof),
//! then what was asked (the scope and the exact command), the runs in a table, and each run
//! with its picture (the path it took marked, [`crate::svg`]), its approvals, its
//! break-glass overrides and its timeline.
//! The words come from their owners: each event's line from `waygate_core::summary`, its kind's
//! name from `EventKind::name`, a status from `RunStatus::as_str`. Status is shown as a symbol
//! and a word, and colour only repeats it. Every value is escaped ([`crate::xml`]).

use std::fmt::Write as _;

use jiff::Timestamp;
use waygate_core::event::{Event, EventKind};
use waygate_core::model::Workflow;
use waygate_core::run::{Run, RunStatus};
use waygate_core::store::VerifyReport;
use waygate_core::summary::{event_summary, time};

use crate::svg::{graph_svg, Embed, Trail};
use crate::xml;

/// One run in the report.
#[derive(Debug)]
pub struct RunReport {
    /// The run as stored.
    pub run: Run,
    /// Its pinned workflow, or why it cannot be read (the run is still reported, without its
    /// picture).
    pub workflow: Result<Workflow, String>,
    /// Every event of the run, oldest first.
    pub events: Vec<Event>,
    /// Why the run's events cannot be read (a damaged store), when they cannot: the run is
    /// still reported, from its record, with this said.
    pub unreadable: Option<String>,
}

/// Everything the report shows.
#[derive(Debug)]
pub struct Report<'a> {
    /// The runs in scope, oldest first.
    pub runs: &'a [RunReport],
    /// Why the runs cannot be listed, when the store refuses to (a damaged store): the report
    /// shows the verification and says this instead of the runs.
    pub unlisted: Option<&'a str>,
    /// The events of the store itself, not of a run (a salvage, `StoreSalvaged`): always
    /// shown, whatever the scope, since they say what happened to the whole trail; or why they
    /// cannot be read (a damaged store).
    pub store_events: Result<&'a [Event], &'a str>,
    /// The whole chain's verification, done after the runs were read, so its head covers
    /// every event shown.
    pub verification: &'a VerifyReport,
    /// When the chain was verified and the report made.
    pub exported_at: Timestamp,
    /// The command that made the report, secrets redacted, as it can be typed again.
    pub command: &'a str,
    /// Where the store is (redacted like the command).
    pub store: &'a str,
    /// The scope asked for, as (what, value) pairs: `("workflow", "deploy")`; empty for all.
    pub scope: &'a [(String, String)],
    /// The version of waygate that wrote it.
    pub version: &'a str,
}

/// The report as one HTML document.
pub fn render(report: &Report<'_>) -> String {
    let mut out = String::with_capacity(64 * 1024 + report.runs.len() * 32 * 1024);
    let exported = time(report.exported_at);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"waygate {}\">\n\
         <title>waygate audit report, {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        xml::text(report.version),
        xml::text(&exported),
    );
    let _ = write!(
        out,
        "<header>\n<h1>waygate audit report</h1>\n<p>Exported {} by waygate {}: {} run{} in \
         scope.</p>\n</header>\n<main>\n",
        xml::text(&exported),
        xml::text(report.version),
        report.runs.len(),
        if report.runs.len() == 1 { "" } else { "s" },
    );
    verification(&mut out, report);
    scope(&mut out, report);
    let heading = "<section aria-labelledby=\"store-events\">\n<h2 id=\"store-events\">Events \
                   of the store</h2>\n";
    match report.store_events {
        Ok([]) => {}
        Ok(events) => {
            out.push_str(heading);
            out.push_str("<p>What happened to the store as a whole, whatever the scope.</p>\n");
            timeline(&mut out, "store", events);
            out.push_str("</section>\n");
        }
        Err(why) => {
            let _ = writeln!(
                out,
                "{heading}<p class=\"verdict status-bad\"><strong>✘ The events of the store \
                 (a salvage) cannot be read:</strong> {}</p>\n</section>",
                xml::text(why)
            );
        }
    }
    run_table(&mut out, report.runs, report.unlisted);
    for (i, r) in report.runs.iter().enumerate() {
        run_section(&mut out, i + 1, r);
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// The styles: readable on screen, one run a page on paper, colour never alone. The server's
/// pages use them too, with their own additions.
pub const CSS: &str = "\
:root{color-scheme:light}\n\
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem 1.5rem;color:#111;line-height:1.4}\n\
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.3rem;margin-top:2rem;border-bottom:2px solid #444}\n\
h3{font-size:1.05rem;margin-top:1.4rem}\n\
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem}\n\
th,td{border:1px solid #999;padding:.25rem .45rem;text-align:left;vertical-align:top}\n\
thead th{background:#eee}th[scope=row]{background:#f6f6f6;width:12rem;font-weight:600}\n\
code,pre,.hash{font-family:ui-monospace,monospace;font-size:.88em;overflow-wrap:anywhere}\n\
pre{white-space:pre-wrap;margin:.3rem 0;background:#f6f6f6;padding:.4rem}\n\
.status{font-weight:700;white-space:nowrap;padding:0 .3rem;border:1px solid currentColor;border-radius:3px}\n\
.status-ok,.status-succeeded{color:#1e6b30}\n\
.status-bad,.status-failed{color:#a0001c}\n\
.status-aborted{color:#7a4a00}.status-active,.status-waiting{color:#0b4fb0}\n\
.verdict{font-size:1.1rem;padding:.5rem .7rem;border:2px solid currentColor}\n\
figure{margin:.5rem 0;overflow-x:auto}figcaption{font-style:italic;margin-top:.3rem}\n\
svg.wg-graph{max-width:100%;height:auto}\n\
.refused{font-weight:700}\n\
summary{cursor:pointer}\n\
.id{white-space:nowrap}\n\
@media print{\n\
body{max-width:none;padding:0;font-size:10pt}\n\
article.run{break-before:page}\n\
figure,.verdict{break-inside:avoid}h2,h3{break-after:avoid}\n\
pre{font-size:7pt;padding:.2rem}\n\
details>*{display:block}\n\
details::details-content{content-visibility:visible;display:block}\n\
summary{list-style:none}\n\
}\n";

/// A run status as a symbol and a word (`<span class="status status-active">▶ active</span>`),
/// coloured too: the colour only repeats the word.
pub fn status(s: RunStatus) -> String {
    let mark = match s {
        RunStatus::Succeeded => "✔",
        RunStatus::Failed => "✘",
        RunStatus::Aborted => "■",
        RunStatus::Active => "▶",
        RunStatus::Waiting => "⏸",
    };
    format!(
        "<span class=\"status status-{0}\">{mark} {0}</span>",
        s.as_str()
    )
}

fn verification(out: &mut String, report: &Report<'_>) {
    let v = report.verification;
    out.push_str(
        "<section aria-labelledby=\"verification\">\n<h2 id=\"verification\">Verification of \
         the audit trail</h2>\n",
    );
    match &v.first_bad {
        None => {
            let _ = writeln!(
                out,
                "<p class=\"verdict status-ok\"><strong>✔ Intact:</strong> {} events, \
                 checksums and hash chain intact.</p>",
                v.events
            );
        }
        Some(b) => {
            let _ = writeln!(
                out,
                "<p class=\"verdict status-bad\"><strong>✘ BAD:</strong> event {}: {}{} ({} \
                 events checked). The events of this report may not be what was recorded.</p>",
                b.seq,
                xml::text(&b.problem),
                b.location
                    .as_deref()
                    .map(|l| format!(" at {}", xml::text(l)))
                    .unwrap_or_default(),
                v.events
            );
        }
    }
    out.push_str("<table>\n");
    match &v.head {
        Some(h) => {
            let intact = if v.first_bad.is_some() {
                " (the last intact event)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\">Chain head</th><td>event {}{intact}<br><span \
                 class=\"hash\">{}</span></td></tr>",
                h.seq,
                xml::text(&h.hash)
            );
        }
        None => {
            out.push_str("<tr><th scope=\"row\">Chain head</th><td>none (no events)</td></tr>\n")
        }
    }
    let _ = writeln!(
        out,
        "<tr><th scope=\"row\">Checked at</th><td>{}</td></tr>",
        xml::text(&time(report.exported_at))
    );
    if let Some(note) = &v.unfinished {
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">Note</th><td>{}</td></tr>",
            xml::text(note)
        );
    }
    out.push_str("</table>\n");
    if let Some(h) = &v.head {
        let _ = writeln!(
            out,
            "<p>Keep the head outside the store. Later, <code>waygate audit verify \
             --expect-head {}</code> shows whether the store still holds this history.</p>",
            xml::text(&h.hash)
        );
    }
    out.push_str("</section>\n");
}

fn scope(out: &mut String, report: &Report<'_>) {
    out.push_str("<section aria-labelledby=\"scope\">\n<h2 id=\"scope\">Scope</h2>\n<table>\n");
    if report.scope.is_empty() {
        out.push_str("<tr><th scope=\"row\">Runs</th><td>every run in the store</td></tr>\n");
    }
    for (what, value) in report.scope {
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            xml::text(what),
            xml::text(value)
        );
    }
    let _ = writeln!(
        out,
        "<tr><th scope=\"row\">Store</th><td><code>{}</code></td></tr>\n\
         <tr><th scope=\"row\">Made by</th><td><code>{}</code></td></tr>\n</table>\n</section>",
        xml::text(report.store),
        xml::text(report.command)
    );
}

fn run_table(out: &mut String, runs: &[RunReport], unlisted: Option<&str>) {
    out.push_str("<section aria-labelledby=\"runs\">\n<h2 id=\"runs\">Runs</h2>\n");
    if let Some(why) = unlisted {
        let _ = writeln!(
            out,
            "<p class=\"verdict status-bad\"><strong>✘ The runs cannot be read:</strong> {}</p>\n\
             </section>",
            xml::text(why)
        );
        return;
    }
    if runs.is_empty() {
        out.push_str("<p>No run is in scope.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th scope=\"col\">Run</th><th scope=\"col\">Workflow</th><th \
         scope=\"col\">Environment</th><th scope=\"col\">Status</th><th \
         scope=\"col\">State</th><th scope=\"col\">Initiator</th><th \
         scope=\"col\">Started</th><th scope=\"col\">Ended</th><th \
         scope=\"col\">Events</th></tr></thead>\n<tbody>\n",
    );
    for (i, r) in runs.iter().enumerate() {
        let run = &r.run;
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#run-{}\"><code class=\"id\">{}</code></a></td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            xml::text(run.id.as_str()),
            xml::text(&run.workflow),
            xml::text(&run.env),
            status(run.status),
            xml::text(&run.state),
            xml::text(&run.initiator),
            time(run.started_at),
            run.ended_at.map(time).unwrap_or_else(|| "not ended".into()),
            r.events.len()
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn run_section(out: &mut String, n: usize, r: &RunReport) {
    let run = &r.run;
    let _ = write!(
        out,
        "<article class=\"run\" id=\"run-{n}\" aria-labelledby=\"run-{n}-title\">\n\
         <h2 id=\"run-{n}-title\">Run <code>{}</code>: {} in {}</h2>\n<table>\n",
        xml::text(run.id.as_str()),
        xml::text(&run.workflow),
        xml::text(&run.env),
    );
    let rows = [
        ("Status", status(run.status)),
        ("State", xml::text(&run.state)),
        ("Initiator", xml::text(&run.initiator)),
        ("Started", time(run.started_at)),
        (
            "Ended",
            run.ended_at.map(time).unwrap_or_else(|| "not ended".into()),
        ),
        (
            "Workflow file",
            format!("<code>{}</code>", xml::text(&run.file)),
        ),
        (
            "Definition (sha256)",
            format!(
                "<span class=\"hash\">{}</span>",
                xml::text(&run.definition_hash)
            ),
        ),
    ];
    for (what, value) in rows {
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{what}</th><td>{value}</td></tr>"
        );
    }
    out.push_str("</table>\n");

    if let Some(why) = &r.unreadable {
        let _ = writeln!(
            out,
            "<p class=\"verdict status-bad\"><strong>✘ The events of this run cannot be \
             read:</strong> {}</p>",
            xml::text(why)
        );
    }
    let _ = writeln!(out, "<h3 id=\"run-{n}-graph\">Graph</h3>");
    match &r.workflow {
        Ok(w) if r.unreadable.is_some() => {
            let _ = writeln!(
                out,
                "<figure>\n{}<figcaption>The path taken cannot be shown: the run's events \
                 cannot be read.</figcaption>\n</figure>",
                graph_svg(w, None, Embed::Inline)
            );
        }
        Ok(w) => {
            out.push_str(&graph_figure(w, &r.events));
            out.push('\n');
        }
        Err(why) => {
            let _ = writeln!(
                out,
                "<p>The pinned definition cannot be read, so no picture: {}</p>",
                xml::text(why)
            );
        }
    }
    approvals(out, n, &r.events);
    overrides(out, n, &r.events);
    timeline(out, n, &r.events);
    out.push_str("</article>\n");
}

/// A run's picture with the path its `events` took marked, and the path named in words
/// under it (where it is now, or that it ended): the audit report's and the run page's.
pub fn graph_figure(w: &Workflow, events: &[Event]) -> String {
    let trail = Trail::of_events(events);
    let path = trail.path().join(" → ");
    format!(
        "<figure>\n{}<figcaption>The path taken: {}{}.</figcaption>\n</figure>",
        graph_svg(w, Some(&trail), Embed::Inline),
        xml::text(&path),
        if trail.ended {
            " (ended)"
        } else {
            " (now here)"
        }
    )
}

fn approvals(out: &mut String, n: usize, events: &[Event]) {
    let _ = writeln!(out, "<h3 id=\"run-{n}-approvals\">Approvals</h3>");
    approvals_table(out, events);
}

/// Every approval given, refused or withdrawn in `events`, with who, when and the comment, as
/// a table (or a sentence saying there was none): the audit report's and the run page's.
pub fn approvals_table(out: &mut String, events: &[Event]) {
    let rows: Vec<String> = events
        .iter()
        .filter_map(|e| {
            let (state, guard, comment, decision) = match &e.kind {
                EventKind::Approved {
                    state,
                    guard,
                    comment,
                    accepted: true,
                    ..
                } => (state, guard, comment, "✔ approved".to_owned()),
                EventKind::Approved {
                    state,
                    guard,
                    comment,
                    reason,
                    ..
                } => (
                    state,
                    guard,
                    comment,
                    format!(
                        "<span class=\"refused\">✘ refused</span>: {}",
                        xml::text(reason.as_deref().unwrap_or("not allowed"))
                    ),
                ),
                EventKind::ApprovalWithdrawn {
                    state,
                    guard,
                    comment,
                    ..
                } => (state, guard, comment, "↺ withdrawn".to_owned()),
                _ => return None,
            };
            Some(format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"event-text\">{}</td></tr>",
                e.seq,
                time(e.at),
                xml::text(&e.actor),
                xml::text(state),
                xml::text(guard),
                decision,
                comment
                    .as_deref()
                    .map(xml::text)
                    .unwrap_or_else(|| "<i>no comment</i>".into())
            ))
        })
        .collect();
    if rows.is_empty() {
        let overridden = events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Overridden { .. }));
        out.push_str(if overridden {
            "<p>No approval was given or refused in this run; a guard was overridden (see \
             below).</p>\n"
        } else {
            "<p>No approval was given or refused in this run.</p>\n"
        });
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th scope=\"col\">Event</th><th scope=\"col\">Time</th><th \
         scope=\"col\">Who</th><th scope=\"col\">State</th><th scope=\"col\">Guard</th><th \
         scope=\"col\">Decision</th><th scope=\"col\">Comment</th></tr></thead>\n<tbody>\n",
    );
    for row in rows {
        out.push_str(&row);
        out.push('\n');
    }
    out.push_str("</tbody>\n</table>\n");
}

/// Every break-glass override of the run (`Overridden`): who marked which guard passed, why,
/// and what its check said then. Shown as prominently as the approvals, since an override is
/// where a run went past a guard that did not pass.
fn overrides(out: &mut String, n: usize, events: &[Event]) {
    let _ = writeln!(
        out,
        "<h3 id=\"run-{n}-overrides\">Break-glass overrides</h3>"
    );
    let rows: Vec<String> = events
        .iter()
        .filter_map(|e| {
            let o = e.kind.as_override()?;
            Some(format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"event-text\">{}</td><td class=\"event-text\">{}</td></tr>",
                e.seq,
                time(e.at),
                xml::text(&e.actor),
                xml::text(&o.state),
                xml::text(&o.guard),
                xml::text(&o.to),
                xml::text(&o.reason),
                xml::text(&o.said)
            ))
        })
        .collect();
    if rows.is_empty() {
        out.push_str("<p>No guard was overridden in this run.</p>\n");
        return;
    }
    let _ = writeln!(
        out,
        "<p class=\"verdict status-bad\"><strong>⚠ {} override{}:</strong> a guard was marked \
         passed by a person, not by its check.</p>",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    out.push_str(
        "<table>\n<thead><tr><th scope=\"col\">Event</th><th scope=\"col\">Time</th><th \
         scope=\"col\">Who</th><th scope=\"col\">State</th><th scope=\"col\">Guard</th><th \
         scope=\"col\">To</th><th scope=\"col\">Reason</th><th scope=\"col\">The check \
         said</th></tr></thead>\n<tbody>\n",
    );
    for row in rows {
        out.push_str(&row);
        out.push('\n');
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The events as a table; `n` names the section it is in, for its heading's id.
fn timeline(out: &mut String, n: impl std::fmt::Display, events: &[Event]) {
    let _ = writeln!(out, "<h3 id=\"run-{n}-timeline\">Timeline</h3>");
    event_table(out, events, None);
}

/// A cell that names an event's run (a link on the server's audit page); `None` for a table of
/// one run's events.
pub type RunCell<'a> = &'a dyn Fn(&Event) -> String;

/// Events as a table, one row per event (`<tr class="event" data-seq="N">`): its seq, time,
/// actor, kind and what happened, with the event as recorded (exact JSON with its hashes, the
/// evidence) in a `<details>`. The audit report's timeline and the server's run and audit
/// pages; `run` adds a column naming each event's run, already escaped.
pub fn event_table(out: &mut String, events: &[Event], run: Option<RunCell<'_>>) {
    let _ = writeln!(
        out,
        "<table>\n<thead><tr><th scope=\"col\">Event</th><th scope=\"col\">Time</th>{}<th \
         scope=\"col\">Actor</th><th scope=\"col\">Kind</th><th scope=\"col\">What \
         happened</th></tr></thead>\n<tbody>",
        if run.is_some() {
            "<th scope=\"col\">Run</th>"
        } else {
            ""
        }
    );
    for e in events {
        let recorded = serde_json::to_string_pretty(e)
            .unwrap_or_else(|err| format!("(cannot be shown: {err})"));
        let _ = writeln!(
            out,
            "<tr class=\"event\" data-seq=\"{seq}\"><td>{seq}</td><td>{}</td>{}<td>{}</td><td>{}</td>\
             <td class=\"event-text\">{}<details><summary>Evidence: the event as \
             recorded</summary><pre>{}</pre></details></td></tr>",
            time(e.at),
            run.map(|cell| format!("<td>{}</td>", cell(e)))
                .unwrap_or_default(),
            xml::text(&e.actor),
            e.kind.name(),
            xml::text(&event_summary(e)),
            xml::content_lines(&recorded),
            seq = e.seq,
        );
    }
    out.push_str("</tbody>\n</table>\n");
}
