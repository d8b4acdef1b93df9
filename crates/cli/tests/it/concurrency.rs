//! Several `waygate` processes at once on one store: racing advances, racing starts, and two
//! processes that must not both run the same entry action.

use std::time::Duration;

use crate::helpers::{
    kinds, of_kind, on_both_stores, one_action_workflow, wait_until, Sandbox, Spawned,
};

/// `build` → `review` behind a slow guard, so every racer reads the run at the same version
/// before any of them commits; `review` then waits on an approval.
const RACE: &str = r#"Workflow(
    name: "race",
    initial: "build",
    environments: { "dev": () },
    states: {
        "build": (),
        "review": (),
        "done": (terminal: Success),
    },
    transitions: [
        (from: "build", to: "review", guards: [(name: "slow", check: Command(run: ["sleep", "3"]))]),
        (from: "review", to: "done", guards: [(name: "ok", check: Approval(prompt: "ok?"))]),
    ],
)
"#;

on_both_stores! {
    fn racing_advances_make_exactly_one_transition_and_the_rest_conflict(sb: Sandbox) {
    sb.write("wf.ron", RACE);
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let racers: Vec<_> = (0..5)
        .map(|i| sb.spawn_as("alice", &format!("advance{i}"), &["advance", &run]))
        .collect();
    let codes: Vec<i32> = racers
        .into_iter()
        .map(|r| r.wait(Duration::from_secs(60)).code)
        .collect();
    let history = sb.history(&run);
    let moves = of_kind(&history, "Transitioned");
    assert_eq!(moves.len(), 1, "{:?}", kinds(&history));
    assert_eq!(moves[0]["from"], "build");
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "{codes:?}");
    // The losers read version 1 and found the run moved: 5. (One that started so late that
    // it read the run already in `review` waits on the approval there: 4.)
    assert!(codes.iter().all(|c| [0, 4, 5].contains(c)), "{codes:?}");
    assert!(codes.contains(&5), "{codes:?}");
    assert_eq!(sb.status(&run)["state"], "review");
    sb.verify();
    }
}

on_both_stores! {
    fn racing_starts_on_one_environment_let_one_win(sb: Sandbox) {
    sb.write("wf.ron", RACE);
    let racers: Vec<_> = (0..5)
        .map(|i| {
            sb.spawn_as(
                "alice",
                &format!("start{i}"),
                &["start", "wf.ron", "--env", "dev"],
            )
        })
        .collect();
    let ran: Vec<_> = racers
        .into_iter()
        .map(|r| r.wait(Duration::from_secs(60)))
        .collect();
    let winners: Vec<_> = ran.iter().filter(|r| r.code == 0).collect();
    assert_eq!(winners.len(), 1, "{ran:?}");
    let id = winners[0].stdout.trim();
    for loser in ran.iter().filter(|r| r.code != 0) {
        assert_eq!(loser.code, 5, "{loser:?}");
        assert!(
            loser.stderr.contains(id),
            "names the winner: {}",
            loser.stderr
        );
    }
    let runs = sb.wg(&["runs", "--format", "json"]).code(0).json();
    assert_eq!(runs.as_array().map(Vec::len), Some(1));
    sb.verify();
    }
}

/// An entry action that takes a while and leaves a mark each time it runs.
fn slow_action() -> String {
    one_action_workflow("slow-action", "dev", "30s")
}

fn slow_action_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    slow_action_setup(&sb);
    sb
}

/// The slow action's workflow and scripts in `sb`.
fn slow_action_setup(sb: &Sandbox) {
    sb.write("wf.ron", &slow_action());
    // Marks its start, then waits until the test lets it finish.
    sb.script(
        "deploy.sh",
        "echo $$ >> deploy.runs\ni=0; while [ ! -f release ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done",
    );
    sb.script("revert.sh", "echo $$ >> revert.runs");
}

fn lines(sb: &Sandbox, name: &str) -> usize {
    std::fs::read_to_string(sb.path().join(name))
        .unwrap_or_default()
        .lines()
        .count()
}

on_both_stores! {
    fn a_running_action_is_not_run_again_by_another_process(sb: Sandbox) {
    slow_action_setup(&sb);
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let first = sb.spawn_as("alice", "first", &["advance", &run]);
    wait_until("the action to start", Duration::from_secs(30), || {
        lines(&sb, "deploy.runs") == 1
    });
    // The action is running in `first`: status says so, not "interrupted".
    let st = sb.status(&run);
    assert_eq!(st["actions"][0]["status"], "running", "{st}");
    // A second advance and a drive find the run busy: exit 5, and nothing run twice.
    let second = sb.wg_as("bob", &["advance", &run]);
    second.code(5).stderr_has("busy");
    sb.wg_as("bob", &["drive", &run, "--no-wait"]).code(5);
    assert_eq!(lines(&sb, "deploy.runs"), 1);

    sb.write("release", "");
    first.wait(Duration::from_secs(30)).code(0);
    assert_eq!(lines(&sb, "deploy.runs"), 1, "the action ran once");
    let history = sb.history(&run);
    assert_eq!(of_kind(&history, "ActionStarted").len(), 1);
    assert_eq!(of_kind(&history, "ActionFinished").len(), 1);
    sb.verify();
    }
}

/// A run whose slow entry action is running in an `advance` by alice, and a `drive` by bob
/// that found the run busy and waits: `(run, advance, drive)`.
fn busy_run_with_a_waiting_drive(sb: &Sandbox) -> (String, Spawned, Spawned) {
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let holder = sb.spawn_as("alice", "holder", &["advance", &run]);
    wait_until("the action to start", Duration::from_secs(30), || {
        lines(sb, "deploy.runs") == 1
    });
    let drive = sb.spawn_as("bob", "drive", &["drive", &run]);
    wait_until(
        "the drive to find the run busy",
        Duration::from_secs(30),
        || {
            drive
                .stderr()
                .contains("running in another waygate process")
        },
    );
    (run, holder, drive)
}

#[test]
fn a_waiting_drive_takes_over_once_the_other_process_is_done() {
    let sb = slow_action_sandbox();
    let (run, first, drive) = busy_run_with_a_waiting_drive(&sb);
    sb.write("release", "");
    first.wait(Duration::from_secs(30));
    let ran = drive.wait(Duration::from_secs(60));
    ran.code(0);
    assert_eq!(lines(&sb, "deploy.runs"), 1, "the action ran once");
    assert_eq!(sb.status(&run)["status"], "succeeded");
}

#[test]
fn rollback_while_an_action_runs_elsewhere_is_committed_and_finished_by_the_holder() {
    let sb = slow_action_sandbox();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let drive = sb.spawn_as("alice", "drive", &["drive", &run]);
    wait_until("the action to start", Duration::from_secs(30), || {
        lines(&sb, "deploy.runs") == 1
    });
    let rb = sb.wg_as("bob", &["rollback", &run, "--reason", "bad canary"]);
    rb.code(0);
    assert_eq!(sb.status(&run)["state"], "rollback");
    sb.write("release", "");
    // The drive finishes its action, sees the run moved and takes the rollback path.
    let ran = drive.wait(Duration::from_secs(60));
    ran.code(6);
    assert_eq!(lines(&sb, "deploy.runs"), 1);
    assert_eq!(lines(&sb, "revert.runs"), 1, "the rollback action ran once");
    let st = sb.status(&run);
    assert_eq!(st["state"], "rolled_back");
    let history = sb.history(&run);
    let moves: Vec<(&str, &str)> = of_kind(&history, "Transitioned")
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap_or(""),
                e["to"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(moves, [("deploy", "rollback"), ("rollback", "rolled_back")]);
    sb.verify();
}

/// Waits on an approval for ever: something else has to end it.
const WAITS: &str = r#"Workflow(
    name: "waits",
    initial: "review",
    rollback: "cancelled",
    environments: { "dev": () },
    states: {
        "review": (),
        "done": (terminal: Success),
        "cancelled": (terminal: Failure),
    },
    transitions: [
        (from: "review", to: "done", guards: [(name: "ok", check: Approval(prompt: "ok?"))]),
    ],
)
"#;

/// A run of `WAITS` and alice's `drive` of it, once the run is recorded waiting.
fn a_drive_waiting_for_approval(sb: &Sandbox) -> (String, Spawned) {
    sb.write("wf.ron", WAITS);
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let drive = sb.spawn_as("alice", "drive", &["drive", &run]);
    wait_until("the drive to wait", Duration::from_secs(30), || {
        sb.status(&run)["status"] == "waiting"
    });
    (run, drive)
}

#[test]
fn a_waiting_drive_stops_when_another_process_aborts_the_run() {
    let sb = Sandbox::new();
    let (run, drive) = a_drive_waiting_for_approval(&sb);
    sb.wg_as("bob", &["abort", &run, "--reason", "stop"])
        .code(0);
    let ran = drive.wait(Duration::from_secs(30));
    ran.code(5);
    assert!(ran.stdout.contains("aborted"), "{ran:?}");
    sb.verify();
}

#[test]
fn a_waiting_drive_reports_how_a_rollback_elsewhere_ended_the_run() {
    let sb = Sandbox::new();
    let (run, drive) = a_drive_waiting_for_approval(&sb);
    // `cancelled` is a failure terminal: the rollback ends the run.
    sb.wg_as("bob", &["rollback", &run, "--reason", "stop"])
        .code(6);
    drive.wait(Duration::from_secs(30)).code(6);
}

#[test]
fn an_approval_given_the_moment_drive_starts_waiting_is_not_slept_through() {
    // The drive used to take its "has anything changed?" fingerprint after recording that it
    // waits; an approval landing in between was part of the fingerprint and never woke it.
    let sb = Sandbox::new();
    sb.write("wf.ron", WAITS);
    for i in 0..2 {
        let run = sb.start("alice", "wf.ron", "dev", &[]);
        let drive = sb.spawn_as("alice", &format!("drive{i}"), &["drive", &run]);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while sb.status(&run)["status"] != "waiting" {
            assert!(
                std::time::Instant::now() < deadline,
                "the drive never waited"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        sb.wg_as("bob", &["approve", &run, "ok"]).code(0);
        // Polling every 2 s, a drive that noticed finishes well within this.
        drive.wait(Duration::from_secs(20)).code(0);
    }
}

#[test]
fn abort_while_an_action_runs_elsewhere_stops_that_process_as_a_conflict() {
    let sb = slow_action_sandbox();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let first = sb.spawn_as("alice", "first", &["advance", &run]);
    wait_until("the action to start", Duration::from_secs(30), || {
        lines(&sb, "deploy.runs") == 1
    });
    sb.wg_as("bob", &["abort", &run, "--reason", "stop"])
        .code(0);
    sb.write("release", "");
    let ran = first.wait(Duration::from_secs(30));
    ran.code(5);
    let history = sb.history(&run);
    // The action's end is on record; nothing was evaluated or moved after the abort.
    assert_eq!(
        kinds(&history),
        [
            "RunStarted",
            "ActionStarted",
            "Aborted",
            "RunEnded",
            "ActionFinished"
        ]
    );
    assert_eq!(sb.status(&run)["status"], "aborted");
    sb.verify();
}

on_both_stores! {
    fn a_drive_waiting_on_a_busy_run_takes_over_when_the_holder_is_killed(sb: Sandbox) {
    slow_action_setup(&sb);
    let (run, holder, drive) = busy_run_with_a_waiting_drive(&sb);
    assert_eq!(lines(&sb, "deploy.runs"), 1, "busy: not run by the drive");
    // The holder dies for real: its lock goes with it, so the action was interrupted and
    // the waiting drive runs it again (once).
    holder.kill9();
    sb.write("release", "");
    drive.wait(Duration::from_secs(60)).code(0);
    assert_eq!(lines(&sb, "deploy.runs"), 2);
    let history = sb.history(&run);
    assert_eq!(of_kind(&history, "ActionStarted").len(), 2);
    assert_eq!(of_kind(&history, "ActionFinished").len(), 1);
    assert_eq!(sb.status(&run)["status"], "succeeded");
    }
}

#[test]
fn a_drive_stopped_while_another_process_runs_the_action_says_so_and_leaves_it_running() {
    let sb = slow_action_sandbox();
    let (run, holder, drive) = busy_run_with_a_waiting_drive(&sb);
    drive.signal(libc::SIGTERM);
    let ran = drive.wait(Duration::from_secs(20));
    ran.code(4);
    assert!(
        ran.stdout
            .contains("another waygate process is running its entry actions"),
        "{ran:?}"
    );
    // The stop was bob's drive's, not the action's: nothing recorded, alice's advance goes on.
    assert!(of_kind(&sb.history(&run), "ActionInterrupted").is_empty());
    assert_eq!(sb.status(&run)["actions"][0]["status"], "running");
    sb.write("release", "");
    holder.wait(Duration::from_secs(30)).code(0);
    assert_eq!(lines(&sb, "deploy.runs"), 1, "the action ran once");
}
