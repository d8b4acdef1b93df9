//! Approvals count only for a guard out of the state the run is in, given in this visit of
//! it; an unused approval can be withdrawn.

use std::time::Duration;

use crate::helpers::{kinds, of_kind, on_both_stores, wait_until, Sandbox};

/// `a` -> `b` behind `first`; from `b`, `back` to `a` or `later` to `done`.
const GATES: &str = r#"Workflow(
    name: "gates",
    initial: "a",
    environments: { "dev": () },
    states: {
        "a": (description: "first gate"),
        "b": (),
        "done": (terminal: Success),
    },
    transitions: [
        (from: "a", to: "b", guards: [(name: "first", check: Approval(prompt: "a is fine"))]),
        (from: "b", to: "a", guards: [(name: "back", check: Approval(prompt: "go round again"))]),
        (from: "b", to: "done", guards: [(name: "later", check: Approval(prompt: "production is fine"))]),
    ],
)
"#;

fn sandbox() -> (Sandbox, String) {
    let sb = Sandbox::new();
    sb.write("wf.ron", GATES);
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    (sb, run)
}

#[test]
fn an_approval_for_a_later_state_is_refused_and_the_later_gate_still_stops() {
    let (sb, run) = sandbox();
    let ahead = sb.wg_as("bob", &["approve", &run, "later"]);
    ahead.code(1);
    assert!(
        ahead.stderr.contains("the run is in `a`") && ahead.stderr.contains("`b -> done`"),
        "names the current state and where the guard is: {}",
        ahead.stderr
    );
    let history = sb.history(&run);
    let refused = of_kind(&history, "Approved");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["accepted"], false, "recorded as refused");

    sb.wg_as("bob", &["approve", &run, "first"]).code(0);
    sb.wg(&["advance", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "b");
    // The gate after `b` did not pass on the early attempt.
    sb.wg(&["drive", &run, "--no-wait"]).code(4);
    assert_eq!(sb.status(&run)["state"], "b");
    let pending = &sb.status(&run)["pending_approvals"];
    let later = pending
        .as_array()
        .and_then(|p| p.iter().find(|p| p["guard"] == "later"))
        .expect("later pending");
    assert_eq!(later["approved_by"], serde_json::json!([]));
    // Unknown names are not approval guards anywhere: nothing recorded.
    let before = sb.history(&run).len();
    sb.wg_as("bob", &["approve", &run, "nope"]).code(1);
    assert_eq!(sb.history(&run).len(), before);
}

#[test]
fn withdraw_then_advance_waits_again() {
    let (sb, run) = sandbox();
    sb.wg_as("bob", &["approve", &run, "first"]).code(0);
    let out = sb.wg_as(
        "bob",
        &[
            "approve",
            &run,
            "first",
            "--withdraw",
            "--comment",
            "found a bug",
        ],
    );
    out.code(0);
    assert!(
        out.stdout.contains("bob withdrew the approval of `first`"),
        "{out:?}"
    );
    assert!(out.stdout.contains("0 of 1 needed"), "{out:?}");
    sb.wg(&["advance", &run]).code(4);
    assert_eq!(sb.status(&run)["state"], "a");

    // Nothing left to withdraw, and carol never approved.
    let again = sb.wg_as("bob", &["approve", &run, "first", "--withdraw"]);
    again.code(1).stderr_has("nothing withdrawn");
    sb.wg_as("carol", &["approve", &run, "first", "--withdraw"])
        .code(1);

    // Recorded, listed, exported and chained like every other event.
    let history = sb.history(&run);
    let withdrawn = of_kind(&history, "ApprovalWithdrawn");
    assert_eq!(withdrawn.len(), 1, "{:?}", kinds(&history));
    assert_eq!(withdrawn[0]["actor"], "bob");
    assert_eq!(withdrawn[0]["guard"], "first");
    assert_eq!(withdrawn[0]["comment"], "found a bug");
    let human = sb.wg(&["history", &run]).code(0).stdout.clone();
    assert!(
        human.contains("withdrew the approval of `first`: found a bug"),
        "{human}"
    );
    let audit = sb
        .wg(&["--format", "json", "audit", "--kind", "ApprovalWithdrawn"])
        .code(0)
        .json();
    assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit}");
    let csv = sb
        .wg(&["--format", "csv", "audit", "--run", &run])
        .code(0)
        .stdout
        .clone();
    assert!(csv.contains(",ApprovalWithdrawn,"), "{csv}");
    sb.verify();

    // Approving again counts again.
    sb.wg_as("bob", &["approve", &run, "first"]).code(0);
    sb.wg(&["advance", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "b");
}

#[test]
fn an_approval_already_used_cannot_be_withdrawn() {
    let (sb, run) = sandbox();
    sb.wg_as("bob", &["approve", &run, "first"]).code(0);
    sb.wg(&["advance", &run]).code(0);
    let late = sb.wg_as("bob", &["approve", &run, "first", "--withdraw"]);
    late.code(1).stderr_has("the run is in `b`");
    assert!(of_kind(&sb.history(&run), "ApprovalWithdrawn").is_empty());
}

#[test]
fn re_entering_a_state_needs_new_approvals() {
    let (sb, run) = sandbox();
    sb.wg_as("bob", &["approve", &run, "first"]).code(0);
    sb.wg(&["advance", &run]).code(0);
    sb.wg_as("bob", &["approve", &run, "back"]).code(0);
    sb.wg(&["advance", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "a");
    // Back in `a`: bob's approval of `first` was for the first visit.
    let status = sb.status(&run);
    assert_eq!(
        status["pending_approvals"][0]["approved_by"],
        serde_json::json!([]),
        "{status}"
    );
    sb.wg(&["advance", &run]).code(4);
    assert_eq!(sb.status(&run)["state"], "a");
}

/// A gate whose other guard takes a while: a withdrawal can land while `drive` evaluates it.
const SLOW_GATE: &str = r#"Workflow(
    name: "slow-gate",
    initial: "review",
    environments: { "dev": () },
    states: {
        "review": (),
        "release": (on_enter: [Command(run: ["touch", "released"])]),
        "done": (terminal: Success),
    },
    transitions: [
        (from: "review", to: "release", guards: [
            (name: "slow", check: Command(run: ["./slow.sh"])),
            (name: "sign", check: Approval(prompt: "ship it")),
        ]),
        (from: "release", to: "done"),
    ],
)
"#;

#[test]
fn a_withdrawal_during_drives_first_evaluation_makes_it_wait_not_exit() {
    let sb = Sandbox::new();
    sb.write("wf.ron", SLOW_GATE);
    // Says it started, then takes long enough for a withdrawal to land meanwhile.
    sb.script("slow.sh", "touch slow.started\nsleep 2");
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg_as("bob", &["approve", &run, "sign"]).code(0);
    let drive = sb.spawn_as("alice", "drive", &["--quiet", "drive", &run]);
    wait_until(
        "drive to evaluate the slow guard",
        Duration::from_secs(30),
        || sb.path().join("slow.started").exists(),
    );
    sb.wg_as("bob", &["approve", &run, "sign", "--withdraw"])
        .code(0);
    // The drive read the approval before it was withdrawn: it cannot move, and waits again.
    wait_until(
        "drive to look again and wait",
        Duration::from_secs(30),
        || sb.status(&run)["status"] == "waiting",
    );
    assert!(
        !sb.path().join("released").exists(),
        "the release ran on a withdrawn approval"
    );
    sb.wg_as("bob", &["approve", &run, "sign"]).code(0);
    let ran = drive.wait(Duration::from_secs(60));
    ran.code(0);
    assert!(sb.path().join("released").exists());
}

/// One person whatever the case they type their name in: `Alice` may not approve the run
/// `alice` started (`not_by_initiator`), `bob` and `BOB` count once toward `min`, `Bob` can
/// withdraw `bob`'s approval, an approver listed as `carol` is `Carol` too, and the initiator
/// may not override the approval under another case either.
#[test]
fn actor_names_differing_only_by_case_are_one_person() {
    let sb = Sandbox::new();
    sb.write(
        "two.ron",
        r#"Workflow(
    name: "two", initial: "a",
    overridable_by: ["alice", "oncall"],
    states: { "a": (), "done": (terminal: Success) },
    transitions: [
        (from: "a", to: "done", guards: [(name: "sign-off", check: Approval(prompt: "ok?", min: 2, approvers: ["bob", "carol", "Alice"], not_by_initiator: true))]),
    ],
)"#,
    );
    let run = sb.start("alice", "two.ron", "dev", &[]);
    for me in ["Alice", "ALICE", "alice"] {
        let own = sb.wg_as(me, &["approve", &run, "sign-off"]);
        own.code(1);
        assert!(
            own.stderr
                .contains(&format!("{me} started this run and may not approve it")),
            "{}",
            own.stderr
        );
    }
    let own = sb.wg_as("ALICE", &["override", &run, "sign-off", "--reason", "me"]);
    own.code(1);
    assert!(
        own.stderr
            .contains("ALICE started this run and may not override its approval"),
        "{}",
        own.stderr
    );
    sb.wg_as("bob", &["approve", &run, "sign-off"]).code(0);
    sb.wg_as("BOB", &["approve", &run, "sign-off"]).code(0);
    let pending = &sb.status(&run)["pending_approvals"][0];
    assert_eq!(
        pending["approved_by"],
        serde_json::json!(["bob"]),
        "{pending}"
    );
    sb.wg_as("alice", &["drive", &run, "--no-wait"]).code(4);
    // `Bob` withdraws bob's approval; then bob and Carol (listed as `carol`) make two.
    sb.wg_as("Bob", &["approve", &run, "sign-off", "--withdraw"])
        .code(0);
    assert_eq!(
        sb.status(&run)["pending_approvals"][0]["approved_by"],
        serde_json::json!([])
    );
    sb.wg_as("bob", &["approve", &run, "sign-off"]).code(0);
    sb.wg_as("Carol", &["approve", &run, "sign-off"]).code(0);
    sb.wg_as("alice", &["drive", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "done");
}

on_both_stores! {
    /// `audit --actor` finds a person as the approval rules know them (`actor::same_actor`):
    /// `Bob` and `bob` are one approver, so asking what bob did shows both of his events.
    fn audit_actor_finds_a_person_whatever_case_they_typed(sb: Sandbox) {
    sb.write("wf.ron", GATES);
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg_as("Bob", &["approve", &run, "first"]).code(0);
    sb.wg_as("bob", &["approve", &run, "first", "--withdraw"]).code(0);
    for asked in ["bob", "Bob", "BOB"] {
        let found = sb
            .wg(&["--format", "json", "audit", "--actor", asked])
            .code(0)
            .json();
        let actors: Vec<&str> = found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["actor"].as_str())
            .collect();
        assert_eq!(actors, ["Bob", "bob"], "--actor {asked}: {found}");
    }
    let alice = sb
        .wg(&["--format", "json", "audit", "--actor", "ALICE"])
        .code(0)
        .json();
    assert_eq!(kinds(alice.as_array().expect("list")), ["RunStarted"]);
    }
}
