//! Values passed between steps (`outputs`, `$WAYGATE_OUTPUT`, `${steps.NAME.KEY}`): published
//! by one process, used by another, recorded in the history, refused when not written.

use crate::helpers::{Sandbox, Spawned};

/// `build` publishes a build id from an action, the `pick` check the idle colour; `deploy`
/// uses both, in a later process than the one that published them.
const FLOW: &str = r#"Workflow(
    name: "outs", initial: "build",
    vars: { "token": (secret: true, from_env: "WG_TEST_OUT_TOKEN") },
    states: {
        "build": (
            on_enter: [Command(name: "build", run: ["./build.sh"], env: { "TOKEN": "${token}" }, outputs: ["build_id", "signed"])],
            on_failure: "failed",
        ),
        "deploy": (
            on_enter: [Command(run: ["./deploy.sh", "${steps.build.build_id}", "${steps.pick.colour}", "${steps.build.signed}"])],
            on_failure: "failed",
        ),
        "done": (terminal: Success),
        "failed": (terminal: Failure),
    },
    transitions: [
        (from: "build", to: "deploy", guards: [
            (name: "pick", check: Command(run: ["./pick.sh"], outputs: ["colour"])),
        ]),
        (from: "deploy", to: "done"),
    ],
)"#;

fn sandbox(build: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write("outs.ron", FLOW);
    sb.script("build.sh", build);
    sb.script(
        "pick.sh",
        r#"printf 'colour=green\nnot-declared=ignored\n' >> "$WAYGATE_OUTPUT""#,
    );
    sb.script("deploy.sh", r#"printf '%s|' "$@" > deployed.txt"#);
    sb
}

fn with_token(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    sb.command("tester", args)
        .env("WG_TEST_OUT_TOKEN", "tok-5ecret")
        .output()
        .expect("waygate runs")
}

#[test]
fn values_published_by_one_process_reach_a_later_step_and_are_recorded() {
    let sb = sandbox(
        r#"echo "build_id=b-1234" >> "$WAYGATE_OUTPUT"; echo "signed=$TOKEN-sig" >> "$WAYGATE_OUTPUT""#,
    );
    let started = with_token(
        &sb,
        &["--format", "json", "start", "outs.ron", "--env", "prod"],
    );
    assert_eq!(started.status.code(), Some(0), "{started:?}");
    let run: serde_json::Value = serde_json::from_slice(&started.stdout).expect("json");
    let run = run["run_id"].as_str().expect("run id").to_owned();
    // `advance` twice, each its own process: the values come from the store.
    for _ in 0..2 {
        let advanced = with_token(&sb, &["advance", &run]);
        assert_eq!(advanced.status.code(), Some(0), "{advanced:?}");
    }
    assert_eq!(sb.status(&run)["state"], "done");
    // The secret in a published value is masked where it is recorded, and so where it is used.
    let deployed = std::fs::read_to_string(sb.path().join("deployed.txt")).expect("deployed");
    assert_eq!(deployed, "b-1234|green|***-sig|");

    let history = sb.history(&run);
    let finished = history
        .iter()
        .find(|e| e["kind"] == "ActionFinished" && e["state"] == "build")
        .expect("the build finished");
    assert_eq!(
        finished["outputs"],
        serde_json::json!({ "build_id": "b-1234", "signed": "***-sig" })
    );
    let evaluated = history
        .iter()
        .find(|e| e["kind"] == "GuardsEvaluated" && e["state"] == "build")
        .expect("pick evaluated");
    assert_eq!(
        evaluated["guards"][0]["outputs"],
        serde_json::json!({ "colour": "green" }),
        "undeclared keys are not recorded"
    );
    let human = sb.wg(&["history", &run]);
    assert!(
        human
            .stdout
            .contains("(published build_id=b-1234, signed=***-sig)"),
        "{}",
        human.stdout
    );
    sb.verify();
}

#[test]
fn a_declared_value_not_written_fails_the_step_saying_which() {
    let sb = sandbox(
        r#"echo "build_id=b-1" >> "$WAYGATE_OUTPUT"; echo "signd=typo" >> "$WAYGATE_OUTPUT""#,
    );
    let finished = run_to_the_build_failure(&sb);
    assert_eq!(
        finished["detail"],
        "exit status 0, but declared output `signed` not written to $WAYGATE_OUTPUT (write `key=value` lines to the file it names)"
    );
    assert!(finished.get("outputs").is_none(), "{finished}");
    assert!(!sb.path().join("deployed.txt").exists());
}

#[test]
fn a_value_too_long_to_record_fails_the_step() {
    let sb = sandbox(r#"printf 'build_id=%02000d\nsigned=x\n' 7 >> "$WAYGATE_OUTPUT""#);
    let finished = run_to_the_build_failure(&sb);
    assert_eq!(
        finished["detail"],
        "exit status 0, but output `build_id` is 2000 bytes; a published value may be at most 1024"
    );
}

/// `run`s the workflow, which must end in `failed` because the build action failed, within
/// 30 seconds (a hang fails the test); returns that action's `ActionFinished`.
#[track_caller]
fn run_to_the_build_failure(sb: &Sandbox) -> serde_json::Value {
    let (out, err) = (sb.path().join("out.txt"), sb.path().join("err.txt"));
    let child = sb
        .command("tester", &["run", "outs.ron", "--env", "prod"])
        .env("WG_TEST_OUT_TOKEN", "tok-5ecret")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("waygate runs");
    let ran = Spawned::from_child(child, out, err).wait(std::time::Duration::from_secs(30));
    ran.code(6);
    let run = ran.started_run();
    let finished = sb
        .history(&run)
        .into_iter()
        .find(|e| e["kind"] == "ActionFinished")
        .expect("finished");
    assert_eq!(finished["ok"], false);
    finished
}

/// `login` publishes a session token as a secret; `deploy` uses it.
const SECRET_FLOW: &str = r#"Workflow(
    name: "secret-outs", initial: "login",
    states: {
        "login": (
            on_enter: [Command(name: "login", run: ["./login.sh"], outputs: ["session", "user"], secret_outputs: ["session"])],
            on_failure: "failed",
        ),
        "deploy": (
            on_enter: [Command(run: ["./deploy.sh"], env: { "SESSION": "${steps.login.session}", "WHO": "${steps.login.user}" })],
            on_failure: "failed",
        ),
        "done": (terminal: Success),
        "failed": (terminal: Failure),
    },
    transitions: [(from: "login", to: "deploy"), (from: "deploy", to: "done")],
)"#;

fn secret_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.write("secret.ron", SECRET_FLOW);
    sb.script(
        "login.sh",
        r#"echo "logged in with sess-9f8e7d"; printf 'session=sess-9f8e7d\nuser=ana\n' >> "$WAYGATE_OUTPUT""#,
    );
    sb.script(
        "deploy.sh",
        r#"printf '%s|%s' "$SESSION" "$WHO" > used.txt"#,
    );
    sb
}

#[test]
fn a_secret_value_reaches_later_steps_of_its_process_and_is_never_stored() {
    let sb = secret_sandbox();
    let ran = sb.wg_as("ana", &["run", "secret.ron", "--env", "prod"]);
    ran.code(0);
    let used = std::fs::read_to_string(sb.path().join("used.txt")).expect("deployed");
    assert_eq!(used, "sess-9f8e7d|ana");
    let run = ran.started_run();
    let finished = sb
        .history(&run)
        .into_iter()
        .find(|e| e["kind"] == "ActionFinished" && e["state"] == "login")
        .expect("login finished");
    assert_eq!(
        finished["outputs"],
        serde_json::json!({ "session": "***", "user": "ana" })
    );
    assert!(
        finished["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("logged in with ***")),
        "{finished}"
    );
    assert!(crate::helpers::files_containing(&sb.store(), b"sess-9f8e7d").is_empty());
}

#[test]
fn a_secret_value_published_by_another_process_is_missing_and_says_so() {
    let sb = secret_sandbox();
    sb.write(
        "secret.ron",
        &SECRET_FLOW.replace(
            r#"(from: "login", to: "deploy")"#,
            r#"(from: "login", to: "deploy", guards: [(name: "go", check: Approval(prompt: "deploy?"))])"#,
        ),
    );
    let run = sb.start("ana", "secret.ron", "prod", &[]);
    // This process publishes and waits; another one deploys, without the secret.
    sb.wg_as("ana", &["advance", &run]).code(4);
    sb.wg_as("bob", &["approve", &run, "go"]).code(0);
    sb.wg_as("ana", &["advance", &run]).code(6);
    let finished = sb
        .history(&run)
        .into_iter()
        .rev()
        .find(|e| e["kind"] == "ActionFinished")
        .expect("deploy finished");
    assert_eq!(finished["ok"], false);
    assert_eq!(
        finished["detail"],
        "variable ${steps.login.session} has no value"
    );
    assert!(!sb.path().join("used.txt").exists());
}

/// A step that replaces its `$WAYGATE_OUTPUT` file with something that is not a regular file
/// (a named pipe nobody writes to, a symbolic link, a directory) fails with a clear detail; it
/// does not hang waygate (a pipe's open blocks until a writer comes) or read what a link
/// points at.
#[test]
fn an_output_file_replaced_by_a_pipe_a_link_or_a_directory_fails_the_step_without_hanging() {
    for (what, build, says) in [
        (
            "pipe",
            r#"echo "$WAYGATE_OUTPUT" > where.txt; rm "$WAYGATE_OUTPUT"; mkfifo "$WAYGATE_OUTPUT""#,
            "is not a regular file",
        ),
        (
            "link",
            r#"echo "$WAYGATE_OUTPUT" > where.txt; echo "build_id=1" > real; echo "signed=2" >> real; rm "$WAYGATE_OUTPUT"; ln -s "$PWD/real" "$WAYGATE_OUTPUT""#,
            "is not a regular file",
        ),
        (
            "dir",
            r#"echo "$WAYGATE_OUTPUT" > where.txt; rm "$WAYGATE_OUTPUT"; mkdir "$WAYGATE_OUTPUT""#,
            "is not a regular file",
        ),
    ] {
        let sb = sandbox(build);
        let finished = run_to_the_build_failure(&sb);
        let left = std::fs::read_to_string(sb.path().join("where.txt")).expect("where.txt");
        assert!(
            std::fs::symlink_metadata(left.trim()).is_err(),
            "{what}: {left} is removed"
        );
        let detail = finished["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with("exit status 0, but $WAYGATE_OUTPUT file ") && detail.contains(says),
            "{what}: {detail}"
        );
    }
}
