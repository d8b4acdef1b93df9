//! The seed checklist itself: `workflows/production-deploy.ron`, with its commands pointed at
//! local scripts, its waits shortened, its health URL and team notifications at a local
//! server, and its approvals given by named people. Done by text substitution on the real
//! file, each substitution asserted, so this test breaks if the file changes shape.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::{files_containing, of_kind, repo, wait_until, Ran, Sandbox, Server, Spawned};

const TOKEN: &str = "bot-token-7f3a9c";
const INITIATOR: &str = "ivan";
const APPROVER: &str = "alice";

/// Replaces `from` by `to`, asserting it occurs exactly `times` times.
#[track_caller]
fn substitute(text: &mut String, from: &str, to: &str, times: usize) {
    assert_eq!(
        text.matches(from).count(),
        times,
        "production-deploy.ron changed shape: `{from}`"
    );
    *text = text.replace(from, to);
}

/// The checklist made runnable here; `watch` is the duration of the 15-minute watches.
fn checklist(sb: &Sandbox, server: &Server, watch: &str) -> String {
    let mut text = std::fs::read_to_string(repo().join("workflows/production-deploy.ron"))
        .expect("the seed workflow");
    // Commands: python checks and git pushes become local scripts (argv, no shell).
    substitute(
        &mut text,
        r#"run: ["python", "#,
        r#"run: ["./bin/python", "#,
        5,
    );
    substitute(&mut text, r#"run: ["git", "#, r#"run: ["./bin/git", "#, 4);
    // Team notifications go to the local server (the token stays in the URL).
    substitute(
        &mut text,
        "https://api.telegram.org/bot${bot_token}/sendMessage",
        &server.url("/telegram/bot${bot_token}/sendMessage"),
        2,
    );
    // The deploy window is always open.
    substitute(
        &mut text,
        r#"Window(days: [Mon, Tue, Wed, Thu], start: "09:00", end: "16:00", tz: "Europe/London")"#,
        r#"Window(days: [Mon, Tue, Wed, Thu, Fri, Sat, Sun], start: "00:00", end: "00:00", tz: "Europe/London")"#,
        1,
    );
    // Waits: retries, watches.
    substitute(&mut text, r#"delay: "10s""#, r#"delay: "100ms""#, 1);
    // (15s is also the rollback's health retry: 16 tries a second apart leave the test time
    // to bring the server back after the watch broke.)
    substitute(&mut text, r#"delay: "15s""#, r#"delay: "1s""#, 2);
    substitute(&mut text, r#"delay: "30s""#, r#"delay: "100ms""#, 1);
    substitute(
        &mut text,
        r#"duration: "15m""#,
        &format!(r#"duration: "{watch}""#),
        2,
    );
    substitute(&mut text, r#"interval: "30s""#, r#"interval: "200ms""#, 2);
    substitute(&mut text, r#"duration: "1h""#, r#"duration: "1s""#, 2);
    substitute(&mut text, r#"interval: "1m""#, r#"interval: "200ms""#, 2);

    // A fresh checkout: `python environment_manager.py` generates the Claude context (taking a
    // moment, as the real one does); nothing else creates it.
    sb.script(
        "bin/python",
        "if [ \"$1\" = environment_manager.py ]; then sleep 0.5; echo '{}' > CLAUDE_CONTEXT.json; fi\nexit 0",
    );
    sb.script(
        "bin/git",
        "echo \"git $*\" >> git.log\n[ \"$1\" = rev-parse ] && echo 0123456789abcdef\nexit 0",
    );
    sb.script("scripts/error-rate-ok", "exit 0");
    sb.write("config/flags.json", r#"{"first_impression_fsm": false}"#);
    sb.write("production-deploy.ron", &text);
    text
}

/// Every Approval guard's name, in file order, once.
fn approval_guards(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for piece in text.split("(name: \"").skip(1) {
        let Some((name, rest)) = piece.split_once('"') else {
            continue;
        };
        if rest.trim_start().starts_with(", check: Approval(") && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// `waygate` as `actor` with the checklist's environment: the fake `git` first on the path
/// (the `sh -c` actions call it by name), the bot token and the chat id.
fn cmd(sb: &Sandbox, actor: &str, args: &[&str]) -> Command {
    let path = format!(
        "{}:{}",
        sb.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = sb.command(actor, args);
    c.env("PATH", path)
        .env("BOT_TOKEN", TOKEN)
        .env("TEAM_CHAT_ID", "-100200300");
    c
}

fn wg(sb: &Sandbox, actor: &str, args: &[&str]) -> Ran {
    cmd(sb, actor, args).output().expect("waygate runs").into()
}

/// `COMMAND` and what follows it to start the checklist in `production`, its health URLs on
/// `server`.
fn in_production(command: &str, server: &Server) -> Vec<String> {
    let health = format!("health_url={}", server.url("/health"));
    let staging = format!("staging_health_url={}", server.url("/staging/health"));
    [command, "production-deploy.ron", "--env", "production"]
        .into_iter()
        .map(str::to_owned)
        .chain(["--var".into(), health, "--var".into(), staging])
        .collect()
}

/// Starts the checklist in `production` as `INITIATOR`, its health URLs on `server`: the
/// run's id.
fn start(sb: &Sandbox, server: &Server) -> String {
    let args = in_production("start", server);
    let mut argv = vec!["--format", "json"];
    argv.extend(args.iter().map(String::as_str));
    let started = wg(sb, INITIATOR, &argv);
    started.code(0);
    started.json()["run_id"].as_str().expect("id").to_owned()
}

/// Gives each approval the run asks for, as `APPROVER`, when the run is in the state it
/// belongs to (an approval counts only there): the way people sign a checklist off, step by
/// step. `before` sees each guard first. Returns once `done` holds or the run has ended.
fn approve_as_asked(
    sb: &Sandbox,
    run: &str,
    mut before: impl FnMut(&str),
    done: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let st = sb.status(run);
        if done(&st) || st["ended_at"].is_string() {
            return;
        }
        for p in st["pending_approvals"].as_array().into_iter().flatten() {
            let guard = p["guard"].as_str().unwrap_or_default();
            let given = p["approved_by"]
                .as_array()
                .is_some_and(|by| by.iter().any(|a| a == APPROVER));
            if given {
                continue;
            }
            before(guard);
            let ran = wg(
                sb,
                APPROVER,
                &["approve", run, guard, "--comment", "checked"],
            );
            // 1 or 5: the run moved on between `status` and `approve`.
            assert!([0, 1, 5].contains(&ran.code), "{ran:?}");
        }
        assert!(Instant::now() < deadline, "the run stopped asking: {st}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `waygate ARGS` as `actor` with the checklist's environment, in the background.
fn spawn(sb: &Sandbox, actor: &str, tag: &str, args: &[&str]) -> Spawned {
    let out = sb.path().join(format!("{tag}.stdout"));
    let err = sb.path().join(format!("{tag}.stderr"));
    let child = cmd(sb, actor, args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout"))
        .stderr(std::fs::File::create(&err).expect("stderr"))
        .spawn()
        .expect("spawn");
    Spawned::from_child(child, out, err)
}

fn moves(sb: &Sandbox, run: &str) -> Vec<(String, String, String)> {
    of_kind(&sb.history(run), "Transitioned")
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("from"), s("to"), s("cause"))
        })
        .collect()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

#[test]
fn the_checklist_runs_to_done_with_named_approvers_and_refuses_the_initiator() {
    let server = Server::start();
    let sb = Sandbox::new();
    let text = checklist(&sb, &server, "1s");
    let guards = approval_guards(&text);
    assert!(guards.len() > 30, "{guards:?}");
    assert!(guards.iter().any(|g| g == "staging-start"));
    let run = start(&sb, &server);

    // A sign-off ahead of its state is refused: it would count for nothing there.
    let early = wg(&sb, APPROVER, &["approve", &run, "staging-start"]);
    early
        .code(1)
        .stderr_has("the run is in `environment_check`");

    let drive = spawn(&sb, INITIATOR, "drive", &["drive", &run]);
    let mut four_eyes = false;
    approve_as_asked(
        &sb,
        &run,
        |guard| {
            if guard == "staging-start" && !four_eyes {
                // Four eyes: the initiator may not sign off staging, and the refusal is on
                // record.
                let refused = wg(&sb, INITIATOR, &["approve", &run, "staging-start"]);
                refused
                    .code(1)
                    .stderr_has("ivan started this run")
                    .stderr_has("not_by_initiator");
                four_eyes = true;
            }
        },
        |_| false,
    );
    assert!(four_eyes, "the run asked for staging-start");
    let driven = drive.wait(Duration::from_secs(120));
    driven.code(0);
    let st = sb.status(&run);
    assert_eq!(st["state"], "done");
    assert_eq!(st["status"], "succeeded");
    let path: Vec<String> = moves(&sb, &run).into_iter().map(|(_, to, _)| to).collect();
    assert_eq!(
        path,
        [
            "environment_context",
            "code_quality",
            "database_safety",
            "monitoring_setup",
            "announce",
            "staging",
            "production",
            "verify",
            "error_watch",
            "user_experience",
            "done"
        ]
    );
    let history = sb.history(&run);
    let refusal = of_kind(&history, "Approved")
        .into_iter()
        .find(|e| e["accepted"] == false && e["actor"] == INITIATOR)
        .expect("the refusal is recorded");
    assert_eq!(refusal["actor"], INITIATOR);
    assert_eq!(refusal["guard"], "staging-start");
    // The pushes happened, staging first; nothing was reverted.
    let git = read(sb.path(), "git.log");
    let staging_push = git.find("git push origin staging").expect("staging pushed");
    let main_push = git.find("git push origin main").expect("main pushed");
    assert!(staging_push < main_push, "{git}");
    assert!(!git.contains("revert"), "{git}");
    assert!(read(sb.path(), "deployments.log")
        .contains(&format!("deployed production run={run} by=ivan")));
    assert!(sb
        .path()
        .join(format!("deploy-archive/{run}/commit"))
        .exists());
    // The team was told, with the token in the URL, and the token is nowhere in the store.
    let requests = server.requests();
    assert!(
        requests.iter().any(
            |r| r.starts_with(&format!("POST /telegram/bot{TOKEN}/sendMessage"))
                && r.contains("succeeded")
                && r.contains("-100200300")
        ),
        "{requests:?}"
    );
    assert!(files_containing(&sb.store(), TOKEN.as_bytes()).is_empty());
    assert!(!sb
        .wg(&["--format", "json", "history", &run])
        .stdout
        .contains(TOKEN));
    sb.verify();
}

#[test]
fn on_a_fresh_checkout_the_context_file_is_checked_after_the_step_that_creates_it() {
    let server = Server::start();
    let sb = Sandbox::new();
    checklist(&sb, &server, "1s");
    assert!(!sb.path().join("CLAUDE_CONTEXT.json").exists());
    let run = start(&sb, &server);
    // First the context is generated, then (a transition later) its existence is checked.
    wg(&sb, INITIATOR, &["advance", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "environment_context");
    assert!(sb.path().join("CLAUDE_CONTEXT.json").exists());
    // The sign-off guards the way out of `environment_context`: it counts only given there.
    wg(&sb, APPROVER, &["approve", &run, "production-warnings"]).code(0);
    wg(&sb, INITIATOR, &["advance", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "code_quality");
    let checked: Vec<String> = of_kind(&sb.history(&run), "GuardsEvaluated")
        .iter()
        .flat_map(|e| e["guards"].as_array().cloned().unwrap_or_default())
        .filter(|g| g["outcome"] != "pass")
        .map(|g| g.to_string())
        .collect();
    assert!(checked.is_empty(), "{checked:?}");
}

#[test]
fn a_health_endpoint_failing_during_the_watch_rolls_back_by_itself_and_run_exits_6() {
    let server = Server::start();
    let sb = Sandbox::new();
    // A watch long enough that the test can break it.
    let _ = checklist(&sb, &server, "2m");
    let args = in_production("run", &server);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run_cmd = spawn(&sb, INITIATOR, "run", &args);
    let mut run = String::new();
    wait_until("the run to start", Duration::from_secs(30), || {
        // Until `run` has created the store, there is "no store" to list.
        let out = sb.wg(&["--format", "json", "runs"]);
        if out.code != 0 {
            return false;
        }
        let runs = out.json();
        run = runs[0]["run_id"].as_str().unwrap_or_default().to_owned();
        !run.is_empty()
    });
    approve_as_asked(&sb, &run, |_| {}, |st| st["state"] == "error_watch");
    // Production goes bad: the watch breaks, the run rolls back on its own...
    server.respond(500, "down");
    wait_until("the rollback", Duration::from_secs(30), || {
        sb.status(&run)["state"] != "error_watch"
    });
    // ...and once the revert is out, the previous version answers again; people check it.
    server.respond(200, "ok");
    approve_as_asked(&sb, &run, |_| {}, |_| false);
    let ran = run_cmd.wait(Duration::from_secs(90));
    ran.code(6);
    let st = sb.status(&run);
    assert_eq!(st["state"], "rolled_back");
    assert_eq!(st["status"], "failed");
    let moves = moves(&sb, &run);
    let broke = moves
        .iter()
        .find(|(from, _, _)| from == "error_watch")
        .expect("left error_watch");
    assert_eq!((broke.1.as_str(), broke.2.as_str()), ("rollback", "watch"));
    let tail: Vec<&str> = moves
        .iter()
        .rev()
        .take(2)
        .map(|(_, to, _)| to.as_str())
        .collect();
    assert_eq!(tail, ["rolled_back", "rollback_verify"]);
    let git = read(sb.path(), "git.log");
    assert!(git.contains("git revert --no-edit HEAD"), "{git}");
    assert!(server
        .requests()
        .iter()
        .any(|r| r.starts_with("POST /telegram/") && r.contains("ROLLED BACK")));
    assert!(read(sb.path(), "deployments.log").contains("rolled back production"));
    assert!(!ran.stdout.contains(TOKEN) && !ran.stderr.contains(TOKEN));
    sb.verify();
}
