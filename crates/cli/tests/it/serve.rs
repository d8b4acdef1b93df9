//! `waygate serve`: a real server on 127.0.0.1, spoken to over real HTTP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{files_containing, wait_until, Sandbox, Spawned};

/// A guard-free workflow, one with an approval its initiator may not give, and one that
/// waits two seconds (a drive that outlives its client and its server).
const FREE: &str = r#"Workflow(name: "free", initial: "a", environments: { "dev": () },
    states: { "a": (), "done": (terminal: Success) },
    transitions: [(from: "a", to: "done")])"#;
const SIGNED: &str = r#"Workflow(name: "signed", initial: "a", environments: { "dev": () },
    states: { "a": (), "done": (terminal: Success), "undone": (terminal: Failure) },
    transitions: [
        (from: "a", to: "done", guards: [(name: "sign", check: Approval(prompt: "ok?", not_by_initiator: true))]),
        (from: "a", to: "undone", guards: [(name: "never", check: Approval(prompt: "no", approvers: ["nobody"]))]),
    ],
    rollback: "undone")"#;
const BAKE: &str = r#"Workflow(name: "bake", initial: "a", environments: { "dev": () },
    states: { "a": (), "done": (terminal: Success) },
    transitions: [(from: "a", to: "done", guards: [(name: "bake", check: Wait(duration: "2s"))])])"#;

/// The workflows the server tests use, by file name.
pub const WORKFLOWS: [(&str, &str); 3] = [("free", FREE), ("signed", SIGNED), ("bake", BAKE)];

/// A sandbox with workflows, a tokens file with one actor per role, and a running server.
pub struct Served {
    pub sb: Sandbox,
    pub server: Option<Spawned>,
    pub addr: SocketAddr,
    /// Tokens by actor: auditor `aud`, approver `appr`, operator `op`, admin `adm`, and `ana`
    /// (operator and approver).
    tokens: Vec<(String, String)>,
}

impl Served {
    pub fn new() -> Served {
        Served::with(Sandbox::new(), &[])
    }

    /// A server on `sb`'s store, with `serve_flags` after `serve`.
    pub fn with(sb: Sandbox, serve_flags: &[&str]) -> Served {
        for (name, text) in WORKFLOWS {
            sb.write(&format!("workflows/{name}.ron"), text);
        }
        sb.write("workflows/broken.ron", "Workflow(name: ");
        let mut tokens = Vec::new();
        for (actor, roles) in [
            ("aud", &["auditor"][..]),
            ("appr", &["approver"]),
            ("op", &["operator"]),
            ("adm", &["admin"]),
            ("ana", &["operator", "approver"]),
        ] {
            tokens.push((actor.to_owned(), new_token(&sb, actor, roles)));
        }
        let (server, addr) = spawn_server_args(&sb, "serve", None, &[], serve_flags, &[]);
        Served {
            sb,
            server: Some(server),
            addr,
            tokens,
        }
    }

    pub fn token(&self, actor: &str) -> &str {
        self.tokens
            .iter()
            .find(|(a, _)| a == actor)
            .map(|(_, t)| t.as_str())
            .expect("known actor")
    }

    /// `METHOD PATH` as `actor` (no token when `None`), with a JSON body.
    pub fn call(
        &self,
        actor: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = actor.map(|a| self.token(a).to_owned());
        let (status, text) = http(
            self.addr,
            method,
            path,
            token.as_deref(),
            body.map(|b| b.to_string()).as_deref(),
        );
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// Starts a run of `workflow` as `actor`; returns its id.
    #[track_caller]
    pub fn start(&self, actor: &str, workflow: &str) -> String {
        let (status, body) = self.call(
            Some(actor),
            "POST",
            "/v1/runs",
            Some(json!({ "workflow": workflow, "env": "dev" })),
        );
        assert_eq!(status, 201, "{body}");
        body["run_id"].as_str().expect("run_id").to_owned()
    }

    /// The run's events, as the auditor reads them.
    pub fn history(&self, run: &str) -> Vec<Value> {
        let (status, body) =
            self.call(Some("aud"), "GET", &format!("/v1/runs/{run}/history"), None);
        assert_eq!(status, 200, "{body}");
        body.as_array().cloned().unwrap_or_default()
    }

    /// The run's status (`active`, `waiting`, `succeeded`...), as the auditor reads it.
    pub fn status(&self, run: &str) -> Value {
        let (_, body) = self.call(Some("aud"), "GET", &format!("/v1/runs/{run}"), None);
        body["run"]["status"].clone()
    }

    /// Asks the server, as `actor`, to `verb` (`drive`, `approve`...) run `run` with `body`.
    pub fn act(&self, actor: &str, verb: &str, run: &str, body: Value) -> (u16, Value) {
        self.call(
            Some(actor),
            "POST",
            &format!("/v1/runs/{run}/{verb}"),
            Some(body),
        )
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.server
            .as_ref()
            .map(Spawned::stderr)
            .unwrap_or_default()
    }
}

/// `waygate token new` for `actor` with `roles` in the sandbox's `tokens.ron`; the token.
pub fn new_token(sb: &Sandbox, actor: &str, roles: &[&str]) -> String {
    let mut args = vec!["token", "new", "--actor", actor, "--file", "tokens.ron"];
    for r in roles {
        args.extend(["--role", r]);
    }
    sb.wg(&args).code(0).stdout.trim().to_owned()
}

/// Starts `waygate serve` on a free port of 127.0.0.1 and waits until it listens.
pub fn spawn_server(sb: &Sandbox, tag: &str) -> (Spawned, SocketAddr) {
    spawn_server_with(sb, tag, &[], &[])
}

/// `serve` on any free port of 127.0.0.1 with the sandbox's tokens and workflows.
pub const SERVE: [&str; 7] = [
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--tokens",
    "tokens.ron",
    "--workflows",
    "workflows",
];

/// [`spawn_server`] with global flags before `serve` and variables in its environment.
pub fn spawn_server_with(
    sb: &Sandbox,
    tag: &str,
    flags: &[&str],
    env: &[(&str, &str)],
) -> (Spawned, SocketAddr) {
    spawn_server_args(sb, tag, None, flags, &[], env)
}

/// [`spawn_server_with`] on the store `store` names (the sandbox's when `None`), with
/// `serve_flags` after `serve` (`--tls-cert`, `--lease`, ..).
pub fn spawn_server_args(
    sb: &Sandbox,
    tag: &str,
    store: Option<&str>,
    flags: &[&str],
    serve_flags: &[&str],
    env: &[(&str, &str)],
) -> (Spawned, SocketAddr) {
    let mut args = flags.to_vec();
    args.extend(SERVE);
    args.extend(serve_flags);
    let (out, err) = (
        sb.path().join(format!("{tag}.stdout")),
        sb.path().join(format!("{tag}.stderr")),
    );
    let store = store.map_or_else(|| sb.store_arg(), Into::into);
    let child = sb
        .command_on(&store, "ignored", &args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawn waygate serve");
    let server = Spawned::from_child(child, out, err);
    let mut addr = None;
    wait_until("the server listens", Duration::from_secs(20), || {
        addr = server
            .stderr()
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|url| url.split_once("://"))
            .map(|(_, addr)| addr)
            .and_then(|a| a.parse().ok());
        addr.is_some()
    });
    (server, addr.expect("address"))
}

/// One HTTP/1.1 request; the status and the body (chunked bodies decoded).
/// The message of the API's error `reply` (empty if it is none).
pub fn error_message(reply: &Value) -> &str {
    reply["error"]["message"].as_str().unwrap_or("")
}

/// Asserts that `answer` (a status and a reply) is the API's error `code` with that HTTP
/// `status`; returns its message.
#[track_caller]
pub fn api_error(answer: &(u16, Value), status: u16, code: &str) -> String {
    let (got, reply) = answer;
    assert_eq!(
        (*got, reply["error"]["code"].as_str()),
        (status, Some(code)),
        "{reply}"
    );
    error_message(reply).to_owned()
}

pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let body = (method != "GET").then(|| ("application/json", body.unwrap_or("")));
    let reply = request(addr, method, path, &headers, body);
    (reply.status, reply.body)
}

/// An HTTP answer: status, head (status line and headers) and body.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    /// Every value of header `name` (any case).
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }
}

/// `METHOD PATH` with `headers` and a body of (content type, text), over a new connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> Reply {
    try_request(addr, method, path, headers, body, Duration::from_secs(30))
        .expect("connect and send")
}

/// [`request`], waiting at most `patience` for each read, and an error when it cannot connect
/// or send (for a caller that must not panic, such as a drop while a test fails).
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
    patience: Duration,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(patience))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let (kind, body) = body.unwrap_or(("", ""));
    if !kind.is_empty() {
        head.push_str(&format!(
            "Content-Type: {kind}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // A body the server refuses may be cut off mid-way: that is the server's right.
    let _ = stream.write_all(body.as_bytes());
    let raw = read_response(&mut stream);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok(Reply {
        status,
        head: head.to_owned(),
        body: if chunked {
            dechunk(rest)
        } else {
            rest.to_owned()
        },
    })
}

/// A response's bytes: up to its `Content-Length` when it has one (a server may keep the
/// connection open after it, as chromedriver does), else up to the end of the connection.
fn read_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .filter_map(|l| l.strip_prefix("content-length:"))
                .find_map(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| raw.len() >= end + 4 + n) {
                return raw;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return raw,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Every route, its method, body and the lowest role that may call it.
fn routes(run: &str) -> Vec<(&'static str, String, Option<Value>, &'static str)> {
    vec![
        ("GET", "/v1/workflows".into(), None, "auditor"),
        ("GET", "/v1/runs".into(), None, "auditor"),
        ("GET", format!("/v1/runs/{run}"), None, "auditor"),
        ("GET", format!("/v1/runs/{run}/history"), None, "auditor"),
        ("GET", "/v1/audit".into(), None, "auditor"),
        ("GET", "/v1/audit/verify".into(), None, "auditor"),
        (
            "POST",
            format!("/v1/runs/{run}/approve"),
            Some(json!({ "guard": "never" })),
            "approver",
        ),
        (
            "POST",
            "/v1/runs".into(),
            Some(json!({ "workflow": "free", "env": "nowhere" })),
            "operator",
        ),
        (
            "POST",
            format!("/v1/runs/{run}/check"),
            Some(json!({})),
            "operator",
        ),
        (
            "POST",
            format!("/v1/runs/{run}/advance"),
            Some(json!({ "to": "nowhere" })),
            "operator",
        ),
        (
            "POST",
            format!("/v1/runs/{run}/drive"),
            Some(json!({ "no_wait": true, "wait": true })),
            "operator",
        ),
        (
            "POST",
            format!("/v1/runs/{run}/rollback"),
            Some(json!({ "reason": " " })),
            "operator",
        ),
        (
            "POST",
            format!("/v1/runs/{run}/abort"),
            Some(json!({ "reason": "" })),
            "operator",
        ),
        (
            "POST",
            format!("/v1/runs/{run}/override"),
            Some(json!({ "guard": "never", "reason": " " })),
            "operator",
        ),
        ("POST", "/v1/workflows/reload".into(), None, "admin"),
        (
            "PUT",
            "/v1/workflows/free".into(),
            Some(json!({ "text": "not a workflow" })),
            "admin",
        ),
    ]
}

#[test]
fn every_role_against_every_route() {
    let s = Served::new();
    let run = s.start("op", "signed");
    let before = s.history(&run);
    let rank = |r: &str| {
        ["auditor", "approver", "operator", "admin"]
            .iter()
            .position(|x| *x == r)
    };
    // (actor, its role)
    let callers = [
        ("aud", "auditor"),
        ("appr", "approver"),
        ("op", "operator"),
        ("adm", "admin"),
    ];
    for (method, path, body, needs) in routes(&run) {
        let (status, reply) = s.call(None, method, &path, body.clone());
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (401, Some("not_authenticated")),
            "{method} {path} without a token"
        );
        for (actor, role) in callers {
            let (status, reply) = s.call(Some(actor), method, &path, body.clone());
            if rank(role) >= rank(needs) {
                assert!(
                    status != 401 && status != 403,
                    "{actor} {method} {path}: {status} {reply}"
                );
            } else {
                assert_eq!(status, 403, "{actor} {method} {path}: {reply}");
                assert_eq!(reply["error"]["code"], "not_allowed");
            }
        }
    }
    // The event stream (not in `routes`: allowed, it stays open while the run waits) needs a
    // known token like every other route.
    for token in [None, Some("wgt_0123")] {
        let (status, reply) = http(
            s.addr,
            "GET",
            &format!("/v1/runs/{run}/events"),
            token,
            None,
        );
        assert_eq!(status, 401, "events with {token:?}: {reply}");
    }
    // The allowed calls were built to change nothing (a refused approval is recorded as
    // refused, so the one approval call by each of three roles adds three events); the
    // refused ones changed nothing at all.
    let after = s.history(&run);
    let added: Vec<&str> = after[before.len()..]
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or(""))
        .collect();
    assert!(
        added
            .iter()
            .all(|k| *k == "Approved" || *k == "GuardsEvaluated"),
        "{added:?}"
    );
    assert!(after[before.len()..].iter().all(|e| e["actor"] != "aud"));
    let log = s.log();
    assert!(log.contains("reason=\"forbidden\""), "{log}");
    for (_, token) in &s.tokens {
        assert!(!log.contains(&token[4..]), "a token is in the log");
    }
}

#[test]
fn missing_wrong_and_revoked_tokens_are_refused_and_counted() {
    let s = Served::new();
    let ok = s.call(Some("aud"), "GET", "/v1/runs", None);
    assert_eq!(ok.0, 200, "{}", ok.1);
    let (status, _) = http(s.addr, "GET", "/v1/runs", Some("wgt_0123"), None);
    assert_eq!(status, 401);
    let (status, _) = http(s.addr, "GET", "/v1/runs", Some(""), None);
    assert_eq!(status, 401);
    s.sb.wg(&["token", "revoke", "--actor", "aud", "--file", "tokens.ron"])
        .code(0);
    let (status, reply) = s.call(Some("aud"), "GET", "/v1/runs", None);
    assert_eq!(status, 401, "a revoked token still works: {reply}");
    assert!(error_message(&reply).contains("revoked"), "{reply}");
    // The others still work.
    assert_eq!(s.call(Some("adm"), "GET", "/v1/runs", None).0, 200);
    let (_, metrics) = http(s.addr, "GET", "/metrics", None, None);
    // An empty bearer token is no token.
    assert!(
        metrics.contains("waygate_auth_refused_total{reason=\"missing\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("waygate_auth_refused_total{reason=\"unknown\"} 2"),
        "{metrics}"
    );
}

#[test]
fn the_actor_is_the_authenticated_one_and_an_initiator_cannot_approve_their_run() {
    let s = Served::new();
    let run = s.start("ana", "signed");
    let message = api_error(
        &s.act("ana", "approve", &run, json!({ "guard": "sign" })),
        422,
        "error",
    );
    assert!(message.contains("approval refused"), "{message}");
    let (status, reply) = s.act(
        "appr",
        "approve",
        &run,
        json!({ "guard": "sign", "comment": "fine" }),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["approvers"], json!(["appr"]));
    let (status, reply) = s.act("op", "advance", &run, json!({}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["outcome"]["kind"], "ended", "{reply}");
    let actors: Vec<(String, String)> = s
        .history(&run)
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").to_owned(),
                e["actor"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(actors[0], ("RunStarted".into(), "ana".into()));
    assert!(
        actors.contains(&("Approved".into(), "appr".into())),
        "{actors:?}"
    );
    assert!(
        actors.contains(&("Transitioned".into(), "op".into())),
        "{actors:?}"
    );
}

/// `/v1/audit?format=csv` writes cells through the same rule as the CLI's CSV: text holding a
/// `;` quoted (a spreadsheet splitting on `;` starts no `=1+1` cell inside a comment), the
/// text exact inside; the JSON is the exact record.
#[test]
fn the_audit_csv_route_starts_no_spreadsheet_formula() {
    let s = Served::new();
    let run = s.start("ana", "signed");
    let comment = "looks fine;=1+1";
    let (status, reply) = s.act(
        "appr",
        "approve",
        &run,
        json!({ "guard": "sign", "comment": comment }),
    );
    assert_eq!(status, 200, "{reply}");
    let reason = "=HYPERLINK(\"http://evil\",\"x\")";
    let (status, reply) = s.act("op", "abort", &run, json!({ "reason": reason }));
    assert_eq!(status, 200, "{reply}");

    let (status, csv) = http(
        s.addr,
        "GET",
        &format!("/v1/audit?run={run}&format=csv"),
        Some(s.token("aud")),
        None,
    );
    assert_eq!(status, 200, "{csv}");
    assert!(
        csv.contains(",appr,Approved,\"approved `sign`: looks fine;=1+1\","),
        "{csv}"
    );
    assert!(
        csv.contains(",op,Aborted,\"aborted in `a`: =HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\","),
        "{csv}"
    );
    let history = s.history(&run);
    let of = |kind: &str, field: &str| {
        history
            .iter()
            .find(|e| e["kind"] == kind)
            .map(|e| e[field].clone())
    };
    assert_eq!(of("Approved", "comment"), Some(json!(comment)));
    assert_eq!(of("Aborted", "reason"), Some(json!(reason)));
}

#[test]
fn bad_requests_get_clear_errors_and_change_nothing() {
    let s = Served::new();
    let run = s.start("op", "free");
    let before = s.history(&run);
    // A workflow name is looked up, never joined to a path.
    for name in ["../workflows/free", "free.ron", "/etc/passwd", "broken"] {
        let (status, reply) = s.call(
            Some("op"),
            "POST",
            "/v1/runs",
            Some(json!({ "workflow": name, "env": "dev" })),
        );
        assert_eq!(status, 422, "{name}: {reply}");
        assert!(
            error_message(&reply).contains("no workflow named"),
            "{reply}"
        );
    }
    // An unknown run, on every route that names one.
    for (method, path, body, _) in routes("20260101-000000-dead") {
        if !path.contains("dead") {
            continue;
        }
        // Valid bodies: a blank reason is refused before the run is looked for.
        let body = body.map(|mut b| {
            if b.get("reason").is_some() {
                b["reason"] = json!("why");
            }
            b
        });
        let (status, reply) = s.call(Some("adm"), method, &path, body);
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{method} {path}: {reply}"
        );
    }
    let (status, _) = s.call(Some("adm"), "GET", "/v1/runs/..%2F..%2Fetc/history", None);
    assert_eq!(status, 404);
    // A body larger than the server takes.
    let big = json!({ "reason": "x".repeat(200 * 1024) }).to_string();
    let (status, reply) = http(
        s.addr,
        "POST",
        &format!("/v1/runs/{run}/abort"),
        Some(s.token("op")),
        Some(&big),
    );
    // Refused on its announced length, before it is read: still the API's JSON error.
    let reply: Value = serde_json::from_str(&reply).unwrap_or(Value::String(reply));
    api_error(&(status, reply), 413, "too_large");
    // A method the route does not take.
    api_error(
        &s.call(Some("adm"), "DELETE", &format!("/v1/runs/{run}"), None),
        405,
        "wrong_method",
    );
    // A run id in the URL that is no UTF-8.
    api_error(
        &s.call(Some("adm"), "GET", "/v1/runs/%FF/history", None),
        400,
        "usage",
    );
    // Malformed and unexpected JSON.
    for body in ["{", "[]", r#"{"reason": "x", "force": true}"#] {
        let (status, reply) = http(
            s.addr,
            "POST",
            &format!("/v1/runs/{run}/abort"),
            Some(s.token("op")),
            Some(body),
        );
        assert_eq!(status, 400, "{body}: {reply}");
    }
    api_error(
        &s.act("op", "abort", &run, json!({ "reason": "  " })),
        400,
        "usage",
    );
    assert_eq!(s.history(&run), before);
    let (status, reply) = s.call(Some("aud"), "GET", "/v1/workflows", None);
    assert_eq!(status, 200);
    assert_eq!(
        reply["rejected"][0]["file"], "workflows/broken.ron",
        "{reply}"
    );
}

#[test]
fn a_client_that_sends_nothing_is_dropped_and_blocks_nobody() {
    let s = Served::new();
    let silent = TcpStream::connect(s.addr).expect("connect");
    assert_eq!(s.call(Some("aud"), "GET", "/v1/runs", None).0, 200);
    assert_closed_within(silent, Instant::now(), Duration::from_secs(15));
}

/// Waits for the server to close `conn` (reading what it sends); fails when that takes
/// `limit` or more since `since` (the header-read timeout is 10 s).
#[track_caller]
pub fn assert_closed_within(mut conn: TcpStream, since: Instant, limit: Duration) {
    conn.set_read_timeout(Some(limit + Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = Vec::new();
    let _ = conn.read_to_end(&mut buf);
    assert!(
        since.elapsed() < limit,
        "the silent connection was kept {:?}",
        since.elapsed()
    );
}

#[test]
fn a_secret_is_in_no_response_and_no_log() {
    const SECRET: &str = "s3cr3t-Qv7-PLUGH";
    let sb = Sandbox::new();
    sb.write(
        "workflows/secret.ron",
        r#"Workflow(name: "secret", initial: "a", environments: { "dev": () },
            vars: { "token": (secret: true, from_env: "DEPLOY_TOKEN") },
            states: { "a": (on_enter: [Command(run: ["sh", "-c", "echo using $0", "${token}"])]), "done": (terminal: Success) },
            transitions: [(from: "a", to: "done", guards: [(name: "t", check: Command(run: ["sh", "-c", "echo checking $0; echo $0 >&2", "${token}"]))])])"#,
    );
    let token = new_token(&sb, "op", &["operator"]);
    let (server, addr) = spawn_server_with(&sb, "serve", &["-vv"], &[("DEPLOY_TOKEN", SECRET)]);
    let mut replies = Vec::new();
    let (status, reply) = http(
        addr,
        "POST",
        "/v1/runs",
        Some(&token),
        Some(r#"{"workflow":"secret","env":"dev"}"#),
    );
    assert_eq!(status, 201, "{reply}");
    let run: Value = serde_json::from_str(&reply).expect("json");
    let run = run["run_id"].as_str().expect("id").to_owned();
    replies.push(reply);
    for (method, path, body) in [
        ("POST", format!("/v1/runs/{run}/check"), "{}"),
        ("POST", format!("/v1/runs/{run}/drive"), r#"{"wait":true}"#),
        ("GET", format!("/v1/runs/{run}"), ""),
        ("GET", format!("/v1/runs/{run}/history"), ""),
        ("GET", format!("/v1/runs/{run}/events"), ""),
        ("GET", "/v1/audit".to_owned(), ""),
    ] {
        let (status, reply) = http(addr, method, &path, Some(&token), Some(body));
        assert_eq!(status, 200, "{path}: {reply}");
        replies.push(reply);
    }
    assert!(replies[2].contains("succeeded"), "{}", replies[2]);
    assert!(
        replies.iter().any(|r| r.contains("checking ***")),
        "{replies:?}"
    );
    for r in &replies {
        assert!(!r.contains(SECRET), "the secret is in a response: {r}");
    }
    server.signal(libc::SIGTERM);
    let ran = server.wait(Duration::from_secs(30));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(!ran.stderr.contains(SECRET), "the secret is in the log");
    assert!(!ran.stderr.contains(&token[4..]), "the token is in the log");
    assert!(files_containing(&sb.store(), SECRET.as_bytes()).is_empty());
}

#[test]
fn a_driven_run_goes_on_without_its_client_and_after_kill_9() {
    let mut s = Served::new();
    let run = s.start("op", "bake");
    let (status, reply) = s.act("op", "drive", &run, json!({}));
    assert_eq!(
        (status, reply["driving"].as_bool()),
        (202, Some(true)),
        "{reply}"
    );
    // The server dies before the bake is over; the next one drives the run to its end.
    s.server.take().expect("server").kill9();
    let (server, addr) = spawn_server(&s.sb, "serve-again");
    s.server = Some(server);
    s.addr = addr;
    wait_until("the run succeeds", Duration::from_secs(30), || {
        let (_, body) = s.call(Some("aud"), "GET", &format!("/v1/runs/{run}"), None);
        body["run"]["status"] == "succeeded"
    });
    let history = s.history(&run);
    let moved = history
        .iter()
        .find(|e| e["kind"] == "Transitioned")
        .expect("moved");
    assert_eq!(
        moved["actor"], "op",
        "the resumed drive acts as who asked for it"
    );
    assert!(s.log().contains("resuming a drive"), "{}", s.log());
    // Its record is crossed out: a third server has nothing to resume.
    wait_until("the record is crossed out", Duration::from_secs(10), || {
        std::fs::read_dir(s.sb.store().join("serve/driving"))
            .map(|d| d.count() == 0)
            .unwrap_or(false)
    });
    let server = s.server.take().expect("server");
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait(Duration::from_secs(30)).code, 0);
}

#[test]
fn an_approval_through_the_server_wakes_the_drive_waiting_for_it() {
    let s = Served::new();
    let run = s.start("op", "signed");
    let (status, reply) = s.act("op", "drive", &run, json!({}));
    assert_eq!(status, 202, "{reply}");
    wait_until("the drive waits", Duration::from_secs(10), || {
        s.status(&run) == "waiting"
    });
    let (status, reply) = s.act("appr", "approve", &run, json!({"guard": "sign"}));
    assert_eq!(status, 200, "{reply}");
    // The drive's own look at the store comes every 30 s; the approval wakes it long before.
    wait_until("the run succeeds", Duration::from_secs(15), || {
        s.status(&run) == "succeeded"
    });
}

#[test]
fn health_readiness_and_metrics_need_no_token() {
    let s = Served::new();
    assert_eq!(
        http(s.addr, "GET", "/healthz", None, None),
        (200, "ok\n".to_owned())
    );
    let (status, body) = http(s.addr, "GET", "/readyz", None, None);
    assert_eq!((status, body.as_str()), (200, "ready: 3 workflows\n"));
    s.start("op", "free");
    let bake = s.start("op", "signed");
    let (status, reply) = s.act("op", "advance", &bake, json!({}));
    assert_eq!(status, 200, "{reply}");
    let free = s.start("adm", "bake");
    let (status, reply) = s.act("op", "drive", &free, json!({ "wait": true }));
    assert_eq!(status, 200, "{reply}");
    let (status, body) = http(s.addr, "GET", "/metrics", None, None);
    assert_eq!(status, 200);
    for line in [
        "waygate_runs{status=\"active\"} 1",
        "waygate_runs{status=\"waiting\"} 1",
        "waygate_runs{status=\"succeeded\"} 1",
        "waygate_transitions_total{cause=\"advance\"} 1",
        "waygate_guard_evaluations_total{kind=\"Wait\",outcome=\"pass\"} 1",
        "waygate_guard_evaluations_total{kind=\"Approval\",outcome=\"waiting\"} 2",
        "waygate_store_commit_seconds_count",
        "waygate_workflows_rejected 1",
        "waygate_http_requests_total{route=\"/v1/runs\",code=\"201\"} 3",
    ] {
        assert!(body.contains(line), "{line} not in\n{body}");
    }
}

#[test]
fn a_local_command_on_a_store_a_server_holds_names_the_server() {
    let s = Served::new();
    let ran = s.sb.wg(&["runs"]);
    ran.code(5);
    let url = format!("http://{}", s.addr);
    assert!(
        ran.stderr
            .contains(&format!("held by `waygate serve` at {url}")),
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains("waiting for the store"),
        "{}",
        ran.stderr
    );
    // A second server on the same store is refused the same way.
    let second = s.sb.wg(&SERVE);
    second.code(5);
    // Once the server stops, the store is the command line's again.
    let mut s = s;
    let server = s.server.take().expect("server");
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait(Duration::from_secs(30)).code, 0);
    s.sb.wg(&["runs"]).code(0);
}

#[test]
fn sigterm_stops_a_server_mid_drive_and_the_next_one_finishes_the_run() {
    let mut s = Served::new();
    let run = s.start("op", "bake");
    // Asked twice, at once: one drive.
    for _ in 0..2 {
        let (status, reply) = s.act("op", "drive", &run, json!({}));
        assert_eq!(status, 202, "{reply}");
    }
    let server = s.server.take().expect("server");
    server.signal(libc::SIGTERM);
    let stopped = server.wait(Duration::from_secs(15));
    assert_eq!(stopped.code, 0, "{}", stopped.stderr);
    stopped.stderr_has("resumed at its next start");
    let (server, addr) = spawn_server(&s.sb, "serve-again");
    s.server = Some(server);
    s.addr = addr;
    wait_until("the run succeeds", Duration::from_secs(30), || {
        let (_, body) = s.call(Some("aud"), "GET", &format!("/v1/runs/{run}"), None);
        body["run"]["status"] == "succeeded"
    });
    let moves = s
        .history(&run)
        .iter()
        .filter(|e| e["kind"] == "Transitioned")
        .count();
    assert_eq!(moves, 1, "the run moved once");
}

#[test]
fn an_admin_uploads_a_workflow_that_validates_and_nothing_else() {
    let s = Served::new();
    let text = FREE.replace("\"free\"", "\"fresh\"");
    // (who, name, text, status)
    let cases: [(&str, &str, &str, u16); 5] = [
        ("op", "fresh", &text, 403),
        ("adm", "fresh", "Workflow(name: ", 422),
        ("adm", "other", &text, 422),
        ("adm", "..%2Fescape", &text, 400),
        ("adm", "fresh", &text, 201),
    ];
    for (who, name, body, want) in cases {
        let (status, reply) = s.call(
            Some(who),
            "PUT",
            &format!("/v1/workflows/{name}"),
            Some(json!({ "text": body })),
        );
        assert_eq!(status, want, "{who} {name}: {reply}");
    }
    assert!(!s.sb.path().join("escape.ron").exists());
    assert!(!s.sb.path().join("workflows/other.ron").exists());
    assert_eq!(
        std::fs::read_to_string(s.sb.path().join("workflows/fresh.ron")).expect("written"),
        text
    );
    s.start("op", "fresh");
}

#[test]
fn event_streams_beyond_the_limit_are_refused_with_json_and_counted() {
    let s = Served::with(Sandbox::new(), &["--max-streams", "1"]);
    let run = s.start("op", "free");
    let path = format!("/v1/runs/{run}/events");
    // One stream, held open.
    let mut open = TcpStream::connect(s.addr).expect("connect");
    open.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        s.addr,
        s.token("aud")
    );
    open.write_all(head.as_bytes()).expect("send head");
    let mut first = [0u8; 12];
    open.read_exact(&mut first).expect("the stream answers");
    assert_eq!(
        &first,
        b"HTTP/1.1 200",
        "{}",
        String::from_utf8_lossy(&first)
    );
    // A second one is one too many.
    let message = api_error(&s.call(Some("aud"), "GET", &path, None), 503, "busy");
    assert!(message.contains("1 event streams open"), "{message}");
    let (_, metrics) = http(s.addr, "GET", "/metrics", None, None);
    assert!(
        metrics.contains("waygate_event_streams_refused_total 1"),
        "{metrics}"
    );
    // `waygate drive` through the server still drives the run, without its events, and says so.
    let out: crate::helpers::Ran =
        s.sb.command("op", &["drive", &run])
            .env("WAYGATE_SERVER", format!("http://{}", s.addr))
            .env("WAYGATE_TOKEN", s.token("op"))
            .output()
            .expect("waygate runs")
            .into();
    out.code(0)
        .stderr_has("note: not showing the run's events")
        .stderr_has("1 event streams open");
    assert_eq!(s.status(&run), "succeeded");
    drop(open);
}
