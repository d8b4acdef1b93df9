//! `waygate rollback` once, twice in a row and twice at once: a run already on its rollback
//! path refuses another rollback (exit 5), so no rollback action runs twice.

use std::time::Duration;

use crate::helpers::{kinds, of_kind, Sandbox};

/// A deployment with a rollback state whose action leaves a mark, a verify step after it that
/// waits on a person, and an escalation only the rollback leads to.
const FLOW: &str = r#"Workflow(
    name: "rb",
    initial: "deploy",
    rollback: "rollback",
    environments: { "dev": (), "a": (), "b": (), "c": () },
    states: {
        "deploy": (on_failure: "rollback"),
        "done": (terminal: Success),
        "rollback": (on_enter: [Command(run: ["./revert.sh"])], on_failure: "escalate"),
        "rollback_verify": (),
        "escalate": (),
        "rolled_back": (terminal: Failure),
    },
    transitions: [
        (from: "deploy", to: "done", guards: [(name: "go", check: Approval(prompt: "ship it"))]),
        (from: "rollback", to: "rollback_verify"),
        (from: "rollback_verify", to: "rolled_back", guards: [(name: "checked", check: Approval(prompt: "old version works"))]),
        (from: "escalate", to: "rolled_back"),
    ],
)
"#;

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.write("wf.ron", FLOW);
    // Slow enough that a second rollback arrives while the first one's action runs.
    sb.script("revert.sh", "echo \"$$\" >> revert.runs\nsleep 1");
    sb
}

fn reverts(sb: &Sandbox) -> usize {
    std::fs::read_to_string(sb.path().join("revert.runs"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn a_second_rollback_is_refused_and_changes_nothing() {
    let sb = sandbox();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg_as("bob", &["rollback", &run, "--reason", "errors up"])
        .code(0);
    assert_eq!(reverts(&sb), 1);
    let before = sb.history(&run).len();

    let again = sb.wg_as("carol", &["rollback", &run, "--reason", "errors up"]);
    again.code(5);
    assert!(
        again.stderr.contains("already under way") && again.stderr.contains("`rollback`"),
        "says where the run is: {}",
        again.stderr
    );
    assert!(again.stderr.contains("bob"), "says who: {}", again.stderr);
    assert_eq!(reverts(&sb), 1, "the rollback action did not run again");
    assert_eq!(sb.history(&run).len(), before, "nothing recorded");

    // A state after the rollback state is on the rollback path too.
    sb.wg(&["advance", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "rollback_verify");
    let later = sb.wg_as(
        "carol",
        &["--format", "json", "rollback", &run, "--reason", "x"],
    );
    later.code(5).stderr_has("`rollback_verify`");
    assert_eq!(reverts(&sb), 1);
    let history = sb.history(&run);
    assert_eq!(of_kind(&history, "RollbackRequested").len(), 1);
    sb.verify();
}

#[test]
fn two_concurrent_rollbacks_move_once_and_run_the_rollback_actions_once() {
    let sb = sandbox();
    for (round, env) in ["a", "b", "c"].into_iter().enumerate() {
        let run = sb.start("alice", "wf.ron", env, &[]);
        let before = reverts(&sb);
        let racers: Vec<_> = (0..3)
            .map(|i| {
                sb.spawn_as(
                    &format!("op{i}"),
                    &format!("rollback-{round}-{i}"),
                    &["rollback", &run, "--reason", "pressed the button"],
                )
            })
            .collect();
        let ran: Vec<_> = racers
            .into_iter()
            .map(|r| r.wait(Duration::from_secs(60)))
            .collect();
        let codes: Vec<i32> = ran.iter().map(|r| r.code).collect();
        assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "{ran:?}");
        assert_eq!(codes.iter().filter(|&&c| c == 5).count(), 2, "{ran:?}");
        assert_eq!(reverts(&sb), before + 1, "one rollback action run: {ran:?}");
        let history = sb.history(&run);
        assert_eq!(
            of_kind(&history, "RollbackRequested").len(),
            1,
            "{:?}",
            kinds(&history)
        );
        let moves = of_kind(&history, "Transitioned");
        assert_eq!(moves.len(), 1, "{:?}", kinds(&history));
        assert_eq!(sb.status(&run)["state"], "rollback");
    }
    sb.verify();
}

/// A `notify` state that the deployment and the rollback both lead to, and a retry from the
/// rollback state back to `initial`.
const SHARED: &str = r#"Workflow(
    name: "shared",
    initial: "deploy",
    rollback: "rollback",
    environments: { "dev": (), "retry": () },
    states: {
        "deploy": (),
        "notify": (),
        "rollback": (on_enter: [Command(run: ["./revert.sh"])]),
        "done": (terminal: Success),
    },
    transitions: [
        (from: "deploy", to: "notify", guards: [(name: "go", check: Approval(prompt: "ship it"))]),
        (from: "rollback", to: "notify", guards: [(name: "reverted", check: Approval(prompt: "old version works"))]),
        (from: "rollback", to: "deploy", guards: [(name: "retry", check: Approval(prompt: "try again"))]),
        (from: "notify", to: "done", guards: [(name: "ack", check: Approval(prompt: "team told"))]),
    ],
)
"#;

#[test]
fn a_second_rollback_from_a_state_the_deployment_shares_does_not_revert_the_revert() {
    let sb = sandbox();
    sb.write("shared.ron", SHARED);
    let run = sb.start("alice", "shared.ron", "dev", &[]);
    sb.wg_as("bob", &["rollback", &run, "--reason", "errors up"])
        .code(0);
    assert_eq!(reverts(&sb), 1);
    sb.wg_as("bob", &["approve", &run, "reverted"]).code(0);
    sb.wg(&["advance", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "notify");
    let before = sb.history(&run).len();

    // `notify` is where the deployment goes too, but this run got there by rolling back.
    let again = sb.wg_as("carol", &["rollback", &run, "--reason", "errors up"]);
    again.code(5);
    assert!(
        again.stderr.contains("already under way") && again.stderr.contains("`notify`"),
        "says where the run is: {}",
        again.stderr
    );
    assert_eq!(reverts(&sb), 1, "the rollback action did not run again");
    assert_eq!(sb.history(&run).len(), before, "nothing recorded");
}

#[test]
fn a_run_that_went_back_to_its_initial_state_after_a_rollback_may_roll_back_again() {
    let sb = sandbox();
    sb.write("shared.ron", SHARED);
    let run = sb.start("alice", "shared.ron", "retry", &[]);
    sb.wg_as("bob", &["rollback", &run, "--reason", "errors up"])
        .code(0);
    sb.wg_as("bob", &["approve", &run, "retry"]).code(0);
    sb.wg(&["advance", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "deploy");
    // A new attempt: its own rollback is a first one.
    sb.wg_as("carol", &["rollback", &run, "--reason", "errors up again"])
        .code(0);
    assert_eq!(reverts(&sb), 2);
}
