//! The pages of `waygate serve` (`/runs`, `/runs/RUN`, `/audit`, signing in), over real HTTP
//! on 127.0.0.1, as a browser would send them (forms, cookies, Origin) and as a script would
//! (a bearer token). The browser's own view (Chromium) is tested elsewhere; here, what the
//! server answers and what it records.

use crate::helpers::Sandbox;
use crate::serve::{request, Reply, Served};

/// A form body, percent-encoded.
fn form(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// GET `path` with the session `cookie`, if any.
fn get(s: &Served, path: &str, cookie: Option<&str>) -> Reply {
    let cookie = cookie.map(|c| format!("waygate_session={c}"));
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
    request(s.addr, "GET", path, &headers, None)
}

/// GET `path` as `actor`, with a bearer token.
fn get_bearer(s: &Served, path: &str, actor: &str) -> Reply {
    let auth = format!("Bearer {}", s.token(actor));
    request(s.addr, "GET", path, &[("Authorization", &auth)], None)
}

/// POST a form to `path` with the session `cookie`, from this server's own page.
fn post(s: &Served, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Reply {
    let cookie = cookie.map(|c| format!("waygate_session={c}"));
    let origin = format!("http://{}", s.addr);
    let mut headers = vec![("Origin", origin.as_str())];
    headers.extend(cookie.iter().map(|c| ("Cookie", c.as_str())));
    request(
        s.addr,
        "POST",
        path,
        &headers,
        Some(("application/x-www-form-urlencoded", &form(fields))),
    )
}

/// Signs `actor` in through the form; the session cookie's value.
#[track_caller]
fn sign_in(s: &Served, actor: &str) -> String {
    let r = post(s, "/signin", None, &[("token", s.token(actor))]);
    assert_eq!(r.status, 303, "{}", r.body);
    let set = r.header("set-cookie").expect("a cookie");
    let value = set
        .strip_prefix("waygate_session=")
        .and_then(|v| v.split(';').next())
        .expect("the session cookie");
    value.to_owned()
}

/// The hidden CSRF field's value on `page`.
#[track_caller]
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().expect("its value").to_owned()
}

/// The run's `Approved` events (accepted or refused), as the auditor reads them.
fn approvals(s: &Served, run: &str) -> Vec<serde_json::Value> {
    s.history(run)
        .into_iter()
        .filter(|e| e["kind"] == "Approved")
        .collect()
}

#[test]
fn signing_in_sets_a_strict_cookie_and_without_it_a_page_shows_no_data() {
    let s = Served::new();
    let run = s.start("op", "free");

    // Nobody: the sign-in form, 401, and nothing of the store.
    let r = get(&s, "/runs", None);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("<form id=\"signin\""), "{}", r.body);
    assert!(!r.body.contains(&run), "{}", r.body);
    for (name, want) in [
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
        ("referrer-policy", "same-origin"),
    ] {
        assert_eq!(r.header(name), Some(want), "{name}");
    }
    let csp = r.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );

    // A wrong token: 401, the form again saying so, never the token.
    let wrong = "wgt_0123456789abcdef";
    let r = post(&s, "/signin", None, &[("token", wrong)]);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("id=\"error\""), "{}", r.body);
    assert!(r.header("set-cookie").is_none());
    assert!(!r.body.contains(wrong) && !s.log().contains(wrong));

    // A sign-in posted from another site (login CSRF) is refused, even with a good token.
    let r = request(
        s.addr,
        "POST",
        "/signin",
        &[("Origin", "http://evil.example")],
        Some((
            "application/x-www-form-urlencoded",
            &form(&[("token", s.token("appr"))]),
        )),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.header("set-cookie").is_none());

    // The right token: a cookie only this site's pages get, and back to where it was going.
    let r = post(
        &s,
        "/signin",
        None,
        &[
            ("token", s.token("appr")),
            ("next", &format!("/runs/{run}")),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some(format!("/runs/{run}").as_str()));
    let set = r.header("set-cookie").expect("cookie");
    for part in ["waygate_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"), "no TLS here: {set}");
    // `next` elsewhere is ignored.
    let r = post(
        &s,
        "/signin",
        None,
        &[("token", s.token("appr")), ("next", "//evil.example/")],
    );
    assert_eq!(r.header("location"), Some("/runs"));

    let cookie = sign_in(&s, "appr");
    let r = get(&s, "/runs", Some(&cookie));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(&format!("<tr data-run=\"{run}\">")),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("<span id=\"actor\">appr</span>"),
        "{}",
        r.body
    );
    assert!(!s.log().contains(&cookie), "the cookie is never logged");

    // A script with a token needs no session; a wrong token is 401 without data.
    let r = get_bearer(&s, &format!("/runs/{run}"), "aud");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<section id=\"timeline\""), "{}", r.body);
    let r = request(
        s.addr,
        "GET",
        "/runs",
        &[("Authorization", "Bearer wgt_nope")],
        None,
    );
    assert_eq!(r.status, 401);
    assert!(!r.body.contains(&run));

    // The definition as text.
    let r = get(&s, &format!("/runs/{run}/definition"), Some(&cookie));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(r.body.contains("Workflow(name: \"free\""), "{}", r.body);

    // The cookie reads the API too (a page's links and live stream), but changes nothing there.
    let r = get(&s, &format!("/v1/runs/{run}/history"), Some(&cookie));
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie_header = format!("waygate_session={cookie}");
    let r = request(
        s.addr,
        "POST",
        &format!("/v1/runs/{run}/abort"),
        &[("Cookie", &cookie_header)],
        Some(("application/json", r#"{"reason":"by cookie"}"#)),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(s.status(&run), "active");
    let refused = s.log();
    assert!(refused.contains("request refused"), "{refused}");
}

#[test]
fn approving_from_the_page_follows_the_guards_rules_and_needs_the_csrf_token() {
    let s = Served::new();
    // `ana` starts it: under `not_by_initiator` she may not approve it.
    let run = s.start("ana", "signed");
    let page = format!("/runs/{run}");
    let approve = format!("/runs/{run}/approve");

    // An approver sees the prompt and a form per pending guard.
    let appr = sign_in(&s, "appr");
    let r = get(&s, &page, Some(&appr));
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("<form class=\"approve\" data-guard=\"sign\""),
        "{}",
        r.body
    );
    assert!(r
        .body
        .contains("<label for=\"comment-sign\">Comment</label>"));
    assert!(r.body.contains("ok?"), "the prompt: {}", r.body);
    let csrf = csrf_of(&r.body);

    // Without the session's CSRF token, or with another: refused, nothing recorded.
    for token in [None, Some("0".repeat(64))] {
        let mut fields = vec![("guard", "sign"), ("comment", "forged")];
        if let Some(t) = &token {
            fields.push(("csrf", t));
        }
        let r = post(&s, &approve, Some(&appr), &fields);
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("id=\"error\""), "{}", r.body);
    }
    assert!(approvals(&s, &run).is_empty());

    // An auditor sees the prompt but no form, and a POST is 403 and changes nothing.
    let aud = sign_in(&s, "aud");
    let r = get(&s, &page, Some(&aud));
    assert!(r.body.contains("ok?"));
    assert!(!r.body.contains("class=\"approve\""), "{}", r.body);
    assert!(!r.body.contains(">Approve</button>"));
    let aud_csrf = csrf_of(&r.body);
    let r = post(
        &s,
        &approve,
        Some(&aud),
        &[("guard", "sign"), ("csrf", &aud_csrf)],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("needs the role approver"), "{}", r.body);
    assert!(approvals(&s, &run).is_empty());

    // The initiator is refused with the guard's reason, in the CLI's words.
    let ana = sign_in(&s, "ana");
    let ana_csrf = csrf_of(&get(&s, &page, Some(&ana)).body);
    let r = post(
        &s,
        &approve,
        Some(&ana),
        &[("guard", "sign"), ("csrf", &ana_csrf)],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body
            .contains("ana started this run and may not approve it (not_by_initiator)"),
        "{}",
        r.body
    );

    // The approver approves with a hostile comment: recorded as theirs, shown as text.
    let comment = "</td><script>alert(1)</script>";
    let r = post(
        &s,
        &approve,
        Some(&appr),
        &[("guard", "sign"), ("comment", comment), ("csrf", &csrf)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some(page.as_str()));
    let given: Vec<_> = approvals(&s, &run)
        .into_iter()
        .filter(|e| e["accepted"] == true)
        .collect();
    assert_eq!(given.len(), 1, "{given:?}");
    assert_eq!(given[0]["actor"], "appr");
    assert_eq!(given[0]["comment"], comment);
    let r = get(&s, &page, Some(&appr));
    assert!(!r.body.contains("<script>alert"), "{}", r.body);
    // The one script is the live-update file, never inline (the CSP allows no other).
    assert_eq!(
        r.body.matches("<script").count(),
        r.body
            .matches("<script src=\"/static/live.js\" defer></script>")
            .count()
    );
    assert!(
        r.body.contains("/static/live.js"),
        "the run is active: followed live"
    );
    let js = get(&s, "/static/live.js", None);
    assert_eq!(js.status, 200);
    assert!(js.body.contains("/events?after="), "{}", js.body);
    assert!(r
        .body
        .contains("&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    let seq = given[0]["seq"].as_u64().expect("seq");
    assert!(r
        .body
        .contains(&format!("<tr class=\"event\" data-seq=\"{seq}\">")));
}

#[test]
fn signing_out_or_revoking_the_token_ends_the_session() {
    let s = Served::new();
    let appr = sign_in(&s, "appr");
    let r = get(&s, "/runs", Some(&appr));
    assert_eq!(r.status, 200);
    let csrf = csrf_of(&r.body);

    // Signing out needs the CSRF token too.
    let r = post(&s, "/signout", Some(&appr), &[]);
    assert_eq!(r.status, 403);
    assert_eq!(get(&s, "/runs", Some(&appr)).status, 200);
    let r = post(&s, "/signout", Some(&appr), &[("csrf", &csrf)]);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/signin"));
    assert!(r
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
    // The old cookie is worth nothing now, kept or not.
    let r = get(&s, "/runs", Some(&appr));
    assert_eq!(r.status, 401);
    assert!(r.body.contains("<form id=\"signin\""));

    // Revoking the token ends its sessions at the next request.
    let aud = sign_in(&s, "aud");
    assert_eq!(get(&s, "/audit", Some(&aud)).status, 200);
    s.sb.wg(&["token", "revoke", "--actor", "aud", "--file", "tokens.ron"])
        .code(0);
    let r = get(&s, "/audit", Some(&aud));
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("revoked"), "{}", r.body);
    assert!(!r.body.contains("id=\"chain\""));
}

#[test]
fn the_audit_page_links_its_query_as_csv_and_json_and_shows_the_chain() {
    let sb = Sandbox::new();
    sb.write(
        "workflows/quoted.ron",
        r#"Workflow(name: "quoted", initial: "a", environments: { "it's \"q\"": () },
            states: { "a": (), "done": (terminal: Success) },
            transitions: [(from: "a", to: "done")])"#,
    );
    let s = Served::with(sb, &[]);
    let (status, body) = s.call(
        Some("op"),
        "POST",
        "/v1/runs",
        Some(serde_json::json!({ "workflow": "quoted", "env": "it's \"q\"" })),
    );
    assert_eq!(status, 201, "{body}");
    let run = body["run_id"].as_str().expect("run").to_owned();
    let aud = sign_in(&s, "aud");

    // An environment with quotes is shown as text and filters the list.
    let r = get(&s, "/runs?env=it%27s+%22q%22", Some(&aud));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("<td>it&#39;s &quot;q&quot;</td>"),
        "{}",
        r.body
    );
    assert!(r.body.contains(&format!("data-run=\"{run}\"")));
    let r = get(&s, "/runs?env=dev", Some(&aud));
    assert!(!r.body.contains(&format!("data-run=\"{run}\"")));
    assert_eq!(get(&s, &format!("/runs/{run}"), Some(&aud)).status, 200);
    // A time the CLI would refuse is refused here in its words.
    let r = get(&s, "/runs?since=yesterday", Some(&aud));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("expected an RFC 3339 time"), "{}", r.body);

    let r = get(&s, "/audit?kind=RunStarted&since=2020-01-01", Some(&aud));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<table id=\"events\">"), "{}", r.body);
    assert!(r.body.contains("<code id=\"head-seq\">"), "{}", r.body);
    assert!(r.body.contains("Intact"), "{}", r.body);
    assert!(r
        .body
        .contains("href=\"/v1/audit?kind=RunStarted&amp;since=2020-01-01&amp;format=csv\""));
    // The link works with the cookie: the same events as CSV.
    let r = get(
        &s,
        "/v1/audit?kind=RunStarted&since=2020-01-01&format=csv",
        Some(&aud),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    let mut lines = r.body.lines();
    assert_eq!(
        lines.next(),
        Some("seq,run_id,at,actor,kind,summary,prev_hash,hash")
    );
    assert!(lines.all(|l| l.contains(",RunStarted,")));
    assert!(r.body.contains(&run));
}

#[test]
fn a_run_page_shows_what_changed_in_the_definition_since_the_previous_run() {
    let s = Served::new();
    let first = s.start("op", "free");
    let aud = sign_in(&s, "aud");
    let r = get(&s, &format!("/runs/{first}"), Some(&aud));
    assert!(
        r.body.contains("There is no earlier run of free in dev"),
        "{}",
        r.body
    );
    let (status, body) = s.act(
        "op",
        "abort",
        &first,
        serde_json::json!({ "reason": "next" }),
    );
    assert_eq!(status, 200, "{body}");

    // The same definition: no change.
    let second = s.start("op", "free");
    let r = get(&s, &format!("/runs/{second}"), Some(&aud));
    assert!(
        r.body.contains("No change since the previous run"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&format!("href=\"/runs/{first}\"")),
        "{}",
        r.body
    );
    s.act(
        "op",
        "abort",
        &second,
        serde_json::json!({ "reason": "next" }),
    );

    // A new state in the file: the diff marks the new line.
    let text = crate::serve::WORKFLOWS[0].1.replace(
        "initial: \"a\",",
        "initial: \"a\",\n    description: \"v2 <new>\",",
    );
    let (status, body) = s.call(
        Some("adm"),
        "PUT",
        "/v1/workflows/free",
        Some(serde_json::json!({ "text": text })),
    );
    assert_eq!(status, 200, "{body}");
    let third = s.start("op", "free");
    let r = get(&s, &format!("/runs/{third}"), Some(&aud));
    let section = r
        .body
        .split("<section id=\"definition-diff\"")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .expect("the diff section");
    assert!(
        section.contains(&format!("href=\"/runs/{second}\"")),
        "{section}"
    );
    assert!(
        section.contains("<span class=\"add\">+     description: &quot;v2 &lt;new&gt;&quot;,")
            && section.contains("<span class=\"del\">- Workflow(name: &quot;free&quot;"),
        "{section}"
    );
}
