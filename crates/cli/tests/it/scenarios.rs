//! `waygate test SCENARIO..`: scripted guard outcomes through the real engine.

use crate::helpers::{repo, run, Sandbox};

#[test]
fn the_shipped_scenarios_pass() {
    let root = repo();
    let mut files: Vec<String> = std::fs::read_dir(root.join("workflows/tests"))
        .expect("workflows/tests")
        .flatten()
        .map(|e| format!("workflows/tests/{}", e.file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".ron"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let args: Vec<&str> = ["--format", "json", "test"]
        .into_iter()
        .chain(files.iter().map(String::as_str))
        .collect();
    let json = run(&root, &args).code(0).json();
    let results = json.as_array().expect("a list");
    assert_eq!(results.len(), files.len());
    assert!(results.iter().all(|r| r["passed"] == true), "{json:#}");
    let watch = results
        .iter()
        .find(|r| r["file"] == "workflows/tests/deploy-health-fails-in-watch.ron")
        .expect("the watch scenario");
    assert_eq!(watch["exit"], 6);
    assert_eq!(watch["status"], "failed");
    let operator = results
        .iter()
        .find(|r| r["file"] == "workflows/tests/deploy-operator-rollback.ron")
        .expect("the operator's rollback scenario");
    let refused = operator["refused"][0].as_str().expect("a refusal");
    assert!(
        refused
            .starts_with("rollback in `rollback_verify` refused: a rollback is already under way"),
        "{refused}"
    );
}

/// A scenario for production-deploy in `sandbox`, expecting `expect`.
fn scenario(sandbox: &Sandbox, guards: &str, expect: &str) -> String {
    let deploy = repo().join("workflows/production-deploy.ron");
    let text = std::fs::read_to_string(&deploy)
        .expect("the workflow")
        .replace("    policies: [\"policies/seed.ron\"],\n", "");
    sandbox.write("deploy.ron", &text);
    let file = sandbox.write(
        "s.ron",
        &format!(
            "Scenario(name: \"s\", workflow: \"deploy.ron\", env: \"production\", guards: [{guards}], expect: ({expect}))"
        ),
    );
    file.display().to_string()
}

#[test]
fn a_scenario_whose_run_ends_elsewhere_fails_with_the_path_taken() {
    let sandbox = Sandbox::new();
    // The immediate health check fails all 10 tries (30s apart, on the paused clock), and
    // production's 10-minute deadline is not reached: drive follows on_failure to rollback.
    let file = scenario(
        &sandbox,
        "(name: \"immediate-health\", outcomes: [Fail])",
        "state: \"done\", status: Succeeded, exit: 0",
    );
    let ran = run(sandbox.path(), &["test", &file]);
    ran.code(1);
    assert!(ran.stdout.starts_with("FAIL s ("), "{}", ran.stdout);
    assert!(
        ran.stdout
            .contains("-> staging -> production -> rollback -> rollback_verify -> rolled_back"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout
            .contains("expected to end in `done`, ended in `rolled_back`"),
        "{}",
        ran.stdout
    );
    ran.stdout_has("expected exit 0, got 6");
    // 10 tries of the retried guard, each one evaluation.
    let json = run(sandbox.path(), &["--format", "json", "test", &file])
        .code(1)
        .json();
    assert_eq!(json[0]["state"], "rolled_back");
    assert!(
        json[0]["evaluations"].as_u64().expect("a count") >= 10,
        "{json}"
    );
    assert_eq!(
        json[0]["run_time_ms"], 270_000,
        "9 delays of 30s between 10 tries"
    );
}

#[test]
fn a_scenario_naming_what_the_workflow_lacks_is_refused_at_its_place() {
    let sandbox = Sandbox::new();
    let file = scenario(
        &sandbox,
        "(name: \"deploy-windw\", outcomes: [Wait])",
        "state: \"dne\", status: Succeeded",
    );
    let ran = run(sandbox.path(), &["test", &file]);
    ran.code(1).stderr_has("has no guard `deploy-windw`");
    ran.stderr_has("did you mean `deploy-window`?");
    ran.stderr_has("`dne` is not a state of workflow");
    ran.stdout_has("FAIL s");
    // A var the workflow does not declare, at its key, every one of them (the engine's
    // refusal named one, as a `--var`, nowhere in the file).
    let vars = sandbox.write(
        "vars.ron",
        r#"Scenario(name: "v", workflow: "deploy.ron", env: "production",
            vars: {"release_brnch": "main", "nope": "1"},
            expect: (state: "done", status: Succeeded))"#,
    );
    let ran = run(sandbox.path(), &["test", &vars.display().to_string()]);
    ran.code(1);
    for said in [
        "declares no var `release_brnch`",
        "did you mean `release_branch`?",
        "declares no var `nope`",
        "vars.ron:2:20]",
    ] {
        ran.stderr_has(said);
    }
    let bad = sandbox.write("bad.ron", "Scenario(name: \"x\", workflow: \"deploy.ron\", env: \"production\", expect: (state: \"done\", status: Done))");
    let ran = run(sandbox.path(), &["test", &bad.display().to_string()]);
    ran.code(1).stderr_has("unknown-variant");
}

#[test]
fn a_run_that_loops_for_ever_under_its_script_is_stopped_and_fails() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "loop.ron",
        r#"Workflow(name: "loop", initial: "a",
            states: { "a": (), "b": (), "c": (terminal: Success) },
            transitions: [
                (from: "a", to: "b"),
                (from: "b", to: "a", guards: [(name: "retry", check: Command(run: ["true"]))]),
                (from: "b", to: "c", guards: [(name: "ok", check: Command(run: ["true"]))]),
            ])"#,
    );
    let file = sandbox.write(
        "s.ron",
        r#"Scenario(name: "loops", workflow: "loop.ron", env: "any", expect: (state: "c", status: Succeeded))"#,
    );
    let ran = run(sandbox.path(), &["test", &file.display().to_string()]);
    ran.code(1).stdout_has("stopped after 200 moves");
    ran.stdout_has("path: a -> b -> a -> b");
}

#[test]
fn nothing_a_scenario_scripts_runs_for_real() {
    let sandbox = Sandbox::new();
    let marker = sandbox.path().join("ran");
    let marker = marker.display().to_string();
    sandbox.write(
        "w.ron",
        &format!(
            r#"Workflow(name: "w", initial: "deploy",
                states: {{
                    "deploy": (on_enter: [Command(run: ["touch", "{marker}"])], deadline: "1h"),
                    "done": (terminal: Success, on_enter: [Http(url: "http://127.0.0.1:9/never")]),
                }},
                transitions: [(from: "deploy", to: "done", guards: [
                    (name: "tests", check: Command(run: ["touch", "{marker}"])),
                    (name: "bake", check: Wait(duration: "1h")),
                ])])"#
        ),
    );
    // The bake is a real Wait: it is scripted to pass at once, and the run ends well before
    // the deadline that a real wait of an hour would have hit.
    let file = sandbox.write(
        "s.ron",
        r#"Scenario(name: "s", workflow: "w.ron", env: "any", expect: (state: "done", status: Succeeded, exit: 0))"#,
    );
    let json = run(
        sandbox.path(),
        &["--format", "json", "test", &file.display().to_string()],
    )
    .code(0)
    .json();
    assert_eq!(json[0]["passed"], true, "{json}");
    assert!(!std::path::Path::new(&marker).exists(), "a command ran");
    assert_eq!(json[0]["run_time_ms"], 0);
}

/// A notification hook is not an entry action: in a scenario it is not sent, and it takes
/// none of the results scripted for the state's entry actions. (It did: the approval
/// waiting in `deploy` took `deploy`'s second result, so its second entry failed.)
#[test]
fn a_notification_takes_no_scripted_action_result() {
    let sandbox = Sandbox::new();
    let marker = sandbox.path().join("notified").display().to_string();
    sandbox.write(
        "w.ron",
        &format!(
            r#"Workflow(name: "w", initial: "deploy",
                notify: [(on: [ApprovalWaiting], action: Command(run: ["touch", "{marker}"]))],
                states: {{
                    "deploy": (on_enter: [Command(run: ["true"])]),
                    "check": (),
                    "done": (terminal: Success),
                }},
                transitions: [
                    (from: "deploy", to: "check", guards: [(name: "go", check: Approval(prompt: "go?"))]),
                    (from: "check", to: "deploy", guards: [(name: "again", check: Command(run: ["true"]))]),
                    (from: "check", to: "done"),
                ])"#
        ),
    );
    let file = sandbox.write(
        "s.ron",
        r#"Scenario(name: "s", workflow: "w.ron", env: "any",
            guards: [(name: "go", outcomes: [Wait, Pass]), (name: "again", outcomes: [Pass, Fail])],
            actions: [(state: "deploy", results: [Ok, Ok, Fail])],
            expect: (state: "done", status: Succeeded, exit: 0,
                     path: ["deploy", "check", "deploy", "check", "done"]))"#,
    );
    let ran = run(sandbox.path(), &["test", &file.display().to_string()]);
    ran.code(0).stdout_has("PASS s");
    assert!(!ran.stderr.contains("notification"), "{}", ran.stderr);
    assert!(
        !std::path::Path::new(&marker).exists(),
        "a notification ran"
    );
}

/// A script that says more than happened is said so (a note; the scenario still passes on
/// its expectations), and a script of more waits than a scenario looks at is stopped and
/// fails saying why, rather than running for minutes and ending "waiting" as if that were
/// the workflow's doing.
#[test]
fn unused_script_and_too_many_waits_are_said() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "w.ron",
        r#"Workflow(name: "w", initial: "deploy",
            states: {
                "deploy": (on_enter: [Command(run: ["true"])]),
                "verify": (),
                "done": (terminal: Success),
            },
            transitions: [
                (from: "deploy", to: "done", guards: [(name: "tests", check: Command(run: ["true"]))]),
                (from: "verify", to: "done", guards: [(name: "health", check: Command(run: ["true"]))]),
            ])"#,
    );
    let file = sandbox.write(
        "s.ron",
        r#"Scenario(name: "s", workflow: "w.ron", env: "any",
            guards: [(name: "tests", outcomes: [Wait, Pass, Fail, Fail]), (name: "health", outcomes: [Fail])],
            actions: [(state: "deploy", results: [Ok, Fail])],
            expect: (state: "done", status: Succeeded, exit: 0))"#,
    );
    let file = file.display().to_string();
    let ran = run(sandbox.path(), &["test", &file]);
    ran.code(0);
    for said in [
        "note: guard `tests`: evaluated 2 times, so 2 of its 4 scripted outcomes were never used",
        "note: guard `health`: never evaluated, so its scripted outcome was never used",
        "note: the entry actions of `deploy`: run once, so 1 of its 2 scripted results was never used",
    ] {
        ran.stdout_has(said);
    }
    let json = run(sandbox.path(), &["--format", "json", "test", &file])
        .code(0)
        .json();
    assert_eq!(
        json[0]["unused"].as_array().map(Vec::len),
        Some(3),
        "{json}"
    );

    let waits = vec!["Wait"; 1_001].join(", ");
    let file = sandbox.write(
        "waits.ron",
        &format!(
            r#"Scenario(name: "waits", workflow: "w.ron", env: "any",
                guards: [(name: "tests", outcomes: [{waits}, Pass])],
                expect: (state: "done", status: Succeeded))"#
        ),
    );
    run(sandbox.path(), &["test", &file.display().to_string()])
        .code(1)
        .stdout_has("stopped after 1000 looks at the waiting run");
}
