//! Break-glass: `waygate override RUN GUARD --reason TEXT`, by those a guard (or the workflow)
//! names in `overridable_by`, for the current visit of the state only, recorded and shown.

use crate::helpers::Sandbox;

const FLOW: &str = r#"Workflow(
    name: "glass", initial: "canary",
    overridable_by: ["oncall"],
    states: {
        "canary": (),
        "again": (),
        "done": (terminal: Success),
    },
    transitions: [
        (from: "canary", to: "done", guards: [
            (name: "health", check: Command(run: ["sh", "-c", "echo db down; exit 1"]), overridable_by: ["sre-lead", "ana"]),
            (name: "sign-off", check: Approval(prompt: "ship it?")),
        ]),
        (from: "canary", to: "again", guards: [(name: "retry", check: Approval(prompt: "try again?"))]),
        (from: "again", to: "canary"),
    ],
)"#;

fn started() -> (Sandbox, String) {
    let sb = Sandbox::new();
    sb.write("glass.ron", FLOW);
    let run = sb.start("ana", "glass.ron", "prod", &[]);
    sb.wg_as("ana", &["advance", &run]).code(4);
    (sb, run)
}

#[test]
fn an_override_counts_for_this_visit_is_recorded_and_shown_everywhere() {
    let (sb, run) = started();
    let ran = sb.wg_as(
        "sre-lead",
        &[
            "override",
            &run,
            "health",
            "--reason",
            "db probe broken\n\u{1b}[2J",
        ],
    );
    ran.code(0);
    assert!(
        ran.stdout.starts_with(&format!(
            "OVERRIDDEN: sre-lead marked `health` (-> `done`) passed for this visit of run {run}'s state; the check said fail: exit status 1; reason: db probe broken\\n\\u{{1b}}[2J"
        )),
        "{}",
        ran.stdout
    );
    // The override counts: health passes now, sign-off still waits.
    sb.wg_as("ana", &["advance", &run]).code(4);
    let status = sb.status(&run);
    let o = &status["overrides"][0];
    assert_eq!(
        (&o["guard"], &o["by"], &o["said"], &o["counts"]),
        (
            &serde_json::json!("health"),
            &serde_json::json!("sre-lead"),
            &serde_json::json!("fail: exit status 1"),
            &serde_json::json!(true)
        )
    );
    assert_eq!(o["reason"], "db probe broken\n\u{1b}[2J", "exact in JSON");
    let human = sb.wg(&["status", &run]).stdout;
    assert!(
        human.contains("OVERRIDDEN `health` of `canary` -> `done` by sre-lead at ")
            && human.contains(
                ", counts now: db probe broken\\n\\u{1b}[2J (the check said fail: exit status 1)"
            ),
        "{human}"
    );
    let audit = sb
        .wg(&["--format", "json", "audit", "--kind", "Overridden"])
        .json();
    assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit}");
    assert_eq!(audit[0]["actor"], "sre-lead");
    assert_eq!(audit[0]["guard"], "health");

    // Leaving the state and coming back: a new attempt, the override no longer counts.
    sb.wg_as("bob", &["approve", &run, "retry"]).code(0);
    sb.wg_as("ana", &["advance", &run]).code(0);
    sb.wg_as("ana", &["advance", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "canary");
    let back = sb.wg_as("ana", &["advance", &run]);
    back.code(4).stdout_has("FAIL health    exit status 1");
    assert_eq!(sb.status(&run)["overrides"][0]["counts"], false);
    sb.verify();
}

#[test]
fn overrides_are_refused_to_those_not_named_to_the_initiator_for_approvals_and_without_a_reason() {
    let (sb, run) = started();
    let refused = |actor: &str, guard: &str, reason: &str, code: i32, says: &str| {
        let ran = sb.wg_as(actor, &["override", &run, guard, "--reason", reason]);
        ran.code(code);
        assert!(ran.stderr.contains(says), "{actor} {guard}: {}", ran.stderr);
    };
    refused(
        "mallory",
        "health",
        "please",
        1,
        "override refused: mallory may not override `health` (overridable_by: sre-lead, ana, oncall)",
    );
    refused(
        "sre-lead",
        "health",
        " \t",
        2,
        "the reason for the override is blank",
    );
    refused(
        "oncall",
        "nope",
        "x",
        1,
        "no guard `nope` guards a transition out of `canary` (its guards: `health`, `sign-off`, `retry`)",
    );
    // The initiator is allowed by the workflow-wide list only for what is not an approval.
    let sb2 = Sandbox::new();
    sb2.write(
        "glass.ron",
        &FLOW.replace(
            r#"overridable_by: ["oncall"]"#,
            r#"overridable_by: ["ana"]"#,
        ),
    );
    let run2 = sb2.start("ana", "glass.ron", "prod", &[]);
    sb2.wg_as("ana", &["advance", &run2]).code(4);
    let own = sb2.wg_as(
        "ana",
        &["override", &run2, "sign-off", "--reason", "I approve"],
    );
    own.code(1);
    assert!(
        own.stderr
            .contains("ana started this run and may not override its approval `sign-off`"),
        "{}",
        own.stderr
    );
    // Nothing was recorded by any refusal.
    let kinds: Vec<String> = sb
        .history(&run)
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(!kinds.contains(&"Overridden".to_owned()), "{kinds:?}");
    // Twice in one visit: the second is refused, naming the first.
    sb.wg_as("oncall", &["override", &run, "health", "--reason", "probe"])
        .code(0);
    refused(
        "sre-lead",
        "health",
        "me too",
        1,
        "guard `health` is already overridden in this visit, by oncall: probe",
    );
}

/// A guard whose check publishes values cannot be overridden: the override would pass it
/// without them, and `validate` accepted the later use only because the guard runs first on
/// every path; the run would then fail on `${steps.health.colour}` having no value.
#[test]
fn a_guard_that_publishes_values_cannot_be_overridden() {
    let sb = Sandbox::new();
    sb.write(
        "pub.ron",
        r#"Workflow(
    name: "pub", initial: "canary",
    overridable_by: ["oncall"],
    states: {
        "canary": (),
        "deploy": (on_enter: [Command(run: ["echo", "colour=${steps.health.colour}"])], on_failure: "failed"),
        "done": (terminal: Success),
        "failed": (terminal: Failure),
    },
    transitions: [
        (from: "canary", to: "deploy", guards: [
            (name: "health", check: Command(run: ["sh", "-c", "exit 1"], outputs: ["colour"])),
        ]),
        (from: "deploy", to: "done"),
    ],
)"#,
    );
    sb.wg(&["validate", "pub.ron"]).code(0);
    let run = sb.start("ana", "pub.ron", "prod", &[]);
    sb.wg_as("ana", &["advance", &run]).code(3);
    let refused = sb.wg_as(
        "oncall",
        &["override", &run, "health", "--reason", "probe broken"],
    );
    refused.code(1);
    assert!(
        refused
            .stderr
            .contains("guard `health` publishes values (`colour`) that an override cannot supply"),
        "{}",
        refused.stderr
    );
    assert!(crate::helpers::of_kind(&sb.history(&run), "Overridden").is_empty());
    assert_eq!(sb.status(&run)["state"], "canary");
}

/// An overridden guard read back by `status` (while the run waits and after it ended, in every
/// format) and by `history` is shown as overridden, by whom and why: never only as failed.
#[test]
fn an_overridden_guard_is_shown_as_overridden_not_failed_after_the_run_ends() {
    let (sb, run) = started();
    sb.wg_as(
        "sre-lead",
        &["override", &run, "health", "--reason", "probe\u{1b}broken"],
    )
    .code(0);
    let human = sb.wg(&["status", &run]).stdout;
    assert!(
        human.contains(
            "pass     health (Command): OVERRIDDEN by sre-lead (probe\\u{1b}broken); the check says: fail: exit status 1"
        ),
        "{human}"
    );
    sb.wg_as("ana", &["abort", &run, "--reason", "stop"])
        .code(0);
    // `status` prints people's lines or JSON.
    let ended = sb.wg(&["status", &run]).stdout;
    assert!(
        ended.contains("OVERRIDDEN `health` of `canary` -> `done` by sre-lead at ")
            && !ended.contains("FAIL"),
        "{ended}"
    );
    let status = sb.wg(&["--format", "json", "status", &run]).json();
    let health = &status["transitions"][0]["guards"][0];
    assert_eq!(health["name"], "health");
    assert_eq!(health["outcome"], "pass", "{health}");
    assert_eq!(health["overridden"]["by"], "sre-lead", "{health}");
    assert_eq!(
        health["overridden"]["reason"], "probe\u{1b}broken",
        "{health}"
    );
    assert!(
        health["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("OVERRIDDEN by sre-lead")),
        "{health}"
    );
    assert_eq!(
        status["transitions"][0]["guards"][1]["overridden"],
        serde_json::Value::Null
    );
    // `history`'s guards that did not pass: the evaluation that failed says it was overridden.
    let history = sb.wg(&["history", &run]).stdout;
    let details = history
        .split("guards that did not pass:")
        .nth(1)
        .unwrap_or_default();
    assert!(
        details.contains("    FAIL health    exit status 1\n")
            && details.contains(
                "    OVERRIDDEN health afterwards (#4) by sre-lead: probe\\u{1b}broken\n"
            ),
        "{history}"
    );
}
