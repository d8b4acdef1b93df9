//! `waygate serve`'s pages (issue 13) in a real browser: headless Chromium driven through
//! chromedriver (`webdriver.rs`) against a real server on 127.0.0.1 with tokens made by
//! `waygate token new`. What the tests rely on is the page contract (element ids and classes);
//! what they check is what a person sees and can do: sign in, find the run, read its
//! timeline and graph, approve with a comment or be refused with the reason, sign out; with
//! the keyboard alone, with JavaScript off, and the page following a run as it changes.
//!
//! Skipped with a printed reason when chromium or chromedriver is missing, unless
//! `WAYGATE_REQUIRE_CHROMIUM=1` (`.ci/run`). A failing test leaves a screenshot and the page
//! source under `target/browser-failures/`.

use serde_json::{json, Value};

use crate::helpers::{alive, browser_failures, Browser, Sandbox};
use crate::serve::{request, Served};
use crate::webdriver::{processes_naming, Scripts, Session, ENTER, PATIENCE, TAB};

/// A server (`serve::Served`: its `signed` workflow has the approval `sign`, prompt `ok?`,
/// `not_by_initiator: true`) with one run `ana` started, and a browser session on it.
struct Page {
    /// First, so that it is dropped first: a failing test's screenshot shows the server's
    /// page, not a refused connection.
    b: Session,
    s: Served,
    run: String,
    base: String,
}

impl Page {
    /// `None` (the reason printed) when the browser is missing and not required.
    fn open(test: &str, scripts: Scripts) -> Option<Page> {
        let browser = Browser::with_driver(test)?;
        let s = Served::new();
        let run = s.start("ana", "signed");
        let base = format!("http://{}", s.addr);
        let b = Session::start(&browser, test, s.sb.path(), scripts);
        Some(Page { b, s, run, base })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn run_path(&self) -> String {
        format!("/runs/{}", self.run)
    }

    /// Signs in with `actor`'s token through the form; lands on the runs page.
    #[track_caller]
    fn sign_in(&self, actor: &str) {
        self.b.goto(&self.url("/signin"));
        self.b
            .find("form#signin input#token")
            .send_keys(self.s.token(actor));
        self.b
            .find("form#signin button[type=submit]")
            .click_to_leave();
        self.on_page("/runs");
        let shown = self.b.find("nav #actor").text();
        if shown.trim() != actor {
            self.b
                .fail(&format!("signed in as {actor}, the page names {shown:?}"));
        }
    }

    /// Waits until the browser shows the page at `path`.
    #[track_caller]
    fn on_page(&self, path: &str) {
        self.b
            .wait_for(&format!("the page {path}"), PATIENCE, |b| b.path() == path);
    }

    /// The run's events as the API gives them.
    fn history(&self) -> Vec<Value> {
        self.s.history(&self.run)
    }

    /// The text of the timeline row of event `seq`, once it is there.
    #[track_caller]
    fn timeline_row(&self, seq: u64) -> String {
        let css = format!("#timeline tr[data-seq=\"{seq}\"]");
        let mut text = None;
        self.b
            .wait_for(&format!("timeline row {seq}"), PATIENCE, |b| {
                text = b.text_of(&css);
                text.is_some()
            });
        text.unwrap_or_default()
    }

    /// The run page shows the run whole: header, graph, every event, the pending approvals.
    #[track_caller]
    fn check_run_page(&self) {
        let b = &self.b;
        let header = b.find("section#run-header dl").text();
        let status = self.s.status(&self.run);
        for part in ["signed", "dev", "ana", status.as_str().unwrap_or("?")] {
            if !header.contains(part) {
                b.fail(&format!(
                    "the run header does not show {part:?}: {header:?}"
                ));
            }
        }
        let definition = b
            .find("section#run-header a[href$=\"/definition\"]")
            .prop("href");
        let want = self.url(&format!("{}/definition", self.run_path()));
        if definition != json!(want) {
            b.fail(&format!(
                "the definition link goes to {definition}, not {want}"
            ));
        }
        b.find("section#definition-diff");
        // The picture, named for those who cannot see it, with this workflow's states.
        let svg = b.find("section#graph svg");
        let name = b.execute(
            "const s = document.querySelector('section#graph svg');
             const t = s.querySelector('title');
             return [(s.getAttribute('aria-label') || (t ? t.textContent : '')).trim(),
                     s.textContent];",
            json!([]),
        );
        if name[0] == ""
            || !["done", "undone"]
                .iter()
                .all(|st| name[1].as_str().unwrap_or("").contains(st))
        {
            b.fail(&format!(
                "the graph is unnamed or not this workflow's: {name}"
            ));
        }
        drop(svg);
        let events = self.history();
        let rows = b.find_all("section#timeline table tr[data-seq]");
        let seqs: Vec<Option<String>> = rows.iter().map(|r| r.attr("data-seq")).collect();
        let want: Vec<Option<String>> = events
            .iter()
            .map(|e| e["seq"].as_u64().map(|s| s.to_string()))
            .collect();
        if seqs != want {
            b.fail(&format!(
                "the timeline's rows are events {seqs:?}, the run's are {want:?}"
            ));
        }
        for (row, event) in rows.iter().zip(&events) {
            let text = row.text();
            for field in ["actor", "kind"] {
                let value = event[field].as_str().unwrap_or("?");
                if !text.contains(value) {
                    b.fail(&format!(
                        "event {}'s row does not show its {field} {value:?}: {text:?}",
                        event["seq"]
                    ));
                }
            }
        }
        let approvals = b.find("section#approvals").text();
        if !approvals.contains("ok?") {
            b.fail(&format!(
                "the pending approval's prompt is not shown: {approvals:?}"
            ));
        }
    }

    /// Basic accessibility of the page shown: `lang="en"`, every form field labelled (and
    /// there are fields: each page checked has a form), every button and link named, every
    /// status in words (a `.status` element with text; `statuses`: there is one). And the
    /// browser reported no error (a script failing, the page's own policy refusing a part).
    #[track_caller]
    fn check_accessible(&self, page: &str, statuses: bool) {
        let found = self.b.execute(ACCESSIBLE, json!([]));
        let mut problems = self.b.console_errors();
        if found["fields"] == 0 {
            problems.push("no form field to check".to_owned());
        }
        if found["lang"] != "en" {
            problems.push(format!("lang is {}", found["lang"]));
        }
        for (key, what) in [
            ("unlabelled", "a field without a label"),
            ("nameless", "a button or link without a name"),
            ("blank", "a status without text"),
        ] {
            for el in found[key].as_array().into_iter().flatten() {
                problems.push(format!("{what}: {}", el.as_str().unwrap_or("?")));
            }
        }
        if statuses && found["statuses"] == 0 {
            problems.push("no status shown as a `.status` element".to_owned());
        }
        if !problems.is_empty() {
            self.b.fail(&format!(
                "the {page} page is not accessible:\n  {}",
                problems.join("\n  ")
            ));
        }
    }

    /// Types `comment` into the approval form of `guard` and submits it with its button.
    #[track_caller]
    fn approve(&self, guard: &str, comment: &str) {
        let form = self.b.find(&format!(
            "section#approvals form.approve[data-guard=\"{guard}\"]"
        ));
        form.find(&format!("textarea#comment-{guard}"))
            .send_keys(comment);
        form.find("button[type=submit]").click_to_leave();
    }

    /// Fails unless the page shows the alert `#error` and it says `why`.
    #[track_caller]
    fn error_says(&self, why: &str) {
        let error = self.b.find("p#error[role=alert]").text();
        if !error.contains(why) {
            self.b
                .fail(&format!("the refusal does not say {why:?}: {error:?}"));
        }
    }

    /// The last `Approved` event of the run (accepted or refused).
    fn last_approval(&self) -> Value {
        self.history()
            .into_iter()
            .rev()
            .find(|e| e["kind"] == "Approved")
            .unwrap_or(Value::Null)
    }
}

/// Run in the page by [`Page::check_accessible`].
const ACCESSIBLE: &str = r#"
const text = (e) => (e ? e.textContent : '').replace(/\s+/g, ' ').trim();
const named = (e) => text(e) || (e.getAttribute('aria-label') || '').trim()
    || (e.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean)
        .map((id) => text(document.getElementById(id))).join('')
    || (e.getAttribute('title') || '').trim();
const unlabelled = [];
let fields = 0;
for (const el of document.querySelectorAll('input, textarea, select')) {
    if (['hidden', 'submit', 'button', 'reset', 'image'].includes(el.type)) continue;
    fields += 1;
    const label = Array.from(el.labels || []).map(text).join('');
    if (!label && !(el.getAttribute('aria-label') || '').trim()
        && !(el.getAttribute('aria-labelledby') || '').trim()) {
        unlabelled.push(el.outerHTML);
    }
}
const nameless = Array.from(document.querySelectorAll('button, a[href]'))
    .filter((e) => !named(e)).map((e) => e.outerHTML);
const statuses = document.querySelectorAll('.status');
const blank = Array.from(statuses).filter((e) => !text(e)).map((e) => e.outerHTML);
return { lang: document.documentElement.lang, fields, unlabelled, nameless, blank,
         statuses: statuses.length };
"#;

/// An approval comment as a person might type it: markup and an ampersand, shown as text.
const COMMENT: &str = "release notes read <b>twice</b> & fine";

#[test]
fn an_approver_signs_in_finds_the_run_approves_it_and_signs_out() {
    let Some(p) = Page::open("approver_in_the_browser", Scripts::On) else {
        return;
    };
    let b = &p.b;
    // No session: the sign-in form and none of the data.
    b.goto(&p.url("/runs"));
    b.find("form#signin");
    if b.try_find("table#runs").is_some() || b.source().contains(&p.run) {
        b.fail("the runs page showed data to a caller who has not signed in");
    }
    p.check_accessible("sign-in", false);
    // A wrong token: refused, saying so, and not shown back.
    b.find("form#signin input#token")
        .send_keys("wg_not-a-token-4242");
    b.find("form#signin button[type=submit]").click_to_leave();
    let error = b.find("p#error[role=alert]").text();
    if error.trim().is_empty() || b.source().contains("not-a-token-4242") {
        b.fail(&format!(
            "a wrong token: {error:?}, or the token shown back"
        ));
    }
    if b.find("form#signin input#token").prop("value") != "" {
        b.fail("the wrong token was put back into the field");
    }
    p.check_accessible("wrong token", false);
    // A link to a run followed before signing in: the form, then the run.
    b.goto(&p.url(&p.run_path()));
    if b.try_find("section#run-header").is_some() || b.source().contains("ok?") {
        b.fail("the run page showed the run to a caller who has not signed in");
    }
    b.find("form#signin input#token")
        .send_keys(p.s.token("appr"));
    b.find("form#signin button[type=submit]").click_to_leave();
    p.on_page(&p.run_path());
    assert_eq!(b.find("nav #actor").text(), "appr");

    // The list, and its filters as a person uses them.
    let other = p.s.start("op", "free");
    b.find("nav a[href=\"/runs\"]").click_to_leave();
    p.on_page("/runs");
    p.check_accessible("runs", true);
    let other_row = format!("table#runs tr[data-run=\"{other}\"]");
    b.find(&other_row);
    b.find("form#filters [name=initiator]").send_keys("ana");
    b.find("form#filters button[type=submit]").click_to_leave();
    if b.try_find(&other_row).is_some() {
        b.fail("filtering on the initiator ana still lists op's run");
    }
    // A time the page cannot read: said so, the value kept for correcting.
    b.find("form#filters [name=since]")
        .send_keys("the day before");
    b.find("form#filters button[type=submit]").click_to_leave();
    p.error_says("since \"the day before\": expected an RFC 3339 time");
    if b.find("form#filters [name=since]").prop("value") != "the day before" {
        b.fail("the filter's value was lost");
    }
    b.goto(&p.url("/runs"));
    let row = b.find(&format!("table#runs tr[data-run=\"{}\"]", p.run));
    let text = row.text();
    for part in ["signed", "dev", "ana", "active"] {
        if !text.contains(part) {
            b.fail(&format!("the run's row does not show {part:?}: {text:?}"));
        }
    }
    let link = row.find("td:first-child a");
    if link.prop("href") != json!(p.url(&p.run_path())) {
        b.fail(&format!("the run's link goes to {}", link.prop("href")));
    }
    link.click_to_leave();
    p.on_page(&p.run_path());
    p.check_run_page();
    p.check_accessible("run", false);
    // The evidence of an event, folded until asked for.
    let started = &p.history()[0];
    let hash = started["hash"].as_str().expect("hash");
    let first = b.find("section#timeline tr[data-seq=\"1\"]");
    if first.text().contains(hash) {
        b.fail("the evidence is shown unfolded");
    }
    first.find("details summary").click();
    if !first.find("details").text().contains(hash) {
        b.fail("the unfolded evidence does not hold the event's hash");
    }

    p.approve("sign", COMMENT);
    p.on_page(&p.run_path());
    if let Some(error) = b.try_find("#error") {
        b.fail(&format!("the approval was refused: {}", error.text()));
    }
    let approval = p.last_approval();
    assert_eq!(
        (
            &approval["actor"],
            &approval["accepted"],
            &approval["comment"]
        ),
        (&json!("appr"), &json!(true), &json!(COMMENT)),
        "{approval}"
    );
    let row = p.timeline_row(approval["seq"].as_u64().expect("seq"));
    if !(row.contains(COMMENT) && row.contains("appr")) {
        b.fail(&format!(
            "the approval's row does not show its comment and approver: {row:?}"
        ));
    }

    // Sign out: the session ends on the server, not only in this browser.
    let cookie = b
        .cookie("waygate_session")
        .unwrap_or_else(|| b.fail("no session cookie after signing in"));
    assert_eq!(
        (&cookie["httpOnly"], &cookie["sameSite"]),
        (&json!(true), &json!("Strict")),
        "{cookie}"
    );
    let old = format!(
        "waygate_session={}",
        cookie["value"].as_str().unwrap_or_default()
    );
    b.find("form#signout button[type=submit]").click_to_leave();
    p.on_page("/signin");
    b.goto(&p.url(&p.run_path()));
    b.find("form#signin");
    if b.try_find("section#timeline").is_some() || b.source().contains(COMMENT) {
        b.fail("the run page still shows the run after signing out");
    }
    let reply = request(p.s.addr, "GET", &p.run_path(), &[("Cookie", &old)], None);
    assert_eq!(
        reply.status, 401,
        "the old session cookie still opens the run page"
    );
}

#[test]
fn the_initiator_is_refused_with_the_reason_and_an_auditor_sees_no_approve_button() {
    let Some(p) = Page::open("refused_in_the_browser", Scripts::On) else {
        return;
    };
    let b = &p.b;
    p.sign_in("ana");
    b.goto(&p.url(&p.run_path()));
    p.approve("sign", "my own run");
    p.error_says("ana started this run and may not approve it (not_by_initiator)");
    p.check_accessible("refusal", false);
    let refusal = p.last_approval();
    assert_eq!(
        (&refusal["actor"], &refusal["accepted"]),
        (&json!("ana"), &json!(false)),
        "{refusal}"
    );
    // A guard only named people may approve.
    p.approve("never", "not mine either");
    p.error_says("ana may not approve this guard; allowed approvers: nobody");

    b.find("form#signout button[type=submit]").click_to_leave();
    p.on_page("/signin");
    p.sign_in("aud");
    b.goto(&p.url(&p.run_path()));
    p.check_run_page();
    let approve_buttons = b
        .find_all("button")
        .iter()
        .filter(|button| button.text().contains("Approve"))
        .count();
    if b.try_find("form.approve").is_some() || approve_buttons > 0 {
        b.fail("an auditor is offered to approve");
    }

    // The pinned definition, as text.
    b.find("section#run-header a[href$=\"/definition\"]")
        .click_to_leave();
    p.on_page(&format!("{}/definition", p.run_path()));
    let text = b.find("body").text();
    if !text.contains("Approval(prompt: \"ok?\", not_by_initiator: true)") {
        b.fail(&format!("the definition's text is not shown: {text:.300}"));
    }
    b.goto(&p.url(&p.run_path()));

    // The audit page: every event, and the chain's head as `audit verify` finds it.
    b.find("nav a[href=\"/audit\"]").click_to_leave();
    p.on_page("/audit");
    p.check_accessible("audit", false);
    b.find("form#filters [name=actor]").send_keys("ana");
    b.find("form#filters button[type=submit]").click_to_leave();
    let by_ana = b.find_all("table#events tr[data-seq]").len();
    let want = p.history().iter().filter(|e| e["actor"] == "ana").count();
    if by_ana != want {
        b.fail(&format!("{by_ana} events listed for actor ana, not {want}"));
    }
    let csv = b.find("a#csv").prop("href");
    if csv != json!(p.url("/v1/audit?actor=ana&format=csv")) {
        b.fail(&format!("the CSV link is {csv}"));
    }
    b.goto(&p.url("/audit"));
    let rows = b.find_all("table#events tr[data-seq]").len();
    let (_, verify) = p.s.call(Some("aud"), "GET", "/v1/audit/verify", None);
    assert_eq!(Some(rows as u64), verify["events"].as_u64(), "{verify}");
    let seq = b.find("section#chain code#head-seq").text();
    let hash = b.find("section#chain code#head-hash").text();
    assert_eq!(
        (json!(seq.trim()), json!(hash.trim())),
        (
            json!(verify["head"]["seq"].to_string()),
            verify["head"]["hash"].clone()
        )
    );
}

#[test]
fn the_runs_list_pages_through_older_and_newer_runs() {
    let Some(p) = Page::open("pages_in_the_browser", Scripts::On) else {
        return;
    };
    let b = &p.b;
    // 50 runs to a page: the first run is on the second, with 50 newer ones (each ended, as
    // an environment takes one run at a time).
    let mut newest = String::new();
    for _ in 0..50 {
        newest = p.s.start("op", "free");
        let (status, reply) = p.s.act("op", "abort", &newest, json!({ "reason": "next" }));
        assert_eq!(status, 200, "{reply}");
    }
    p.sign_in("aud");
    let first_page = |b: &Session| {
        let rows = b.find_all("table#runs tr[data-run]");
        (rows.len(), rows.first().and_then(|r| r.attr("data-run")))
    };
    assert_eq!(
        first_page(b),
        (50, Some(newest.clone())),
        "newest first, 50"
    );
    let oldest = format!("table#runs tr[data-run=\"{}\"]", p.run);
    if b.try_find(&oldest).is_some() {
        b.fail("the 51st run is on the first page");
    }
    b.find("a[rel=next]").click_to_leave();
    let rows = b.find_all("table#runs tr[data-run]").len();
    if rows != 1 || b.try_find(&oldest).is_none() {
        b.fail(&format!(
            "the older page has {rows} runs, not the oldest alone"
        ));
    }
    b.find("a[rel=prev]").click_to_leave();
    assert_eq!(first_page(b), (50, Some(newest)), "back to the newest");
}

/// Presses Tab until `want` holds of the focused element, at most `limit` times.
#[track_caller]
fn tab_to(b: &Session, what: &str, limit: usize, want: impl Fn(&Session) -> bool) {
    for _ in 0..limit {
        b.keys(TAB);
        if want(b) {
            return;
        }
    }
    b.fail(&format!("{limit} presses of Tab did not reach {what}"));
}

/// Fails unless the focused element shows that it has the focus (an outline or a shadow:
/// a page that hides the browser's focus ring leaves a keyboard user lost).
#[track_caller]
fn focus_shown(b: &Session, what: &str) {
    let style = b.execute(
        "const s = getComputedStyle(document.activeElement);
         return [s.outlineStyle, s.outlineWidth, s.boxShadow];",
        json!([]),
    );
    let outline = style[0] != "none" && style[1] != "0px";
    if !outline && style[2] == "none" {
        b.fail(&format!(
            "{what} has the focus but does not show it: {style}"
        ));
    }
}

/// The focused element's id.
fn focused_id(b: &Session) -> Option<String> {
    b.active().attr("id")
}

#[test]
fn with_the_keyboard_alone_a_person_signs_in_and_approves() {
    let Some(p) = Page::open("keyboard_in_the_browser", Scripts::On) else {
        return;
    };
    let b = &p.b;
    b.goto(&p.url("/signin"));
    tab_to(b, "the token field", 20, |b| {
        focused_id(b).as_deref() == Some("token")
    });
    focus_shown(b, "the token field");
    b.keys(p.s.token("appr"));
    b.leave("Enter in the token field", || b.keys(ENTER));
    p.on_page("/runs");

    b.goto(&p.url(&p.run_path()));
    tab_to(b, "the comment of the approval `sign`", 200, |b| {
        focused_id(b).as_deref() == Some("comment-sign")
    });
    b.keys("by keyboard");
    tab_to(b, "its Approve button", 1, |b| {
        let on = b.execute(
            "const e = document.activeElement; const f = e.closest('form.approve');
             return [e.tagName, e.textContent.trim(), f ? f.dataset.guard : null];",
            json!([]),
        );
        on == json!(["BUTTON", "Approve", "sign"])
    });
    focus_shown(b, "the Approve button");
    b.leave("Enter on Approve", || b.keys(ENTER));
    p.on_page(&p.run_path());
    let approval = p.last_approval();
    assert_eq!(approval["comment"], "by keyboard", "{approval}");
    let row = p.timeline_row(approval["seq"].as_u64().expect("seq"));
    assert!(row.contains("by keyboard"), "{row}");
}

#[test]
fn with_javascript_off_the_run_page_is_whole_and_approving_and_refusals_work() {
    let Some(p) = Page::open("no_script_in_the_browser", Scripts::Off) else {
        return;
    };
    let b = &p.b;
    // Scripts are really off in this browser.
    b.goto("data:text/html,<p id=x>off</p><script>document.getElementById('x').textContent='on'</script>");
    assert_eq!(b.find("#x").text(), "off", "scripts ran");

    p.sign_in("appr");
    b.goto(&p.url(&p.run_path()));
    p.check_run_page();
    p.approve("sign", "no script needed");
    p.on_page(&p.run_path());
    let approval = p.last_approval();
    assert_eq!(approval["accepted"], true, "{approval}");
    let row = p.timeline_row(approval["seq"].as_u64().expect("seq"));
    assert!(row.contains("no script needed"), "{row}");

    // The run moves on while the page is open; the page's other form is now stale.
    let (status, reply) = p.s.act("op", "advance", &p.run, json!({}));
    assert_eq!(status, 200, "{reply}");
    p.approve("never", "too late");
    p.error_says(&format!("run {} has already ended (succeeded)", p.run));
    let late = p.last_approval();
    assert_eq!(
        late["guard"], "sign",
        "nothing recorded for the stale form: {late}"
    );
}

#[test]
fn the_run_page_follows_the_run_without_a_reload_keeping_a_comment_being_written() {
    let Some(p) = Page::open("live_in_the_browser", Scripts::On) else {
        return;
    };
    let b = &p.b;
    p.sign_in("ana");
    b.goto(&p.url(&p.run_path()));
    p.check_run_page();
    // A mark in the page's memory: a reload would lose it. And a comment being written.
    b.execute(
        "window.waygateTestMark = 'same page'; return true;",
        json!([]),
    );
    b.find("textarea#comment-never").send_keys("half-written");

    let ran: crate::helpers::Ran =
        p.s.sb
            .command(
                "ignored",
                &[
                    "--server",
                    &p.base,
                    "approve",
                    &p.run,
                    "sign",
                    "--comment",
                    "from the terminal",
                ],
            )
            .env("WAYGATE_TOKEN", p.s.token("appr"))
            .output()
            .expect("waygate approve")
            .into();
    ran.code(0);
    let approval = p.last_approval();
    assert_eq!(approval["comment"], "from the terminal", "{approval}");
    let css = format!(
        "#timeline tr[data-seq=\"{}\"]",
        approval["seq"].as_u64().expect("seq")
    );
    b.wait_for("the approval's row to appear", PATIENCE, |b| {
        b.text_of(&css)
            .is_some_and(|t| t.contains("from the terminal"))
    });
    let mark = b.execute("return window.waygateTestMark || null;", json!([]));
    if mark != "same page" {
        b.fail("the page was reloaded to show the new event");
    }
    if b.find("textarea#comment-never").prop("value") != "half-written" {
        b.fail("the comment being written was lost to the update");
    }

    // The run ends elsewhere: the header says so, still without a reload.
    let (status, reply) = p.s.act("op", "advance", &p.run, json!({}));
    assert_eq!(status, 200, "{reply}");
    b.wait_for("the header to say the run succeeded", PATIENCE, |b| {
        b.text_of("section#run-header")
            .is_some_and(|t| t.contains("succeeded"))
    });
    let mark = b.execute("return window.waygateTestMark || null;", json!([]));
    if mark != "same page" {
        b.fail("the page was reloaded to show the run's end");
    }
}

/// Signing out ends what the session opened: a run page left open in another tab keeps no
/// stream of the run's events (each carries comments and evidence) once its session ended.
#[test]
fn signing_out_in_another_tab_ends_the_event_stream_of_an_open_run_page() {
    let Some(p) = Page::open("sign_out_stream_in_the_browser", Scripts::On) else {
        return;
    };
    let b = &p.b;
    p.sign_in("aud");
    b.goto(&p.url(&p.run_path()));
    let first = b.window();
    // A listener on the run's stream as the page's own script has one (that one is out of
    // reach in its closure), counting what it is sent.
    b.execute(
        "const es = new EventSource('/v1/runs/' + arguments[0] + '/events');
         window.waygateTestStream = es;
         window.waygateTestSeen = 0;
         es.addEventListener('run-event', () => { window.waygateTestSeen += 1; });
         return true;",
        json!([p.run]),
    );
    b.wait_for("the stream to send the run's events", PATIENCE, |b| {
        b.execute("return window.waygateTestSeen;", json!([])) == json!(p.history().len())
    });

    let second = b.new_tab();
    b.switch_to(&second);
    b.goto(&p.url(&p.run_path()));
    b.find("form#signout button[type=submit]").click_to_leave();
    p.on_page("/signin");
    b.switch_to(&first);

    // Closed by the server, and not reopened (a new try is refused): EventSource.CLOSED.
    b.wait_for(
        "the open page's event stream to end with its session",
        PATIENCE,
        |b| b.execute("return window.waygateTestStream.readyState;", json!([])) == json!(2),
    );
}

/// A form from an earlier session (signed out and in again in another tab) is refused,
/// saying why, and records nothing.
#[test]
fn a_form_of_an_ended_session_is_refused_and_records_nothing() {
    let Some(p) = Page::open("old_form_in_the_browser", Scripts::Off) else {
        return;
    };
    let b = &p.b;
    p.sign_in("appr");
    b.goto(&p.url(&p.run_path()));
    let first = b.window();
    let second = b.new_tab();
    b.switch_to(&second);
    b.goto(&p.url(&p.run_path()));
    b.find("form#signout button[type=submit]").click_to_leave();
    p.sign_in("appr");
    b.switch_to(&first);
    p.approve("sign", "from an old page");
    p.error_says("its CSRF token is missing or out of date");
    let approval = p.last_approval();
    assert_eq!(approval, Value::Null, "recorded from an old form");
}

/// The text after `label` in `message`, up to a comma, a space or the end.
fn path_after(message: &str, label: &str) -> std::path::PathBuf {
    message
        .split(label)
        .nth(1)
        .and_then(|rest| rest.split([',', ' ', '\n']).next())
        .unwrap_or_else(|| panic!("no {label:?} in {message:?}"))
        .into()
}

#[test]
fn a_failing_browser_test_leaves_a_screenshot_and_the_source_and_no_process() {
    let Some(browser) = Browser::with_driver("browser harness") else {
        return;
    };
    let sb = Sandbox::new();
    let page = "data:text/html,<title>t</title><h1>a%20page%20that%20is%20here</h1>";

    // A failure the session finds itself: the message names the files it saved.
    let mut started = None;
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let b = Session::start(&browser, "harness_failure", sb.path(), Scripts::On);
        started = Some((b.profile().to_owned(), b.driver_pid()));
        b.goto(page);
        b.find("#not-here");
    }));
    let payload = failed.expect_err("a missing element fails the test");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("no element matches `#not-here`"),
        "{message}"
    );
    let png = path_after(&message, "screenshot ");
    let html = path_after(&message, "page source ");
    assert!(png.starts_with(browser_failures()), "{message}");
    let bytes = std::fs::read(&png).expect("the screenshot is there");
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG: {png:?}");
    let source = std::fs::read_to_string(&html).expect("the page source is there");
    assert!(source.contains("a page that is here"), "{source}");
    // Nothing left running.
    let (profile, driver) = started.take().expect("the session started");
    assert!(!alive(driver), "chromedriver is still running");
    let left = processes_naming(&profile);
    assert!(left.is_empty(), "left running: {left:#?}");

    // A failure of the test's own (an assertion): the session saves them as it is dropped.
    let before = failures_named("harness_drop");
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let b = Session::start(&browser, "harness_drop", sb.path(), Scripts::On);
        started = Some((b.profile().to_owned(), b.driver_pid()));
        b.goto(page);
        panic!("an assertion of the test failed");
    }));
    assert!(failed.is_err());
    let mut new: Vec<String> = failures_named("harness_drop")
        .into_iter()
        .filter(|n| !before.contains(n))
        .map(|n| n.rsplit('.').next().unwrap_or_default().to_owned())
        .collect();
    new.sort();
    assert_eq!(new, ["html", "png"], "a screenshot and a page source");
    let (profile, driver) = started.take().expect("the session started");
    assert!(!alive(driver), "chromedriver is still running");
    let left = processes_naming(&profile);
    assert!(left.is_empty(), "left running: {left:#?}");
}

/// The files under `target/browser-failures/` whose names start with `test-`.
fn failures_named(test: &str) -> Vec<String> {
    std::fs::read_dir(browser_failures())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{test}-")))
        .collect()
}
