//! A run's whole life through the CLI: start, status, runs, check, advance, approve, history,
//! audit with every filter and format, abort, audit verify; exit codes as `docs/cli.md` says.

use crate::helpers::{kinds, of_kind, on_both_stores, Sandbox, RUNS_COLUMNS};

/// A build with an entry action, a guard on a file, a sign-off the initiator cannot give.
pub const LIFECYCLE: &str = r#"Workflow(
    name: "lifecycle",
    initial: "build",
    rollback: "rollback",
    vars: { "version": (default: "1.0") },
    environments: { "dev": (), "prod": () },
    states: {
        "build": (on_enter: [Command(run: ["true"])], on_failure: "rollback"),
        "review": (on_failure: "rollback"),
        "done": (terminal: Success),
        "rollback": (),
        "rolled_back": (terminal: Failure),
    },
    transitions: [
        (from: "build", to: "review", guards: [(name: "flag", check: Command(run: ["test", "-f", "go"]))]),
        (from: "review", to: "done", guards: [
            (name: "sign-off", check: Approval(prompt: "ship ${version} to ${run.env}?", not_by_initiator: true)),
        ]),
        (from: "rollback", to: "rolled_back"),
    ],
)
"#;

on_both_stores! {
    fn a_run_goes_from_start_to_done_with_the_documented_exit_codes(sb: Sandbox) {
    sb.write("wf.ron", LIFECYCLE);
    let run = sb.start("alice", "wf.ron", "dev", &[]);

    // The environment is held: a second start names the run holding it.
    let busy = sb.wg(&["start", "wf.ron", "--env", "dev"]);
    busy.code(5);
    assert!(
        busy.stderr.contains(&run),
        "names the active run: {}",
        busy.stderr
    );
    // Another environment is free.
    let other = sb.start("alice", "wf.ron", "prod", &[]);
    sb.wg(&["abort", &other, "--reason", "not today"]).code(0);
    sb.wg(&["abort", &other, "--reason", "again"]).code(1);

    let st = sb.status(&run);
    assert_eq!(st["state"], "build");
    assert_eq!(st["status"], "active");
    assert_eq!(st["initiator"], "alice");
    assert_eq!(st["workflow"], "lifecycle");
    assert_eq!(st["env"], "dev");
    assert_eq!(st["transitions"][0]["to"], "review");
    assert_eq!(st["transitions"][0]["guards"][0]["name"], "flag");
    assert!(st["transitions"][0]["guards"][0]["outcome"].is_null());

    // check records nothing, not even the entry action.
    let before = sb.history(&run).len();
    let check = sb.wg(&["check", &run]);
    check.code(3).stdout_has("nothing recorded");
    assert_eq!(sb.history(&run).len(), before, "check records nothing");

    // advance: the entry action runs, the guard fails, nothing moves (advance never follows
    // on_failure for failing guards).
    sb.wg(&["advance", &run]).code(3);
    let events = sb.history(&run);
    assert_eq!(
        kinds(&events),
        [
            "RunStarted",
            "ActionStarted",
            "ActionFinished",
            "GuardsEvaluated"
        ]
    );
    assert_eq!(events[3]["passed"], false);
    assert_eq!(sb.status(&run)["state"], "build");
    let st = sb.status(&run);
    assert_eq!(st["transitions"][0]["guards"][0]["outcome"], "fail");
    assert_eq!(st["actions"][0]["status"], "ok");

    sb.write("go", "");
    let before = sb.history(&run).len();
    sb.wg(&["check", &run]).code(0);
    assert_eq!(sb.history(&run).len(), before, "check records nothing");
    let moved = sb.wg(&["advance", &run]);
    moved.code(0).stdout_has("`build` -> `review`");

    // Waiting on the sign-off: exit 4, the prompt rendered with the run's values.
    sb.wg(&["advance", &run]).code(4);
    let st = sb.status(&run);
    assert_eq!(st["status"], "waiting");
    let pending = &st["pending_approvals"][0];
    assert_eq!(pending["guard"], "sign-off");
    assert_eq!(pending["prompt"], "ship 1.0 to dev?");
    let detail = st["transitions"][0]["guards"][0]["detail"]
        .as_str()
        .expect("detail");
    assert!(
        detail.contains("ship 1.0 to dev?"),
        "guard detail: {detail}"
    );
    let human = sb.wg(&["status", &run]);
    human.code(0).stdout_has("ship 1.0 to dev?");
    assert!(!human.stdout.contains("${"), "{}", human.stdout);

    // The initiator's approval is refused, clearly, and recorded as refused.
    let refused = sb.wg_as("alice", &["approve", &run, "sign-off"]);
    refused.code(1).stderr_has("alice started this run");
    sb.wg(&["advance", &run]).code(4);
    let approved = sb.wg_as("bob", &["approve", &run, "sign-off", "--comment", "lgtm"]);
    approved.code(0);
    sb.wg(&["advance", &run]).code(0);
    let st = sb.status(&run);
    assert_eq!(st["state"], "done");
    assert_eq!(st["status"], "succeeded");
    assert!(!st["ended_at"].is_null());
    sb.wg(&["advance", &run]).code(1);

    let events = sb.history(&run);
    let approvals = of_kind(&events, "Approved");
    assert_eq!(approvals.len(), 2);
    assert_eq!(approvals[0]["actor"], "alice");
    assert_eq!(approvals[0]["accepted"], false);
    assert!(approvals[0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("not_by_initiator")));
    assert_eq!(approvals[1]["actor"], "bob");
    assert_eq!(approvals[1]["accepted"], true);
    assert_eq!(approvals[1]["comment"], "lgtm");
    let ended = of_kind(&events, "RunEnded");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["status"], "succeeded");
    // Every event carries the fields `docs/storage.md` lists; the chain links up.
    for pair in events.windows(2) {
        assert!(pair[0]["seq"].as_u64() < pair[1]["seq"].as_u64());
    }
    for e in &events {
        for field in ["seq", "run_id", "at", "actor", "kind", "prev_hash", "hash"] {
            assert!(!e[field].is_null(), "{field} missing in {e}");
        }
        assert_eq!(e["run_id"], run.as_str());
    }
    sb.verify();

    // The environment is free again.
    let next = sb.start("alice", "wf.ron", "dev", &[]);
    assert_ne!(next, run);
    }
}

on_both_stores! {
    fn runs_lists_and_filters_in_every_format(sb: Sandbox) {
    sb.write("wf.ron", LIFECYCLE);
    let a = sb.start("alice", "wf.ron", "dev", &[]);
    let b = sb.start("bob", "wf.ron", "prod", &[]);
    sb.wg(&["abort", &a, "--reason", "r"]).code(0);

    let all = sb.wg(&["--format", "json", "runs"]).code(0).json();
    let ids: Vec<&str> = all
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["run_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [a.as_str(), b.as_str()]);
    // The first run has ended: every column has a value.
    for field in RUNS_COLUMNS {
        assert!(!all[0][field].is_null(), "{field}");
    }
    let prod = sb
        .wg(&["runs", "--env", "prod", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(prod.as_array().map(Vec::len), Some(1));
    assert_eq!(prod[0]["run_id"], b.as_str());
    let aborted = sb.wg(&["runs", "--status", "aborted", "--format", "jsonl"]);
    aborted.code(0);
    assert_eq!(aborted.stdout.lines().count(), 1);
    assert!(aborted.stdout.contains(&a));
    let none = sb
        .wg(&["runs", "--workflow", "other", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(none, serde_json::json!([]));
    let csv = sb.wg(&["runs", "--format", "csv"]);
    csv.code(0);
    let mut lines = csv.stdout.lines();
    assert!(
        lines.next().is_some_and(|h| h.starts_with("run_id,")),
        "{}",
        csv.stdout
    );
    assert_eq!(lines.count(), 2);
    let human = sb.wg(&["runs"]);
    human.code(0);
    assert!(human.stdout.contains(&a) && human.stdout.contains(&b));
    sb.wg(&["runs", "--status", "sideways"]).code(2);
    }
}

on_both_stores! {
    fn audit_filters_by_actor_kind_time_workflow_env_and_run(sb: Sandbox) {
    sb.write("wf.ron", LIFECYCLE);
    let a = sb.start("alice", "wf.ron", "dev", &[]);
    let b = sb.start("alice", "wf.ron", "prod", &[]);
    // Ahead of its state (`a` is in `build`): refused, and on record as bob's.
    sb.wg_as("bob", &["approve", &a, "sign-off"]).code(1);
    sb.wg_as("carol", &["abort", &b, "--reason", "r"]).code(0);

    let audit = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["--format", "json", "audit"];
        all.extend_from_slice(args);
        match sb.wg(&all).code(0).json() {
            serde_json::Value::Array(v) => v,
            other => panic!("not a list: {other}"),
        }
    };
    let everything = audit(&[]);
    assert_eq!(everything.len(), 5, "{everything:?}");

    // --actor filters by who acted; the global --as (and WAYGATE_ACTOR, which the sandbox
    // sets) is who runs the query and must not filter anything.
    let bob = audit(&["--actor", "bob"]);
    assert_eq!(kinds(&bob), ["Approved"]);
    let as_bob = sb
        .wg(&["--as", "bob", "--format", "json", "audit"])
        .code(0)
        .json();
    assert_eq!(
        as_bob.as_array().map(Vec::len),
        Some(5),
        "--as is not a filter"
    );
    let after = sb
        .wg(&[
            "audit", "--actor", "carol", "--as", "bob", "--format", "json",
        ])
        .code(0)
        .json();
    assert_eq!(after.as_array().map(Vec::len), Some(2), "{after}");
    assert!(after
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| e["actor"] == "carol"));

    assert_eq!(
        kinds(&audit(&["--kind", "RunStarted"])),
        ["RunStarted", "RunStarted"]
    );
    assert_eq!(audit(&["--env", "prod"]).len(), 3);
    assert_eq!(audit(&["--run", &a]).len(), 2);
    assert_eq!(audit(&["--workflow", "lifecycle"]).len(), 5);
    assert!(audit(&["--workflow", "other"]).is_empty());
    assert!(audit(&["--since", "2999-01-01"]).is_empty());
    assert!(audit(&["--until", "2000-01-01T00:00:00Z"]).is_empty());
    // Inclusive bounds: an event's own time selects it.
    let third = everything[2]["at"].as_str().expect("at").to_owned();
    let from_third = audit(&["--since", &third]);
    assert_eq!(from_third.first(), Some(&everything[2]));
    let to_third = audit(&["--until", &third]);
    assert_eq!(to_third.last(), Some(&everything[2]));
    assert_eq!(
        kinds(&audit(&[
            "--env", "prod", "--actor", "carol", "--kind", "Aborted"
        ])),
        ["Aborted"]
    );

    sb.wg(&["audit", "--kind", "Teleported"]).code(2);
    sb.wg(&["audit", "--since", "yesterday"]).code(2);
    sb.wg(&["audit", "--bogus"]).code(2);

    // jsonl, csv and human carry the same events.
    let jsonl = sb.wg(&["audit", "--format", "jsonl"]);
    jsonl.code(0);
    let lines: Vec<serde_json::Value> = jsonl
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines, everything);
    let csv = sb.wg(&["audit", "--format", "csv", "--actor", "bob"]);
    csv.code(0);
    let rows: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(
        rows[0], "seq,run_id,at,actor,kind,summary,prev_hash,hash",
        "{}",
        csv.stdout
    );
    assert_eq!(rows.len(), 2);
    assert!(rows[1].contains(",bob,Approved,"), "{}", rows[1]);
    assert!(rows[1].ends_with(everything[2]["hash"].as_str().expect("hash")));
    let human = sb.wg(&["audit", "--actor", "bob"]);
    human.code(0);
    assert!(human.stdout.contains("Approved") && !human.stdout.contains("RunStarted"));
    let history_csv = sb.wg(&["history", &a, "--format", "csv"]);
    history_csv.code(0);
    assert_eq!(history_csv.stdout.lines().count(), 3);

    let verify = sb.wg(&["audit", "verify"]);
    verify.code(0).stdout_has("5 events");
    }
}

#[test]
fn a_run_keeps_the_definition_it_started_with() {
    let sb = Sandbox::new();
    let path = sb.write("wf.ron", LIFECYCLE);
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let hash = sb.status(&run)["definition_hash"].clone();
    // Now the file says something else entirely: a different guard, a different target.
    let edited = LIFECYCLE
        .replace(r#"["test", "-f", "go"]"#, r#"["false"]"#)
        .replace(r#"ship ${version} to ${run.env}?"#, "edited prompt");
    assert_ne!(edited, LIFECYCLE);
    std::fs::write(&path, edited).expect("edit");
    sb.write("go", "");
    sb.wg(&["advance", &run]).code(0);
    sb.wg(&["advance", &run]).code(4);
    let st = sb.status(&run);
    assert_eq!(st["state"], "review");
    assert_eq!(st["definition_hash"], hash);
    assert_eq!(st["pending_approvals"][0]["prompt"], "ship 1.0 to dev?");
    // A new run takes the new text.
    sb.wg(&["abort", &run, "--reason", "r"]).code(0);
    let next = sb.start("alice", "wf.ron", "dev", &[]);
    assert_ne!(sb.status(&next)["definition_hash"], hash);
    sb.wg(&["advance", &next]).code(3);
}

#[test]
fn unknown_runs_and_bad_input_exit_1_usage_exits_2() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    sb.wg(&["status", "no-such-run"]).code(1);
    sb.wg(&["history", "no-such-run"]).code(1);
    sb.wg(&["start", "wf.ron", "--env", "nowhere"]).code(1);
    sb.wg(&["start", "wf.ron", "--env", "dev", "--var", "novalue"])
        .code(1);
    sb.wg(&["start", "wf.ron"]).code(2);
    sb.wg(&["frobnicate"]).code(2);
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["approve", &run, "no-such-guard"]).code(1);
    sb.wg(&["advance", &run, "--to", "done"]).code(1);
    sb.wg(&["abort", &run]).code(2);
}

/// Runs every command taking a time with each flag set to each of `bad`: each is a usage error
/// (exit 2) whose message, escaped, holds all of `says(flag)`, before any store is opened or
/// report written.
fn assert_times_refused(sb: &Sandbox, bad: &[&str], says: impl Fn(&str) -> Vec<String>) {
    let commands: [&[&str]; 2] = [&["audit"], &["audit", "report", "--out", "r.html"]];
    for command in commands {
        for flag in ["--since", "--until"] {
            for &bad in bad {
                let mut args = command.to_vec();
                args.extend([flag, bad]);
                let ran = sb.wg(&args);
                ran.code(2);
                for said in says(flag) {
                    assert!(ran.stderr.contains(&said), "{args:?}: {}", ran.stderr);
                }
                assert!(!ran.stderr.contains('\u{1b}'), "escaped: {:?}", ran.stderr);
            }
        }
    }
    assert!(!sb.path().join("r.html").exists());
    assert!(!sb.store().exists(), "nothing opened, nothing created");
}

/// Every flag that takes a time reads it one way, and a value it cannot read is a usage error
/// (exit 2) naming the accepted forms, escaped, before any store is opened.
#[test]
fn a_time_flag_that_does_not_read_is_a_usage_error_naming_the_accepted_forms() {
    let sb = Sandbox::new();
    assert_times_refused(
        &sb,
        &["yesterday", "2h", "2026-13-01", "\u{1b}[2J2026-11-26", ""],
        |flag| {
            vec![
                format!(
                    "for '{flag} <TIME>': expected an RFC 3339 time such as 2026-11-26T09:00:00Z"
                ),
                "or a date such as 2026-11-26 (midnight UTC)".to_owned(),
            ]
        },
    );
    // What does read: a time with an offset, and a date with blanks around it.
    sb.write(
        "w.ron",
        &crate::helpers::one_action_workflow("w", "dev", "5s"),
    );
    sb.start("ana", "w.ron", "dev", &[]);
    sb.wg(&["audit", "--since", "2026-11-26T10:00:00+01:00"])
        .code(0);
    sb.wg(&["audit", "--until", " 2026-11-26 "]).code(0);
}

/// A time typed without its offset (`2026-11-26T09:00:00`) names no instant: it is a usage
/// error saying so, never read as the midnight of its date (a scope a day too wide, or one
/// that ends hours before the time typed).
#[test]
fn a_time_without_an_offset_is_refused_not_read_as_midnight() {
    let sb = Sandbox::new();
    assert_times_refused(
        &sb,
        &[
            "2026-11-26T09:00:00",
            "2026-11-26 23:59",
            "2026-11-26T09:00:00[Europe/Paris]",
        ],
        |_| vec!["has no UTC offset".to_owned()],
    );
}

/// RFC 3339 offsets go to ±23:59; jiff reads up to ±25:59. A time beyond (`+25:00`, a typo
/// or a forged scope) is a usage error saying so, for every command taking a time; the
/// largest offset RFC 3339 allows still reads.
#[test]
fn a_time_offset_beyond_rfc3339_is_refused() {
    let sb = Sandbox::new();
    assert_times_refused(
        &sb,
        &["2026-11-29T10:00:00+25:00", "2026-11-29T10:00:00-24:30"],
        |flag| {
            vec![format!(
                "for '{flag} <TIME>': this UTC offset is beyond ±23:59"
            )]
        },
    );
    sb.write(
        "w.ron",
        &crate::helpers::one_action_workflow("w", "dev", "5s"),
    );
    sb.start("ana", "w.ron", "dev", &[]);
    sb.wg(&["audit", "--since", "2026-11-29T10:00:00+23:59"])
        .code(0);
}

/// CSV is for spreadsheets: a cell that would start a formula (`=`, `+`, `-`, `@`, a tab, a
/// carriage return) is written with a leading `'`, text holding a `;` is quoted (a spreadsheet
/// splitting on `;` starts no cell inside it), in `runs`, `history` and `audit` alike; JSON
/// keeps the exact text.
#[test]
fn csv_exports_start_no_spreadsheet_formula_and_json_stays_exact() {
    let sb = Sandbox::new();
    let env = "=cmd|' /C calc'!A0;@SUM(1)";
    sb.write(
        "w.ron",
        &crate::helpers::one_action_workflow("w", env, "5s"),
    );
    let run = sb.start("ana", "w.ron", env, &[]);
    let reason = "=HYPERLINK(\"http://evil\",\"x\")";
    sb.wg_as("ana", &["abort", &run, "--reason", reason])
        .code(0);

    let runs = sb.wg(&["runs", "--format", "csv"]).code(0).stdout.clone();
    let row = runs.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with(&format!("{run},w,\"'=cmd|' /C calc'!A0;@SUM(1)\",")),
        "{runs}"
    );
    let json = sb.wg(&["runs", "--format", "json"]).code(0).json();
    assert_eq!(json[0]["env"], env);

    // The reason sits inside the summary, after fixed words: quoted, exact, not prefixed.
    let summary = "\"aborted in `deploy`: =HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\"";
    for args in [
        vec!["history", run.as_str(), "--format", "csv"],
        vec!["audit", "--run", run.as_str(), "--format", "csv"],
    ] {
        let csv = sb.wg(&args).code(0).stdout.clone();
        assert!(
            csv.contains(&format!(",Aborted,{summary},")),
            "{args:?}: {csv}"
        );
        // The run's start names the environment inside its summary: quoted for the `;`.
        assert!(
            csv.contains(",RunStarted,\"started w in =cmd|' /C calc'!A0;@SUM(1) at `deploy`"),
            "{args:?}: {csv}"
        );
    }
    let history = sb.history(&run);
    assert_eq!(
        crate::helpers::of_kind(&history, "Aborted")[0]["reason"],
        reason
    );
}

/// `--since` after `--until` can select nothing: every command taking both says so (exit 2,
/// as for any time flag that does not read), rather than `audit` printing an empty table as
/// if nothing had happened in the window.
#[test]
fn since_after_until_is_a_usage_error_for_every_command() {
    let sb = Sandbox::new();
    let commands: [&[&str]; 2] = [&["audit"], &["audit", "report", "--out", "r.html"]];
    for command in commands {
        let mut args = command.to_vec();
        args.extend(["--since", "2026-12-01", "--until", "2026-11-01T00:00:00Z"]);
        let ran = sb.wg(&args);
        ran.code(2);
        assert!(
            ran.stderr
                .contains("--since 2026-12-01T00:00:00Z is after --until 2026-11-01T00:00:00Z"),
            "{args:?}: {}",
            ran.stderr
        );
    }
    assert!(!sb.path().join("r.html").exists());
    assert!(!sb.store().exists(), "nothing opened, nothing created");
}
