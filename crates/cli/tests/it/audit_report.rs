//! `audit report` and `graph --format svg`, as an auditor and an operator use them: what the
//! file holds, that it refers to nothing outside itself, that it is never replaced, which runs
//! the flags choose; and, in a real headless browser (`helpers::Browser`), that it opens
//! offline and shows the runs, approvals and chain head, and prints.

use crate::helpers::{on_both_stores, Browser, Sandbox};

/// A gate someone other than the initiator approves; descriptions hold markup.
const GATE: &str = r#"Workflow(
    name: "gate",
    description: "Ships <b>the</b> thing & more.",
    initial: "review",
    rollback: "cancelled",
    environments: { "dev": (), "prod": () },
    states: {
        "review": (description: "</title><script>alert('state')</script>"),
        "done": (terminal: Success),
        "cancelled": (terminal: Failure),
    },
    transitions: [
        (from: "review", to: "done", guards: [(name: "sign-off", check: Approval(prompt: "notes read", not_by_initiator: true))]),
    ],
)
"#;

/// An approval comment as hostile as a person can type: markup, quotes, an escape sequence,
/// and a URL (the one place a report may hold one: the text of an event).
const COMMENT: &str =
    "read <script>alert(1)</script> & \"ok\" \u{1b}[31m see https://wiki.example.invalid/rel-42";

/// Three runs: one approved by bob (after alice, the initiator, was refused) and driven to the
/// end; one rolled back; one in another environment, not driven yet. Their ids, in that order.
fn store_with_runs(sb: &Sandbox) -> [String; 3] {
    sb.write("wf.ron", GATE);
    let approved = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg_as("alice", &["approve", &approved, "sign-off"])
        .code(1);
    sb.wg_as(
        "bob",
        &["approve", &approved, "sign-off", "--comment", COMMENT],
    )
    .code(0);
    sb.wg_as("bob", &["--quiet", "drive", &approved]).code(0);
    let rolled = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg_as(
        "alice",
        &["--quiet", "rollback", &rolled, "--reason", "called <off>"],
    )
    .code(6);
    let waiting = sb.start("carol", "wf.ron", "prod", &[]);
    [approved, rolled, waiting]
}

/// `audit report --out NAME ARGS..`; the file's text.
#[track_caller]
fn report(sb: &Sandbox, name: &str, args: &[&str]) -> String {
    let mut all = vec!["audit", "report", "--out", name];
    all.extend_from_slice(args);
    sb.wg_as("dana", &all).code(0);
    std::fs::read_to_string(sb.path().join(name)).expect("report written")
}

/// The head `audit verify` prints, as (seq, hash).
fn head(sb: &Sandbox) -> (u64, String) {
    let v = sb
        .wg(&["--format", "json", "audit", "verify"])
        .code(0)
        .json();
    (
        v["head"]["seq"].as_u64().expect("seq"),
        v["head"]["hash"].as_str().expect("hash").to_owned(),
    )
}

/// `html` without the text of events (the cells marked `event-text`: what happened, the
/// evidence, an approval's comment).
fn outside_event_text(html: &str) -> String {
    let mut rest = html;
    let mut out = String::new();
    let open = "<td class=\"event-text\">";
    while let Some(i) = rest.find(open) {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find("</td>").expect("cell closed");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_report_holds_the_runs_approvals_verification_and_command() {
    let sb = Sandbox::new();
    let runs = store_with_runs(&sb);
    let html = report(&sb, "r.html", &[]);
    let (seq, hash) = head(&sb);
    for run in &runs {
        assert!(html.contains(run.as_str()), "{run} missing");
    }
    assert!(html.contains("✔ Intact:"), "verification result");
    assert!(
        html.contains(&format!("event {seq}")) && html.contains(&hash),
        "chain head"
    );
    assert!(html.contains(&format!("--expect-head {hash}")));
    // The approval: who, the refusal of the initiator with its reason, the comment escaped.
    assert!(html.contains("<td>bob</td>"));
    assert!(
        html.contains("✘ refused</span>: alice started this run"),
        "{html}"
    );
    assert!(html.contains(
        "read &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;ok&quot; \\u{1b}[31m see https://wiki.example.invalid/rel-42"
    ));
    assert!(
        !html.contains("<script"),
        "no markup from stored text, and no script at all"
    );
    assert!(html.contains("called &lt;off&gt;"));
    // Status in words, the picture of each run with the path taken.
    assert!(html.contains("✔ succeeded") && html.contains("✘ failed") && html.contains("▶ active"));
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(html.contains("The path taken: review → done (ended)."));
    // The rollback: a move the graph has no edge for, drawn where it happened.
    assert!(html.contains("The path taken: review → cancelled (ended)."));
    assert!(html.contains(">rollback</tspan>"));
    assert!(html.contains("▶ current state"), "the waiting run's state");
    // The command that made it, and the store.
    assert!(html.contains("audit report --out r.html"), "command");
    assert!(html.contains(
        &sb.store()
            .canonicalize()
            .expect("store")
            .display()
            .to_string()
    ));
}

#[test]
fn the_report_refers_to_nothing_outside_itself() {
    let sb = Sandbox::new();
    store_with_runs(&sb);
    let html = report(&sb, "r.html", &[]);
    // The URL in the comment is there, as text of its events...
    assert!(html.contains("https://wiki.example.invalid/rel-42"));
    // ...and no other reference to the web anywhere, nor any way to load something.
    let rest = outside_event_text(&html);
    for needle in [
        "http://", "https://", "src=", "url(", "@import", "<link", "<script",
    ] {
        assert!(
            !rest.contains(needle),
            "{needle:?} outside the events' text"
        );
    }
    for href in rest.split("href=\"").skip(1) {
        assert!(
            href.starts_with('#'),
            "a link out of the page: href=\"{href:.40}"
        );
    }
}

#[test]
fn an_existing_file_is_never_replaced() {
    let sb = Sandbox::new();
    store_with_runs(&sb);
    let first = report(&sb, "r.html", &[]);
    let again = sb.wg(&["audit", "report", "--out", "r.html"]);
    again.code(1).stderr_has("r.html exists");
    let kept = std::fs::read_to_string(sb.path().join("r.html")).expect("kept");
    assert_eq!(kept, first, "the first report is untouched");
    let leftovers: Vec<_> = std::fs::read_dir(sb.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".waygate-report")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A directory that is not there: a clear error, nothing written.
    let nowhere = sb.wg(&["audit", "report", "--out", "no/such/dir/r.html"]);
    nowhere
        .code(1)
        .stderr_has("cannot write no/such/dir/r.html");
}

on_both_stores! {
    /// `--out -` is stdout, the Unix convention: the HTML alone on stdout (what was written on
    /// stderr), twice in a row alike, and no file named `-`; `--out ./-` is such a file.
    fn out_dash_writes_the_report_to_stdout_not_to_a_file_named_dash(sb: Sandbox) {
    let [approved, ..] = store_with_runs(&sb);
    for _ in 0..2 {
        let ran = sb.wg_as("dana", &["audit", "report", "--out", "-"]);
        ran.code(0);
        assert!(
            ran.stdout.starts_with("<!DOCTYPE html>"),
            "{}",
            &ran.stdout[..ran.stdout.len().min(200)]
        );
        assert!(
            ran.stdout.trim_end().ends_with("</html>"),
            "the report alone on stdout"
        );
        assert!(ran.stdout.contains(&approved));
        ran.stderr_has("wrote the report to stdout: 3 runs");
        ran.stderr_has("ok: ");
        assert!(!sb.path().join("-").exists(), "no file named `-`");
    }
    sb.wg_as("dana", &["audit", "report", "--out", "./-"])
        .code(0);
    let file = std::fs::read_to_string(sb.path().join("-")).expect("./- is a file");
    assert!(file.starts_with("<!DOCTYPE html>"));
}
}

/// `--out -` into a pipe whose reader is gone (`| head -c 10` that has had enough, a collector
/// that died): the report did not reach its reader whole, so the command says so and exits 1,
/// never 0 with nothing said, and never claims it wrote the report.
#[test]
fn out_dash_into_a_closed_pipe_says_the_report_was_cut_off() {
    let sb = Sandbox::new();
    store_with_runs(&sb);
    let mut child = sb
        .command("dana", &["audit", "report", "--out", "-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn waygate");
    // The reader goes before anything is written: every write meets a closed pipe.
    drop(child.stdout.take());
    let ran: crate::helpers::Ran = child.wait_with_output().expect("waits").into();
    ran.code(1).stderr_has("the report was cut off");
    assert!(!ran.stderr.contains("wrote the report"), "{}", ran.stderr);
}

#[test]
fn the_flags_choose_the_runs() {
    let sb = Sandbox::new();
    let [approved, rolled, waiting] = store_with_runs(&sb);
    let one = report(&sb, "one.html", &["--run", &rolled, "--run", &rolled]);
    assert!(one.contains(&rolled) && !one.contains(&approved) && !one.contains(&waiting));
    assert_eq!(
        one.matches("<article").count(),
        1,
        "a run named twice is shown once"
    );
    let prod = report(&sb, "prod.html", &["--env", "prod", "--workflow", "gate"]);
    assert!(prod.contains(&waiting) && !prod.contains(&approved));
    // Runs still going at or after --since: only the one that has not ended.
    let later = report(&sb, "later.html", &["--since", "2999-01-01"]);
    assert!(later.contains(&waiting) && !later.contains(&approved) && !later.contains(&rolled));
    let earlier = report(&sb, "earlier.html", &["--until", "2000-01-01"]);
    assert!(earlier.contains("No run is in scope."));

    sb.wg(&[
        "audit",
        "report",
        "--out",
        "x.html",
        "--run",
        "20000101-000000-0000",
    ])
    .code(1);
    sb.wg(&["audit", "report", "--out", "x.html", "--since", "yesterday"])
        .code(2);
    sb.wg(&["--format", "json", "audit", "report", "--out", "x.html"])
        .code(2);
    sb.wg(&["audit", "report"]).code(2);
    assert!(!sb.path().join("x.html").exists());
}

#[test]
fn graph_svg_draws_the_workflow_with_every_text_escaped() {
    let sb = Sandbox::new();
    let svg = gate_svg(&sb);
    assert!(svg.starts_with("<?xml"), "{svg:.80}");
    assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    for name in ["review", "done", "cancelled", "sign-off (Approval)"] {
        assert!(svg.contains(name), "{name}");
    }
    assert!(svg.contains("&lt;/title&gt;&lt;script&gt;alert(&#39;state&#39;)"));
    assert!(svg.contains("Ships &lt;b&gt;the&lt;/b&gt; thing &amp; more."));
    assert!(!svg.contains("<script") && !svg.contains("<b>"));
    sb.wg(&["graph", "wf.ron", "--format", "svg", "--mermaid"])
        .code(2);
    sb.wg(&["graph", "wf.ron", "--format", "json"]).code(2);
}

/// `graph wf.ron --format svg` of the gate.
fn gate_svg(sb: &Sandbox) -> String {
    sb.write("wf.ron", GATE);
    sb.wg(&["graph", "wf.ron", "--format", "svg"])
        .code(0)
        .stdout
        .clone()
}

#[test]
fn in_a_browser_the_report_opens_offline_shows_the_runs_and_prints() {
    let Some(browser) = Browser::find("report in a browser") else {
        return;
    };
    let sb = Sandbox::new();
    let runs = store_with_runs(&sb);
    report(&sb, "r.html", &[]);
    let file = sb.path().join("r.html");
    let (seq, hash) = head(&sb);
    let dom = browser.dom(&file);
    browser.checking("report_in_a_browser", &file, || {
        assert!(
            dom.contains("waygate audit report"),
            "the page loaded: {dom:.300}"
        );
        for run in &runs {
            assert!(dom.contains(run.as_str()), "{run}");
        }
        assert!(dom.contains("✔ Intact:"));
        assert!(dom.contains(&format!("event {seq}")) && dom.contains(&hash));
        // The comment as text: the browser made no element of it.
        assert!(dom.contains("read &lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!dom.contains("<script"));
        // Each run's picture is an SVG element of the page, with its states drawn.
        assert_eq!(dom.matches("<svg").count(), 3);
        assert!(dom.contains("■ ended here") && dom.contains("▶ current state"));
        assert!(dom.contains("<details>"));
    });

    // A picture of it, as a person sees it (and a check that something was drawn).
    let png = sb.path().join("r.png");
    browser.screenshot(&file, &png, 1100, 1600);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "a screenshot of a page with text and pictures: {size} bytes"
    );

    // Printed: each run starts a page, so there are more pages than runs.
    let pdf = sb.path().join("r.pdf");
    browser.print(&file, &pdf);
    let bytes = std::fs::read(&pdf).expect("printed");
    let pages = count(&bytes, b"/Type /Page") - count(&bytes, b"/Type /Pages");
    assert!(pages > runs.len(), "{pages} pages for {} runs", runs.len());
}

#[test]
fn in_a_browser_the_svg_picture_is_well_formed() {
    let Some(browser) = Browser::find("svg in a browser") else {
        return;
    };
    let sb = Sandbox::new();
    let svg = gate_svg(&sb);
    let file = sb.write("wf.svg", &svg);
    let dom = browser.dom(&file);
    browser.checking("svg_in_a_browser", &file, || {
        // A malformed file shows the browser's XML error page instead.
        assert!(!dom.contains("parsererror"), "{dom:.600}");
        assert!(dom.contains("sign-off (Approval)"), "{dom:.600}");
        assert!(dom.contains("&lt;/title&gt;&lt;script&gt;"));
    });
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[test]
fn two_reports_to_one_file_at_once_one_wins_whole() {
    let sb = Sandbox::new();
    store_with_runs(&sb);
    let args = ["audit", "report", "--out", "same.html"];
    let first = sb.spawn_as("dana", "first", &args);
    let second = sb.spawn_as("erin", "second", &args);
    let limit = std::time::Duration::from_secs(60);
    let mut codes = [first.wait(limit).code, second.wait(limit).code];
    codes.sort();
    assert_eq!(codes, [0, 1], "one wrote it, the other was refused");
    let html = std::fs::read_to_string(sb.path().join("same.html")).expect("written");
    assert!(html.ends_with("</html>\n"), "a whole report");
}

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).expect("under").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_report_is_never_written_inside_the_store() {
    let sb = Sandbox::new();
    let [_, _, waiting] = store_with_runs(&sb);
    let before = files_under(&sb.store());
    std::os::unix::fs::symlink(sb.store(), sb.path().join("alias")).expect("symlink");
    // The journal's next segment (the store would take the report for its journal, and cut
    // it off at its next write), the store's top, and the same through a symlink and `..`.
    for out in [
        "store/journal/00000002.seg",
        "store/report.html",
        "alias/report.html",
        "store/journal/../report.html",
    ] {
        let ran = sb.wg(&["audit", "report", "--out", out]);
        ran.code(1).stderr_has("inside the store");
        assert_eq!(files_under(&sb.store()), before, "{out}: nothing written");
    }
    // The store still takes writes, and verifies.
    sb.wg_as("dana", &["abort", &waiting, "--reason", "done here"])
        .code(0);
    sb.verify();
}

/// The file's name is printed as every other text is: a control character in it is shown as
/// its code point, so the line that says what was written cannot recolour the terminal.
#[test]
fn the_name_of_the_file_written_is_printed_escaped() {
    let sb = Sandbox::new();
    store_with_runs(&sb);
    let name = "r\u{1b}[2J.html";
    let ran = sb.wg(&["audit", "report", "--out", name]);
    ran.code(0).stdout_has("wrote r\\u{1b}[2J.html: 3 runs");
    assert!(!ran.stdout.contains('\u{1b}'), "{:?}", ran.stdout);
    assert!(sb.path().join(name).exists(), "the file has the name given");
}

/// Events cut off the journal's end (the last deeds removed, a file restored from an older
/// copy): the store refuses to read its runs, and the report is still written, saying so at
/// the top, and exits 1, as `audit verify` does.
#[test]
fn a_journal_that_lost_its_last_events_is_still_reported() {
    let sb = Sandbox::new();
    let [_, _, waiting] = store_with_runs(&sb);
    let journal = sb.store().join("journal");
    let segment = std::fs::read_dir(&journal)
        .expect("journal")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .max()
        .expect("a segment");
    let older = std::fs::read(&segment).expect("read segment");
    sb.wg_as("dana", &["abort", &waiting, "--reason", "to be hidden"])
        .code(0);
    std::fs::write(&segment, older).expect("put the older segment back");
    sb.wg(&["audit", "verify"]).code(1);

    let ran = sb.wg(&["audit", "report", "--out", "lost.html"]);
    ran.code(1).stdout_has("BAD: event");
    let html = std::fs::read_to_string(sb.path().join("lost.html")).expect("report written");
    assert!(
        html.contains("✘ BAD:</strong> event"),
        "the verdict at the top"
    );
    assert!(
        html.contains("The runs cannot be read"),
        "says why no run is shown"
    );
    assert!(!html.contains("No run is in scope"), "not an empty scope");
}

/// A break-glass override of an approval is what an auditor looks for first: the report lists
/// every override of a run in its own section, who, why and what the check said, and the
/// approvals section does not claim that nothing happened to the approval.
#[test]
fn break_glass_overrides_are_listed_beside_the_approvals() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        r#"Workflow(
    name: "gate",
    initial: "review",
    rollback: "cancelled",
    overridable_by: ["sre"],
    states: {
        "review": (),
        "done": (terminal: Success),
        "cancelled": (terminal: Failure),
    },
    transitions: [
        (from: "review", to: "done", guards: [(name: "sign-off", check: Approval(prompt: "ok?", approvers: ["bob"]))]),
    ],
)
"#,
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg_as("alice", &["--quiet", "advance", &run]).code(4);
    sb.wg_as(
        "sre",
        &["override", &run, "sign-off", "--reason", "bob <away> & off"],
    )
    .code(0);
    sb.wg_as("alice", &["--quiet", "drive", &run]).code(0);
    let html = report(&sb, "r.html", &[]);
    let section = html
        .split("id=\"run-1-overrides\"")
        .nth(1)
        .and_then(|s| s.split("id=\"run-1-timeline\"").next())
        .expect("an overrides section before the timeline");
    for part in [
        ">sre<",
        ">review<",
        ">sign-off<",
        ">done<",
        "bob &lt;away&gt; &amp; off",
        "waiting: 0 of 1 approval",
    ] {
        assert!(section.contains(part), "{part} in {section}");
    }
    assert!(
        !html.contains("No approval was given or refused in this run."),
        "an overridden approval is not `no approval`"
    );
}
