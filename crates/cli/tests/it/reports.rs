//! What the reading and small acting commands print and how they exit, each case one a user
//! ran into: `audit --kind`, blank reasons, `runs` filters and columns, `status` hints,
//! formats and descriptions.

use crate::helpers::{Sandbox, RUNS_COLUMNS};

/// One approval gate out of a described first state.
const GATE: &str = r#"Workflow(
    name: "gate",
    description: "Ships the thing, with a sign-off.",
    initial: "review",
    rollback: "cancelled",
    environments: { "dev": (), "prod": () },
    states: {
        "review": (description: "People read the release notes."),
        "done": (terminal: Success),
        "cancelled": (terminal: Failure),
    },
    transitions: [
        (from: "review", to: "done", description: "Release approved", guards: [(name: "sign-off", check: Approval(prompt: "notes read"))]),
    ],
)
"#;

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.write("wf.ron", GATE);
    sb
}

#[test]
fn audit_kind_bogus_is_a_usage_error_listing_every_kind() {
    let sb = sandbox();
    sb.start("alice", "wf.ron", "dev", &[]);
    let bogus = sb.wg(&["audit", "--kind", "Bogus"]);
    bogus.code(2);
    for kind in ["RunStarted", "Approved", "ApprovalWithdrawn", "RunEnded"] {
        bogus.stderr_has(kind);
    }
}

/// `abort` and `rollback` of `run` with each of `reasons` are usage errors that name the
/// reason.
fn refused_as_blank(sb: &Sandbox, run: &str, reasons: &[&str]) {
    for reason in reasons {
        for cmd in ["abort", "rollback"] {
            let ran = sb.wg(&[cmd, run, "--reason", reason]);
            ran.code(2);
            assert!(
                ran.stderr.contains("reason"),
                "{cmd} {reason:?}: {}",
                ran.stderr
            );
        }
    }
}

#[test]
fn a_blank_reason_is_refused_for_abort_and_rollback() {
    let sb = sandbox();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let before = sb.history(&run).len();
    refused_as_blank(&sb, &run, &["", "   ", "\t\n"]);
    assert_eq!(sb.history(&run).len(), before, "nothing recorded");
    assert_eq!(sb.status(&run)["status"], "active");
    sb.wg(&["abort", &run, "--reason", "superseded"]).code(0);
}

#[test]
fn a_reason_of_only_invisible_characters_is_refused_as_blank() {
    let sb = sandbox();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let before = sb.history(&run).len();
    // A zero-width space, a byte-order mark, an escape and a bidi override say nothing either.
    refused_as_blank(
        &sb,
        &run,
        &["\u{200b}", " \u{feff} ", "\u{1b}", "\u{202e}\u{200b}"],
    );
    assert_eq!(sb.history(&run).len(), before, "nothing recorded");
    sb.wg(&["abort", &run, "--reason", "superseded \u{200b}"])
        .code(0);
}

#[test]
fn runs_status_bogus_is_a_usage_error_like_audit_kind_bogus() {
    let sb = sandbox();
    sb.start("alice", "wf.ron", "dev", &[]);
    let ran = sb.wg(&["runs", "--status", "Bogus"]);
    ran.code(2);
    assert!(
        ran.stderr
            .contains("--status \"Bogus\": one of active, waiting"),
        "{}",
        ran.stderr
    );
}

#[test]
fn runs_status_active_lists_waiting_runs_too() {
    let sb = sandbox();
    let waiting = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["advance", &waiting]).code(4);
    let active = sb.start("alice", "wf.ron", "prod", &[]);
    let ids = |status: &str| -> Vec<String> {
        let json = sb
            .wg(&["--format", "json", "runs", "--status", status])
            .code(0)
            .json();
        json.as_array()
            .into_iter()
            .flatten()
            .map(|r| r["run_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(ids("active"), [waiting.clone(), active.clone()]);
    assert_eq!(ids("waiting"), std::slice::from_ref(&waiting));
    sb.wg(&["abort", &active, "--reason", "done with it"])
        .code(0);
    assert_eq!(ids("active"), [waiting]);
    assert_eq!(ids("aborted"), [active]);
}

#[test]
fn runs_prints_its_documented_columns_in_every_format() {
    let sb = sandbox();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["abort", &run, "--reason", "r"]).code(0);
    let docs = std::fs::read_to_string(crate::helpers::repo().join("docs/cli.md")).expect("docs");
    let documented = RUNS_COLUMNS
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    assert!(
        docs.replace('\n', " ").contains(&documented),
        "docs/cli.md lists: {documented}"
    );

    let json = sb.wg(&["--format", "json", "runs"]).code(0).json();
    let keys: Vec<&str> = json[0]
        .as_object()
        .expect("a row")
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = RUNS_COLUMNS.to_vec();
    want.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, want);
    assert!(json[0]["ended_at"].is_string());

    let csv = sb.wg(&["--format", "csv", "runs"]).code(0).stdout.clone();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(RUNS_COLUMNS.join(",").as_str()));
    let row: Vec<&str> = lines.next().expect("a row").split(',').collect();
    assert_eq!(row.len(), RUNS_COLUMNS.len(), "{csv}");
    assert_eq!((row[4], row[5]), ("aborted", "2"), "{csv}");
    assert!(!row[9].is_empty(), "ended_at: {csv}");

    let human = sb.wg(&["runs"]).code(0).stdout.clone();
    let header: Vec<&str> = human
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(
        header.join(" "),
        "RUN WORKFLOW ENV STATE STATUS VERSION INITIATOR STARTED UPDATED ENDED"
    );
}

#[test]
fn the_approval_hint_in_status_keeps_the_store_and_works_when_pasted() {
    let sb = sandbox();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let status = sb.wg(&["status", &run]).code(0).stdout.clone();
    let hint = status
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("waygate ") && l.contains(" approve "))
        .unwrap_or_else(|| panic!("no approve hint:\n{status}"))
        .to_owned();
    assert!(hint.contains("--store"), "{hint}");
    let json = sb.status(&run);
    assert_eq!(json["pending_approvals"][0]["command"], hint.as_str());

    // Pasted into a shell in another directory, by the approver.
    let elsewhere = sb.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let bin_dir = crate::helpers::bin()
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pasted = std::process::Command::new("sh")
        .arg("-c")
        .arg(&hint)
        .current_dir(&elsewhere)
        .env("PATH", path)
        .env_remove("WAYGATE_STORE")
        .env("WAYGATE_ACTOR", "bob")
        .output()
        .expect("sh runs");
    assert_eq!(pasted.status.code(), Some(0), "{pasted:?}");
    assert!(!elsewhere.join(".waygate").exists(), "no store made there");
    sb.wg(&["advance", &run]).code(0);
}

#[test]
fn the_approval_hint_for_the_default_store_has_no_store_flag() {
    let sb = sandbox();
    let started = crate::helpers::waygate(sb.path())
        .args(["--format", "json", "start", "wf.ron", "--env", "dev"])
        .output()
        .expect("runs");
    let run = serde_json::from_slice::<serde_json::Value>(&started.stdout).expect("json")["run_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let status = crate::helpers::waygate(sb.path())
        .args(["status", &run])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains(&format!("      waygate approve {run} sign-off\n")),
        "{text}"
    );
}

#[test]
fn status_refuses_csv_and_jsonl_naming_the_formats_it_prints() {
    let sb = sandbox();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    for format in ["csv", "jsonl"] {
        let ran = sb.wg(&["--format", format, "status", &run]);
        ran.code(2);
        assert!(ran.stdout.is_empty(), "{ran:?}");
        assert!(
            ran.stderr.contains("`status` does not print") && ran.stderr.contains("human or json"),
            "{}",
            ran.stderr
        );
    }
    // The lists still take every format.
    sb.wg(&["--format", "csv", "history", &run]).code(0);
    sb.wg(&["--format", "jsonl", "runs"]).code(0);
}

#[test]
fn status_shows_the_workflow_state_and_transition_descriptions() {
    let sb = sandbox();
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let human = sb.wg(&["status", &run]).code(0).stdout.clone();
    for line in [
        "workflow   gate (wf.ron): Ships the thing, with a sign-off.\n",
        "state      review: People read the release notes.\n",
        "  -> done: Release approved\n",
    ] {
        assert!(human.contains(line), "{line:?} in:\n{human}");
    }
    let json = sb.status(&run);
    assert_eq!(
        json["workflow_description"],
        "Ships the thing, with a sign-off."
    );
    assert_eq!(json["state_description"], "People read the release notes.");
    assert_eq!(json["transitions"][0]["description"], "Release approved");
    // Without descriptions: no dangling colon, null in JSON.
    sb.wg(&["advance", &run]).code(4);
    sb.wg(&["rollback", &run, "--reason", "not today"]).code(6);
    let ended = sb.status(&run);
    assert!(ended["state_description"].is_null(), "{ended}");
    let human = sb.wg(&["status", &run]).code(0).stdout.clone();
    assert!(human.contains("state      cancelled\n"), "{human}");
}
