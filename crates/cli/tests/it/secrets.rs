//! A `secret: true` variable is used by guards and actions but its bytes are never written to
//! the store, printed, or kept as evidence.

use std::time::Duration;

use crate::helpers::{files_containing, wait_until, Ran, Sandbox, Server};

const SECRET: &str = "s3cr3t-Zq81-XYZZY";

const WITH_SECRET: &str = r#"Workflow(
    name: "secretive",
    initial: "deploy",
    vars: {
        "token": (secret: true, from_env: "DEPLOY_TOKEN"),
        "url": (),
    },
    environments: { "dev": () },
    states: {
        "deploy": (on_enter: [
            Command(run: ["./use.sh", "${token}"]),
            Http(url: "${url}/hook?t=${token}", method: "POST", body: { "token": "${token}", "note": "from ${run.id}" }),
        ]),
        "done": (terminal: Success, on_enter: [Command(run: ["./use.sh", "${token}"])]),
    },
    transitions: [
        (from: "deploy", to: "done", guards: [
            (name: "token-ok", check: Command(run: ["./check.sh", "${token}"])),
            (name: "api", check: Http(url: "${url}/health?token=${token}", expect_status: 200)),
            (name: "sign-off", check: Approval(prompt: "deploy with ${token}?")),
        ]),
    ],
)
"#;

fn sandbox() -> (Sandbox, Server) {
    let sb = Sandbox::new();
    sb.write("wf.ron", WITH_SECRET);
    // Both print the token on stdout and stderr; check.sh passes only once `ok` exists.
    sb.script(
        "use.sh",
        &format!("echo \"token is $1\"\necho \"token is $1\" >&2\n[ \"$1\" = {SECRET} ]"),
    );
    sb.script(
        "check.sh",
        &format!(
            "echo \"checking $1\"\necho \"checking $1\" >&2\n[ -f ok ] && [ \"$1\" = {SECRET} ]"
        ),
    );
    (sb, Server::start())
}

/// `waygate ARGS` with the secret in the environment.
fn with_env(sb: &Sandbox, actor: &str, args: &[&str]) -> Ran {
    sb.command(actor, args)
        .env("DEPLOY_TOKEN", SECRET)
        .output()
        .expect("waygate runs")
        .into()
}

/// Every output format of every reading command, plus what `ran` printed.
fn assert_never_shown(sb: &Sandbox, run: &str, ran: &[Ran]) {
    let mut outputs: Vec<Ran> = ran
        .iter()
        .map(|r| Ran {
            code: r.code,
            stdout: r.stdout.clone(),
            stderr: r.stderr.clone(),
        })
        .collect();
    for format in ["human", "json", "jsonl", "csv"] {
        outputs.push(sb.wg(&["--format", format, "history", run]));
        outputs.push(sb.wg(&["--format", format, "audit"]));
        outputs.push(sb.wg(&["--format", format, "runs"]));
    }
    outputs.push(sb.wg(&["status", run]));
    outputs.push(sb.wg(&["--format", "json", "status", run]));
    outputs.push(with_env(sb, "tester", &["--format", "json", "status", run]));
    outputs.push(with_env(sb, "tester", &["-vvv", "status", run]));
    for out in &outputs {
        assert!(
            !out.stdout.contains(SECRET) && !out.stderr.contains(SECRET),
            "the secret was printed: {out:?}"
        );
    }
    let files = files_containing(&sb.store(), SECRET.as_bytes());
    assert!(files.is_empty(), "the secret is on disk in {files:?}");
}

#[test]
fn a_secret_from_the_environment_is_used_but_never_stored_or_shown() {
    let (sb, server) = sandbox();
    let url = server.url("");
    let mut ran = Vec::new();
    let started = with_env(
        &sb,
        "alice",
        &[
            "--format",
            "json",
            "start",
            "wf.ron",
            "--env",
            "dev",
            "--var",
            &format!("url={url}"),
        ],
    );
    started.code(0);
    let run = started.json()["run_id"].as_str().expect("id").to_owned();
    ran.push(started);

    // Reading needs no secret; acting does, and says which variable is missing.
    sb.wg(&["status", &run]).code(0);
    let missing = sb.wg(&["advance", &run]);
    missing.code(1).stderr_has("token");
    ran.push(missing);

    ran.push(with_env(&sb, "alice", &["advance", &run]));
    ran.push(with_env(&sb, "alice", &["check", &run]));
    ran.push(with_env(&sb, "alice", &["-vv", "check", &run]));
    ran.push(with_env(&sb, "bob", &["approve", &run, "sign-off"]));
    sb.write("ok", "");
    let driven = with_env(&sb, "alice", &["-vv", "drive", &run]);
    driven.code(0);
    ran.push(driven);

    // The secret really was used: the server saw it, the scripts got it.
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("POST /hook?t=") && r.contains(SECRET)),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.contains(&format!("/health?token={SECRET}"))),
        "{requests:?}"
    );
    let history = sb.history(&run);
    assert!(history
        .iter()
        .any(|e| e["kind"] == "ActionFinished" && e["ok"] == true));
    // Evidence kept the scripts' output, with the secret masked.
    let evidence = history
        .iter()
        .find(|e| e["kind"] == "GuardsEvaluated")
        .expect("evaluated")["guards"][0]["evidence"]
        .to_string();
    assert!(evidence.contains("checking ***"), "{evidence}");
    assert_never_shown(&sb, &run, &ran);
}

#[test]
fn a_secret_given_with_var_to_run_is_used_for_the_whole_drive_but_never_stored() {
    let (sb, server) = sandbox();
    let url = format!("url={}", server.url(""));
    let token = format!("token={SECRET}");
    sb.write("ok", "");
    // No DEPLOY_TOKEN anywhere: only `run --var` has the secret, for its own drive.
    let run_cmd = sb.spawn_as(
        "alice",
        "run",
        &[
            "run", "wf.ron", "--env", "dev", "--var", &url, "--var", &token,
        ],
    );
    let mut run = String::new();
    wait_until(
        "the run to wait for its sign-off",
        Duration::from_secs(30),
        || {
            // Until `run` has created the store, there is "no store" to list.
            let out = sb.wg(&["--format", "json", "runs"]);
            if out.code != 0 {
                return false;
            }
            let runs = out.json();
            run = runs[0]["run_id"].as_str().unwrap_or_default().to_owned();
            runs[0]["status"] == "waiting"
        },
    );
    sb.wg_as("bob", &["approve", &run, "sign-off"]).code(0);
    let finished = run_cmd.wait(Duration::from_secs(60));
    finished.code(0);
    assert!(
        finished.stderr.contains(
            "warning: `token` is secret, and `--var` shows it to every local user in the process list; set $DEPLOY_TOKEN (its `from_env`) instead"
        ),
        "{}",
        finished.stderr
    );
    let history = sb.history(&run);
    let actions: Vec<bool> = history
        .iter()
        .filter(|e| e["kind"] == "ActionFinished")
        .map(|e| e["ok"] == true)
        .collect();
    assert_eq!(actions, [true, true, true], "every action got the secret");
    assert!(server.requests().iter().any(|r| r.contains(SECRET)));
    // Later commands need the secret again: it was never stored.
    sb.wg(&["check", &run]).code(1);
    assert_never_shown(&sb, &run, &[finished]);
}

/// A secret with characters a URL cannot hold as they are. The url parser writes them
/// percent-encoded (`%20`, `%22`, `%C3%A9`), and the transport error names the URL it
/// could not reach: that encoded form must be masked too, on screen and in the store.
#[test]
fn a_secret_in_an_http_url_is_masked_when_the_url_percent_encodes_it() {
    const ODD: &str = "pa ss\"wörd<1>";
    const ENCODED: &str = "pa%20ss%22w%C3%B6rd%3C1%3E";
    let sb = Sandbox::new();
    // A port nothing listens on: the request fails and reqwest's error shows the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    sb.write(
        "wf.ron",
        &format!(
            r#"Workflow(
    name: "odd-secret",
    initial: "a",
    vars: {{ "token": (secret: true, from_env: "DEPLOY_TOKEN") }},
    states: {{ "a": (), "done": (terminal: Success) }},
    transitions: [
        (from: "a", to: "done", guards: [
            (name: "path", check: Http(url: "http://127.0.0.1:{closed}/bot${{token}}/x", timeout: "5s")),
            (name: "query", check: Http(url: "http://127.0.0.1:{closed}/?t=${{token}}", timeout: "5s")),
        ]),
    ],
)"#
        ),
    );
    let odd_env = |actor: &str, args: &[&str]| -> Ran {
        sb.command(actor, args)
            .env("DEPLOY_TOKEN", ODD)
            .output()
            .expect("waygate runs")
            .into()
    };
    let started = odd_env(
        "alice",
        &["--format", "json", "start", "wf.ron", "--env", "x"],
    );
    started.code(0);
    let run = started.json()["run_id"].as_str().expect("id").to_owned();
    let checked = odd_env("alice", &["check", &run]);
    checked.code(3);
    let advanced = odd_env("alice", &["advance", &run]);
    advanced.code(3);
    assert!(
        checked.stdout.contains("cannot connect"),
        "the guards failed for the closed port: {}",
        checked.stdout
    );
    let mut outputs = vec![checked, advanced];
    for format in ["human", "json"] {
        outputs.push(sb.wg(&["--format", format, "history", &run]));
        outputs.push(sb.wg(&["--format", format, "status", &run]));
    }
    for out in &outputs {
        for shown in [ODD, ENCODED, "pa%20ss"] {
            assert!(
                !out.stdout.contains(shown) && !out.stderr.contains(shown),
                "the secret was printed as {shown:?}: {out:?}"
            );
        }
    }
    for stored in [ODD, ENCODED] {
        let files = files_containing(&sb.store(), stored.as_bytes());
        assert!(
            files.is_empty(),
            "the secret is on disk as {stored:?} in {files:?}"
        );
    }
}
