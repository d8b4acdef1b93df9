//! The shipped blue/green example: values passed between steps, a shared lock, and what
//! `validate` says when the rollback tries to use a value it may not have.

use crate::helpers::{repo, Sandbox};

fn example() -> String {
    repo()
        .join("workflows/examples/blue-green.ron")
        .display()
        .to_string()
}

#[test]
fn the_example_deploys_the_build_it_made_to_the_idle_colour() {
    let sb = Sandbox::new();
    let ran = sb.wg_as(
        "ana",
        &[
            "run",
            &example(),
            "--env",
            "local",
            "--var",
            "live_colour=green",
        ],
    );
    ran.code(0);
    let run = ran.started_run();
    let build = format!("b-{run}");
    ran.stderr_has(&format!(
        "[switch] action 1 | switching traffic to blue running {build}"
    ));
    let history = sb.history(&run);
    let published = history
        .iter()
        .find(|e| e["kind"] == "ActionFinished" && e["state"] == "build")
        .expect("build finished");
    assert_eq!(published["outputs"]["build_id"], build.as_str());
    let notified = history.last().expect("events");
    assert_eq!(
        (&notified["kind"], &notified["on"]),
        (&"Notified".into(), &"RunEnded".into())
    );
}

#[test]
fn the_example_holds_a_lock_other_workflows_share() {
    let sb = Sandbox::new();
    let held = sb.start("ana", &example(), "local", &[]);
    sb.write(
        "hotfix.ron",
        r#"Workflow(
    name: "hotfix", initial: "patch",
    environments: { "local": (lock: "chatbot-local") },
    states: { "patch": (), "done": (terminal: Success) },
    transitions: [(from: "patch", to: "done")],
)"#,
    );
    let refused = sb.wg_as("bob", &["start", "hotfix.ron", "--env", "local"]);
    refused.code(5).stderr_has(&format!(
        "lock `chatbot-local` (environment `local` of workflow `hotfix`) is held by run {held}"
    ));
}

#[test]
fn the_rollback_may_not_use_the_idle_colour_and_validate_says_why_and_where() {
    let sb = Sandbox::new();
    let text = std::fs::read_to_string(example()).expect("example");
    let changed = text.replace(
        r#"["echo", "traffic stays on", "${live_colour}"]"#,
        r#"["echo", "traffic back from", "${steps.idle.colour}"]"#,
    );
    assert_ne!(changed, text, "the example's rollback action changed");
    sb.write("bg.ron", &changed);
    let ran = sb.wg(&["--format", "json", "validate", "bg.ron"]);
    ran.code(1);
    let d = &ran.json()[0];
    let line = changed
        .lines()
        .position(|l| l.contains("traffic back from"))
        .expect("the line")
        + 1;
    let column = changed
        .lines()
        .nth(line - 1)
        .and_then(|l| l.find("${steps"))
        .expect("col")
        + 1;
    assert_eq!(
        (d["code"].as_str(), d["line"].as_u64(), d["column"].as_u64()),
        (
            Some("unpublished-output"),
            Some(line as u64),
            Some(column as u64)
        )
    );
    assert_eq!(
        d["message"],
        "${steps.idle.colour} may have no value: a run can reach action 1 of `rollback` by `build` -> `rollback` without running `idle`"
    );
}
