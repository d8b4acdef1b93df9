//! How commands report a run's end and the moves that lead there: a run that ended already,
//! a run aborted by another command, a failure path straight into an end state, a move caused
//! by a failure, and a failed action in a terminal state. Each says the truth in words and in
//! its exit code.

use std::time::Duration;

use crate::helpers::{of_kind, wait_until, Sandbox};

/// `a` leads to `done` past one guard; `nope` fails unless the file `pass` exists. `a`'s
/// failure path goes straight to the failure end `failed`. `done` notifies the team with
/// `./notify.sh`.
const STRAIGHT: &str = r#"Workflow(
    name: "straight",
    initial: "a",
    environments: { "dev": () },
    states: {
        "a": (on_failure: "failed"),
        "done": (terminal: Success, on_enter: [Command(run: ["./notify.sh"])]),
        "failed": (terminal: Failure),
    },
    transitions: [
        (from: "a", to: "done", guards: [(name: "nope", check: Command(run: ["test", "-f", "pass"]))]),
    ],
)
"#;

fn straight() -> Sandbox {
    let sb = Sandbox::new();
    sb.write("wf.ron", STRAIGHT);
    sb.script("notify.sh", "true");
    sb
}

#[test]
fn drive_on_a_run_that_succeeded_already_reports_it_and_exits_0() {
    let sb = straight();
    sb.write("pass", "");
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["drive", &run]).code(0);
    for _ in 0..2 {
        let again = sb.wg(&["drive", &run]);
        again.code(0);
        assert!(
            again
                .stdout
                .contains(&format!("run {run} had already ended: succeeded in `done`")),
            "{again:?}"
        );
    }
    let json = sb.wg(&["--format", "json", "drive", &run]).code(0).json();
    assert_eq!(json["status"], "succeeded");
    assert_eq!(json["exit"], 0);
}

#[test]
fn drive_on_a_run_that_failed_already_exits_6() {
    let sb = straight();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["drive", &run]).code(6);
    let again = sb.wg(&["drive", &run]);
    again.code(6);
    assert!(
        again
            .stdout
            .contains("had already ended: ended failed in `failed`"),
        "{again:?}"
    );
}

#[test]
fn drive_on_a_run_that_was_aborted_exits_5_naming_who_and_why() {
    let sb = straight();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg_as("bob", &["abort", &run, "--reason", "superseded by 1.0.1"])
        .code(0);
    let again = sb.wg(&["drive", &run]);
    again.code(5);
    assert!(
        again
            .stdout
            .contains("had already ended: was aborted in `a` (by bob: superseded by 1.0.1)"),
        "{again:?}"
    );
}

#[test]
fn drive_aborted_by_another_command_while_waiting_says_who_and_why() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        &STRAIGHT.replace(
            r#"Command(run: ["test", "-f", "pass"])"#,
            r#"Wait(duration: "1h")"#,
        ),
    );
    sb.script("notify.sh", "true");
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let drive = sb.spawn_as("alice", "drive", &["drive", &run]);
    wait_until("the drive to wait", Duration::from_secs(30), || {
        sb.status(&run)["status"] == "waiting"
    });
    sb.wg_as("bob", &["abort", &run, "--reason", "bad release"])
        .code(0);
    let ran = drive.wait(Duration::from_secs(30));
    ran.code(5);
    assert!(
        ran.stdout
            .contains("was aborted in `a` by another command (by bob: bad release)"),
        "{ran:?}"
    );
    assert!(!ran.stdout.contains("conflict"), "{ran:?}");
}

#[test]
fn drive_aborted_by_another_command_during_an_action_says_who_and_why() {
    aborted_by_another_command_during_an_action("drive");
}

/// Runs `command RUN` (`drive` or `advance`) on a run whose first state's entry action waits;
/// bob aborts the run while the action runs; `command` then says who aborted and why, exit 5.
fn aborted_by_another_command_during_an_action(command: &str) {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        &STRAIGHT.replace(
            r#""a": (on_failure: "failed"),"#,
            r#""a": (on_failure: "failed", on_enter: [Command(run: ["./slow.sh"])]),"#,
        ),
    );
    sb.script("notify.sh", "true");
    sb.script(
        "slow.sh",
        "touch started\ni=0; while [ ! -f go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done",
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let cmd = sb.spawn_as("alice", command, &[command, &run]);
    wait_until("the action to run", Duration::from_secs(30), || {
        sb.path().join("started").exists()
    });
    sb.wg_as("bob", &["abort", &run, "--reason", "wrong branch"])
        .code(0);
    sb.write("go", "");
    let ran = cmd.wait(Duration::from_secs(30));
    ran.code(5);
    assert!(
        ran.stdout
            .contains("was aborted in `a` by another command (by bob: wrong branch)"),
        "{ran:?}"
    );
    assert!(!ran.stderr.contains("conflict"), "{ran:?}");
    sb.verify();
}

#[test]
fn a_failure_path_straight_to_an_end_names_the_state_the_guard_failed_in() {
    let sb = straight();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let ran = sb.wg(&["drive", &run]);
    ran.code(6).stderr_has("a -> done: guard nope failed");
    assert!(!ran.stderr.contains("failed -> done"), "{}", ran.stderr);
    ran.stderr_has("→ a -> failed (on_failure)");
}

/// A watch on `deploy -> done`; `deploy` falls back to the rollback state.
const WATCHED: &str = r#"Workflow(
    name: "watched",
    initial: "deploy",
    rollback: "rollback",
    environments: { "dev": () },
    states: {
        "deploy": (),
        "done": (terminal: Success),
        "rollback": (),
        "rolled_back": (terminal: Failure),
    },
    transitions: [
        (from: "deploy", to: "done", guards: [(name: "healthy", check: Watch(check: Command(run: ["test", "-f", "healthy"]), duration: "1h", interval: "1s"))]),
        (from: "rollback", to: "rolled_back"),
    ],
)
"#;

#[test]
fn advance_into_rollback_by_a_broken_watch_is_not_success() {
    let sb = Sandbox::new();
    sb.write("wf.ron", WATCHED);
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let ran = sb.wg(&["advance", &run]);
    ran.code(3);
    assert!(
        ran.stdout
            .contains("moved `deploy` -> `rollback` (watch: watch `healthy` failed)"),
        "{ran:?}"
    );
    let json = sb.wg(&["--format", "json", "status", &run]).code(0).json();
    assert_eq!(json["state"], "rollback");
}

#[test]
fn advance_whose_new_state_action_fails_is_not_success() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        r#"Workflow(
    name: "act",
    initial: "build",
    rollback: "rollback",
    environments: { "dev": () },
    states: {
        "build": (),
        "deploy": (on_enter: [Command(run: ["false"])]),
        "done": (terminal: Success),
        "rollback": (),
        "rolled_back": (terminal: Failure),
    },
    transitions: [
        (from: "build", to: "deploy"),
        (from: "deploy", to: "done"),
        (from: "rollback", to: "rolled_back"),
    ],
)
"#,
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let ran = sb.wg(&["advance", &run]);
    ran.code(3);
    assert!(
        ran.stdout
            .contains("moved `build` -> `rollback` (action: action 1 (Command false) failed"),
        "{ran:?}"
    );
    // An ordinary move is still success.
    let sb = Sandbox::new();
    sb.write("wf.ron", STRAIGHT);
    sb.script("notify.sh", "true");
    sb.write("pass", "");
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["advance", &run]).code(0);
}

#[test]
fn a_failed_action_in_a_terminal_state_is_named() {
    let sb = straight();
    sb.script("notify.sh", "echo 'team chat is down' >&2; exit 7");
    sb.write("pass", "");
    let ran = sb.wg(&["run", "wf.ron", "--env", "dev"]);
    ran.code(0);
    assert!(ran.stdout.contains("succeeded in `done`"), "{ran:?}");
    assert!(
        ran.stdout
            .contains("warning: action 1 of `done` (Command ./notify.sh) failed: exit status 7"),
        "{ran:?}"
    );
    let run = ran.started_run();
    let history = sb.history(&run);
    assert_eq!(of_kind(&history, "ActionFinished")[0]["ok"], false);
    // Reported again by a later drive.
    let again = sb.wg(&["drive", &run]);
    again.code(0);
    assert!(
        again.stdout.contains("warning: action 1 of `done`"),
        "{again:?}"
    );
}

#[test]
fn advance_aborted_by_another_command_during_an_action_says_who_and_why() {
    aborted_by_another_command_during_an_action("advance");
}

#[test]
fn an_abort_reason_cannot_fake_a_line_in_drive_s_report() {
    let sb = straight();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let fake = format!("oops\nrun {run} succeeded in `done`");
    let aborted = sb.wg_as("bob", &["abort", &run, "--reason", &fake]);
    if aborted.code != 0 {
        // Refused outright is fine too: then there is nothing to fake.
        return;
    }
    let again = sb.wg(&["drive", &run]);
    again.code(5);
    assert_eq!(again.stdout.lines().count(), 1, "{again:?}");
    assert!(again.stdout.contains("oops\\nrun"), "{again:?}");
    let json = sb.wg(&["--format", "json", "drive", &run]).code(5).json();
    assert!(json["message"].as_str().is_some_and(|m| m.contains(&fake)));
}

/// `check` on a run that has ended says so, like `advance`, and runs none of the guards of
/// the state it ended in: it used to run them (their commands included) and exit 1 with a
/// listing that read like a live run, and no word of why.
#[test]
fn check_on_an_ended_run_says_it_ended_and_runs_no_guard() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        r#"Workflow(name: "ck", initial: "a",
            states: {"a": (), "z": (terminal: Success)},
            transitions: [(from: "a", to: "z", guards: [
                (name: "probe", check: Command(run: ["touch", "probed"])),
            ])])"#,
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["abort", &run, "--reason", "called off"]).code(0);
    let out = sb.wg(&["check", &run]);
    out.code(1).stderr_has("has already ended");
    assert!(
        !sb.path().join("probed").exists(),
        "check ran a guard of an ended run"
    );
}
