//! Guards and actions for real, through the binary: commands with grandchildren and floods of
//! output, Http against a local server, Json files, approvals, waits, deadlines, watches,
//! rollback, and the exit codes of `run`.

use std::time::Duration;

use crate::helpers::{alive, kinds, of_kind, pids_in, wait_until, Sandbox, Server};

/// One transition `a -> done` guarded by `guards`; `a` goes to `rollback` on failure.
fn one_step(guards: &str, a_extra: &str) -> String {
    format!(
        r#"Workflow(
    name: "one-step",
    initial: "a",
    rollback: "rollback",
    vars: {{ "url": (default: "http://127.0.0.1:1/") }},
    environments: {{ "dev": () }},
    states: {{
        "a": (on_failure: "rollback"{a_extra}),
        "done": (terminal: Success),
        "rollback": (on_enter: [Command(run: ["touch", "rolled-back"])]),
        "rolled_back": (terminal: Failure),
    }},
    transitions: [
        (from: "a", to: "done", guards: [{guards}]),
        (from: "rollback", to: "rolled_back"),
    ],
)
"#
    )
}

/// The guard results of the last evaluation in `run`'s history.
fn last_guards(sb: &Sandbox, run: &str) -> Vec<serde_json::Value> {
    let history = sb.history(run);
    let evals = of_kind(&history, "GuardsEvaluated");
    evals.last().expect("an evaluation")["guards"]
        .as_array()
        .expect("guards")
        .clone()
}

#[test]
fn a_hanging_guard_with_grandchildren_is_killed_at_its_timeout() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        &one_step(
            r#"(name: "hangs", check: Command(run: ["./hang.sh"], timeout: "1s"))"#,
            "",
        ),
    );
    // Ignores SIGTERM, and so do its children: only the group SIGKILL ends them.
    sb.script(
        "hang.sh",
        "trap '' TERM\necho $$ >> hang.pids\n(trap '' TERM; sleep 300) &\necho $! >> hang.pids\nsh -c 'trap \"\" TERM; sleep 300' &\necho $! >> hang.pids\nwait",
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let ran = sb.wg(&["advance", &run]);
    ran.code(3);
    let pids = pids_in(&sb.path().join("hang.pids"));
    assert_eq!(pids.len(), 3);
    wait_until(
        "every process of the guard to be gone",
        Duration::from_secs(10),
        || pids.iter().all(|&p| !alive(p)),
    );
    let g = &last_guards(&sb, &run)[0];
    assert_eq!(g["outcome"], "fail");
    assert!(
        g["detail"]
            .as_str()
            .is_some_and(|d| d.contains("timed out") || d.contains("timeout")),
        "{g}"
    );
}

#[test]
fn a_flood_of_output_is_bounded_and_the_run_proceeds() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        &one_step(
            r#"(name: "loud", check: Command(run: ["./loud.sh"], timeout: "2m"))"#,
            r#", on_enter: [Command(run: ["./loud.sh"], timeout: "2m")]"#,
        ),
    );
    // 100 MiB on stdout and a little on stderr, then success.
    sb.script(
        "loud.sh",
        "head -c 104857600 /dev/zero | tr '\\0' 'x'\necho the-end\necho on-stderr >&2",
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    // Quiet: the live output of a flood is `live::a_hundred_mib_line_streams_in_pieces..`.
    let ran = sb.wg(&["--quiet", "advance", &run]);
    ran.code(0);
    assert!(
        ran.stdout.len() < 64 * 1024,
        "{} bytes printed",
        ran.stdout.len()
    );
    let history = sb.wg(&["history", &run, "--format", "json"]);
    assert!(
        history.stdout.len() < 256 * 1024,
        "history is {} bytes",
        history.stdout.len()
    );
    let events = sb.history(&run);
    let evidence = of_kind(&events, "GuardsEvaluated")[0]["guards"][0]["evidence"].to_string();
    assert!(evidence.contains("the-end"), "keeps the tail: {evidence}");
    assert!(evidence.len() < 32 * 1024, "{} bytes", evidence.len());
    let action = of_kind(&events, "ActionFinished")[0];
    assert_eq!(action["ok"], true);
    assert!(action["evidence"].to_string().len() < 32 * 1024);
    assert_eq!(sb.status(&run)["state"], "done");
    let store_size: u64 = walk_size(&sb.store());
    assert!(store_size < 20 * 1024 * 1024, "store is {store_size} bytes");
}

fn walk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_size(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

#[test]
fn http_guards_check_status_and_body_against_a_local_server() {
    let server = Server::start();
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        &one_step(
            r#"(name: "health", check: Http(url: "${url}/health", expect_status: 200, body_contains: "healthy", timeout: "5s"))"#,
            "",
        ),
    );
    let url = server.url("");
    let run = sb.start("alice", "wf.ron", "dev", &["--var", &format!("url={url}")]);

    server.respond(503, "down");
    sb.wg(&["check", &run]).code(3);
    let g = sb.wg(&["--format", "json", "check", &run]).json();
    let detail = g["transitions"][0]["guards"][0]["detail"].to_string();
    assert!(detail.contains("503"), "{detail}");

    server.respond(200, "not yet");
    sb.wg(&["check", &run]).code(3);
    server.respond(200, "all healthy");
    sb.wg(&["check", &run]).code(0);
    assert!(server
        .requests()
        .iter()
        .all(|r| r.starts_with("GET /health ")));
    sb.wg(&["advance", &run]).code(0);

    // Nobody listening: a failed guard with a clear detail, not a crash.
    sb.write(
        "other.ron",
        &one_step(
            r#"(name: "health", check: Http(url: "${url}", timeout: "2s"))"#,
            "",
        )
        .replace("one-step", "other"),
    );
    let other = sb.start("alice", "other.ron", "dev", &[]);
    sb.wg(&["advance", &other]).code(3);
    assert_eq!(last_guards(&sb, &other)[0]["outcome"], "fail");
}

#[test]
fn json_guards_read_a_file_and_say_what_is_missing() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        &one_step(
            r#"(name: "flag", check: Json(file: "flags.json", pointer: "/beta/enabled", equals: false))"#,
            "",
        ),
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["advance", &run]).code(3);
    let detail = last_guards(&sb, &run)[0]["detail"].to_string();
    assert!(detail.contains("flags.json"), "missing file: {detail}");
    sb.write("flags.json", r#"{"beta": {}}"#);
    sb.wg(&["advance", &run]).code(3);
    let detail = last_guards(&sb, &run)[0]["detail"].to_string();
    assert!(
        detail.contains("/beta/enabled"),
        "missing pointer: {detail}"
    );
    sb.write("flags.json", r#"{"beta": {"enabled": true}}"#);
    sb.wg(&["advance", &run]).code(3);
    sb.write("flags.json", r#"{"beta": {"enabled": false}}"#);
    sb.wg(&["advance", &run]).code(0);
}

#[test]
fn approvals_need_min_distinct_allowed_people() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        &one_step(
            r#"(name: "two", check: Approval(prompt: "two of us", min: 2, approvers: ["alice", "bob", "carol"], not_by_initiator: true))"#,
            "",
        ),
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    // `--as` names the actor, before or after the subcommand, over WAYGATE_ACTOR (tester).
    let dave = sb.wg(&["approve", &run, "two", "--as", "dave"]);
    dave.code(1);
    assert!(
        dave.stderr.contains("dave may not approve") && dave.stderr.contains("alice, bob, carol"),
        "{}",
        dave.stderr
    );
    sb.wg_as("alice", &["approve", &run, "two"]).code(1);
    sb.wg_as("bob", &["approve", &run, "two"]).code(0);
    sb.wg_as("bob", &["approve", &run, "two"]).code(0);
    sb.wg(&["advance", &run]).code(4);
    let st = sb.status(&run);
    assert_eq!(
        st["pending_approvals"][0]["approved_by"],
        serde_json::json!(["bob"])
    );
    let carol = sb.wg(&["--as", "carol", "approve", &run, "two"]);
    carol.code(0).stdout_has("2 of 2");
    sb.wg(&["advance", &run]).code(0);
    let history = sb.history(&run);
    let refused: Vec<&str> = of_kind(&history, "Approved")
        .iter()
        .filter(|e| e["accepted"] == false)
        .map(|e| e["actor"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(refused, ["dave", "alice"]);
}

#[test]
fn drive_waits_out_a_bake_time() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        // No exit-4 checks here: whether a command still finds the bake waiting depends on
        // the machine's load. What is certain is a lower bound, asserted below.
        &one_step(r#"(name: "bake", check: Wait(duration: "2s"))"#, ""),
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let ran = sb.wg(&["drive", &run]);
    ran.code(0);
    assert_eq!(sb.status(&run)["state"], "done");
    // Never before the bake time, however slow or fast the machine.
    let history = sb.history(&run);
    let at = |e: &serde_json::Value| {
        e["at"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .expect("at")
    };
    let moved = of_kind(&history, "Transitioned")[0];
    let baked = at(moved).duration_since(at(&history[0]));
    assert!(
        baked >= jiff::SignedDuration::from_secs(2),
        "moved after {baked:?}"
    );
    // Every evaluation before the move saw the bake still waiting.
    let evals = of_kind(&history, "GuardsEvaluated");
    let (last, earlier) = evals.split_last().expect("evaluated");
    assert_eq!(last["passed"], true);
    assert!(earlier
        .iter()
        .all(|e| e["guards"][0]["outcome"] == "waiting"));
}

#[test]
fn a_passed_deadline_sends_the_run_to_on_failure() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        &one_step(
            r#"(name: "never", check: Approval(prompt: "nobody will"))"#,
            r#", deadline: "1s""#,
        ),
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let ran = sb.wg(&["drive", &run]);
    ran.code(6);
    assert!(sb.path().join("rolled-back").exists());
    let history = sb.history(&run);
    let first_move = of_kind(&history, "Transitioned")[0];
    assert_eq!(first_move["cause"], "deadline");
    assert_eq!(first_move["to"], "rollback");
    assert_eq!(sb.status(&run)["state"], "rolled_back");
}

#[test]
fn a_broken_watch_sends_the_run_to_on_failure_at_once() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        &one_step(
            r#"(name: "healthy", check: Watch(check: Command(run: ["test", "-f", "healthy"]), duration: "1m", interval: "200ms"))"#,
            "",
        ),
    );
    sb.write("healthy", "");
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let drive = sb.spawn_as("alice", "drive", &["drive", &run]);
    wait_until("the watch to run", Duration::from_secs(30), || {
        of_kind(&sb.history(&run), "GuardsEvaluated").len() >= 2
    });
    std::fs::remove_file(sb.path().join("healthy")).expect("rm");
    let ran = drive.wait(Duration::from_secs(30));
    ran.code(6);
    let history = sb.history(&run);
    let first_move = of_kind(&history, "Transitioned")[0];
    assert_eq!(first_move["cause"], "watch");
    assert_eq!(sb.status(&run)["state"], "rolled_back");
}

#[test]
fn rollback_runs_the_rollback_state_and_drive_finishes_it() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        &one_step(r#"(name: "never", check: Approval(prompt: "x"))"#, ""),
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["rollback", &run]).code(2);
    let rb = sb.wg_as("bob", &["rollback", &run, "--reason", "error rate up"]);
    rb.code(0);
    assert!(
        sb.path().join("rolled-back").exists(),
        "rollback actions ran"
    );
    assert_eq!(sb.status(&run)["state"], "rollback");
    sb.wg(&["drive", &run]).code(6);
    let history = sb.history(&run);
    assert_eq!(
        kinds(&history),
        [
            "RunStarted",
            "RollbackRequested",
            "Transitioned",
            "ActionStarted",
            "ActionFinished",
            "GuardsEvaluated",
            "Transitioned",
            "RunEnded"
        ]
    );
    assert_eq!(history[1]["reason"], "error rate up");
    assert_eq!(history[2]["cause"], "rollback");
    assert_eq!(history[1]["actor"], "bob");
    sb.wg(&["rollback", &run, "--reason", "again"]).code(1);
}

#[test]
fn run_exits_0_6_and_4() {
    let sb = Sandbox::new();
    sb.write(
        "ok.ron",
        &one_step(r#"(name: "t", check: Command(run: ["true"]))"#, ""),
    );
    sb.wg(&["run", "ok.ron", "--env", "dev"]).code(0);
    let bad =
        one_step(r#"(name: "t", check: Command(run: ["false"]))"#, "").replace("one-step", "bad");
    sb.write("bad.ron", &bad);
    let ran = sb.wg(&["run", "bad.ron", "--env", "dev"]);
    ran.code(6);
    assert!(ran.stdout.contains("rolled_back"), "{ran:?}");
    let waits =
        one_step(r#"(name: "w", check: Approval(prompt: "x"))"#, "").replace("one-step", "waits");
    sb.write("waits.ron", &waits);
    sb.wg(&["run", "waits.ron", "--env", "dev", "--no-wait"])
        .code(4);
}

/// `check` exits as `decide` says `advance` would act, not by re-reading the guards: past the
/// state's deadline a passing transition is not taken, the deadline is an incident (3).
#[test]
fn check_past_the_deadline_exits_3_like_the_advance_it_previews() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        r#"Workflow(
    name: "deadline",
    initial: "a",
    states: {
        "a": (deadline: "1s", on_failure: "rb"),
        "rb": (),
        "done": (terminal: Success),
    },
    transitions: [
        (from: "a", to: "done"),
        (from: "rb", to: "done"),
    ],
)"#,
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let before = sb.history(&run).len();
    // Past the deadline, however slow this machine is: waiting longer changes nothing.
    std::thread::sleep(Duration::from_millis(1500));
    let dry = sb.wg(&["--format", "json", "check", &run]);
    dry.code(3);
    assert_eq!(dry.json()["transitions"][0]["passed"], true);
    assert_eq!(sb.history(&run).len(), before, "a dry run records nothing");
    sb.wg(&["advance", &run]).code(3);
    assert_eq!(sb.status(&run)["state"], "rb");
}
