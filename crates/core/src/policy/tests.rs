use super::*;
use crate::diagnostic::Severity;

const SEED: &str = include_str!("../../../../workflows/policies/seed.ron");
const DEPLOY: &str = include_str!("../../../../workflows/production-deploy.ron");

fn policy(text: &str) -> Policy {
    let read = read("seed.ron", text);
    assert!(read.diagnostics.is_empty(), "{:#?}", read.diagnostics);
    read.policy.expect("a policy")
}

/// The policy's findings on a workflow text that validates.
fn check_text(policy_text: &str, workflow_text: &str) -> Vec<Diagnostic> {
    let validated = crate::validate::validate("deploy.ron", workflow_text);
    let workflow = validated.workflow.unwrap_or_else(|| {
        panic!("the variant validates: {:#?}", validated.diagnostics);
    });
    check(&policy(policy_text), &workflow, "deploy.ron", workflow_text)
}

/// `text` with `from` replaced by `to` exactly once.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} once");
    text.replacen(from, to, 1)
}

fn codes(found: &[Diagnostic]) -> Vec<Code> {
    found.iter().map(|d| d.code).collect()
}

#[test]
fn production_deploy_obeys_the_seed_policy() {
    assert_eq!(codes(&check_text(SEED, DEPLOY)), []);
}

#[test]
fn a_way_to_production_that_skips_staging_breaks_staging_first() {
    let broken = edit(
        DEPLOY,
        "            from: \"staging\",\n            to: \"production\",",
        "            from: \"announce\",\n            to: \"production\",",
    );
    let found = check_text(SEED, &broken);
    let d = found
        .iter()
        .find(|d| d.code == Code::PolicyPassesThrough)
        .expect("staging-first broken");
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(
        d.counterexample.first().map(String::as_str),
        Some("environment_check")
    );
    assert_eq!(
        d.counterexample.last().map(String::as_str),
        Some("production")
    );
    assert!(!d.counterexample.iter().any(|s| s == "staging"), "{d:?}");
    assert!(d.message.contains("rule `staging-first`"), "{}", d.message);
    // At the production state's key.
    let line = broken.lines().nth(d.line - 1).expect("the line");
    assert!(
        line[d.column - 1..].starts_with("\"production\": ("),
        "{line}"
    );
}

#[test]
fn an_approval_the_initiator_may_give_breaks_four_eyes() {
    let broken = DEPLOY.replace(", not_by_initiator: true)", ")");
    let found = check_text(SEED, &broken);
    assert_eq!(codes(&found), [Code::PolicyGuardedBy], "{found:#?}");
    let d = &found[0];
    assert!(
        d.message.contains("transition `staging` -> `production` has no Approval guard with not_by_initiator: true"),
        "{}",
        d.message
    );
    assert_eq!(
        d.counterexample.last().map(String::as_str),
        Some("production")
    );
    // At the transition's `from` value.
    let line = broken.lines().nth(d.line - 1).expect("the line");
    assert!(line[d.column - 1..].starts_with("\"staging\""), "{line}");
}

#[test]
fn production_outside_the_deploy_window_breaks_deploy_window() {
    let broken = edit(
        DEPLOY,
        "(name: \"deploy-window\", check: Window(days: [Mon, Tue, Wed, Thu], start: \"09:00\", end: \"16:00\", tz: \"Europe/London\")),",
        "",
    );
    let found = check_text(SEED, &broken);
    assert_eq!(codes(&found), [Code::PolicyGuardedBy], "{found:#?}");
    assert!(
        found[0].message.contains("no Window guard"),
        "{}",
        found[0].message
    );
}

#[test]
fn a_state_after_production_that_cannot_reach_rollback_breaks_rollback_ready() {
    let broken = edit(
        DEPLOY,
        "the bot stays healthy for an hour and people confirm it.\",\n            on_failure: \"rollback\",",
        "the bot stays healthy for an hour and people confirm it.\",\n            on_failure: \"escalate\",",
    );
    let found = check_text(SEED, &broken);
    // user_experience, and escalate, which it now leads to without passing rollback.
    assert_eq!(
        codes(&found),
        [Code::PolicyCanReach, Code::PolicyCanReach],
        "{found:#?}"
    );
    let d = &found[0];
    assert!(
        d.message.contains("from `user_experience`"),
        "{}",
        d.message
    );
    assert_eq!(
        &d.counterexample[d.counterexample.len() - 4..],
        ["production", "verify", "error_watch", "user_experience"]
    );
    assert!(
        found[1].message.contains("from `escalate`"),
        "{}",
        found[1].message
    );
}

#[test]
fn a_slow_rollback_breaks_rollback_within_5m() {
    let broken = edit(
        DEPLOY,
        "on_failure: \"escalate\",\n            deadline: \"5m\",",
        "on_failure: \"escalate\",\n            deadline: \"10m\",",
    );
    let found = check_text(SEED, &broken);
    assert_eq!(codes(&found), [Code::PolicyDeadline], "{found:#?}");
    assert!(
        found[0].message.contains("deadline of 10m"),
        "{}",
        found[0].message
    );
    let line = broken.lines().nth(found[0].line - 1).expect("the line");
    assert!(line[found[0].column - 1..].starts_with("\"10m\""), "{line}");
}

#[test]
fn a_state_a_policy_names_that_the_workflow_lacks_is_an_error_in_the_policy() {
    let text = edit(
        SEED,
        "PassesThrough(state: \"production\"",
        "PassesThrough(state: \"producton\"",
    );
    let found = check_text(&text, DEPLOY);
    assert_eq!(codes(&found), [Code::UnknownState]);
    let d = &found[0];
    assert_eq!(d.file, "seed.ron");
    let line = text.lines().nth(d.line - 1).expect("the line");
    assert!(line[d.column - 1..].starts_with("\"producton\""), "{line}");
    assert_eq!(d.help.as_deref(), Some("did you mean `production`?"));
}

#[test]
fn an_unknown_guard_kind_in_a_policy_is_an_error_at_its_place() {
    let text = edit(SEED, "guard: Window()", "guard: Windw()");
    let read = read("seed.ron", &text);
    assert!(read.policy.is_none());
    assert_eq!(codes(&read.diagnostics), [Code::UnknownVariant]);
    let d = &read.diagnostics[0];
    let line = text.lines().nth(d.line - 1).expect("the line");
    assert!(
        line[d.column - 1..].starts_with("Windw"),
        "{line} {}",
        d.column
    );
}

#[test]
fn a_policy_is_checked_on_its_own() {
    let cases = [
        (
            r#"Policy(name: "p", rules: [(name: "a", rule: DeadlineAtMost(states: "*", max: "5 min"))])"#,
            Code::BadDuration,
        ),
        (
            r#"Policy(name: "p", rules: [(name: "a", rule: FailurePath()), (name: "a", rule: FailurePath())])"#,
            Code::DuplicateKey,
        ),
        (
            r#"Policy(name: "p", rules: [(name: "a", rule: FailurePath(), severity: 1)])"#,
            Code::UnknownField,
        ),
        (
            r#"Policy(name: "p", rules: [(name: "a", rule: GuardedBy(state: "x"))])"#,
            Code::MissingField,
        ),
    ];
    for (text, code) in cases {
        assert_eq!(codes(&read("p.ron", text).diagnostics), [code], "{text}");
    }
}

const SMALL: &str = r#"Workflow(
    name: "small",
    initial: "build",
    rollback: "undo",
    states: {
        "build": (on_enter: [Command(run: ["make"])]),
        "prod": (on_failure: "undo", deadline: "1h"),
        "undo": (on_enter: [Command(run: ["revert"])]),
        "done": (terminal: Success),
        "undone": (terminal: Failure),
    },
    transitions: [
        (from: "build", to: "prod", guards: [(name: "tests", check: Command(run: ["./run-tests"]))]),
        (from: "prod", to: "done"),
        (from: "undo", to: "undone"),
    ],
)"#;

#[test]
fn guards_on_every_path_and_failure_paths() {
    let policy = r#"Policy(name: "p", rules: [
        (name: "tested", rule: GuardedBy(state: "done", guard: Command(name: "test*"), on: Path)),
        (name: "tested-program", rule: GuardedBy(state: "prod", guard: Command(program: "./run-*"))),
        (name: "failures", rule: FailurePath()),
        (name: "undo-entry", rule: GuardedBy(state: "undo", guard: Approval())),
        (name: "short", rule: DeadlineAtMost(states: "p?od", max: "30m")),
    ])"#;
    let found = check_text(policy, SMALL);
    let summary: Vec<(Code, Vec<String>)> = found
        .iter()
        .map(|d| (d.code, d.counterexample.clone()))
        .collect();
    let path = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        summary,
        [
            // `undo` is on the rollback path and has no on_failure.
            (Code::PolicyFailurePath, path(&["build", "undo"])),
            // The incident fallback from `build` and prod's on_failure pass no guard.
            (Code::PolicyGuardedBy, path(&["build", "undo"])),
            (Code::PolicyGuardedBy, path(&["build", "prod", "undo"])),
            (Code::PolicyDeadline, path(&["build", "prod"])),
        ],
        "{found:#?}"
    );
}

#[test]
fn globs() {
    for (p, n, want) in [
        ("*", "", true),
        ("prod*", "production", true),
        ("*prod*", "pre-prod-eu", true),
        ("p?od", "prod", true),
        ("p?od", "pod", false),
        ("a*b*c", "abxbc", true),
        ("a*b*c", "abxbd", false),
        ("verify", "verify2", false),
    ] {
        assert_eq!(glob(p, n), want, "{p} {n}");
    }
}

#[test]
fn thousands_of_violations_are_listed_up_to_a_bound_and_counted() {
    let n = 2_000;
    let states: String = (0..n).map(|i| format!("\"s{i}\": (),")).collect();
    let transitions: String = (0..n)
        .map(|i| {
            let next = if i + 1 == n {
                "end".to_owned()
            } else {
                format!("s{}", i + 1)
            };
            format!("(from: \"s{i}\", to: \"{next}\"),")
        })
        .collect();
    let text = format!(
        "Workflow(name: \"w\", initial: \"s0\", states: {{ {states} \"end\": (terminal: Success) }}, transitions: [{transitions}])"
    );
    let policy = r#"Policy(name: "p", rules: [
        (name: "deadlines", rule: DeadlineAtMost(states: "s*", max: "1h")),
        (name: "failures", rule: FailurePath()),
    ])"#;
    let found = check_text(policy, &text);
    assert_eq!(found.len(), 2 * SHOWN);
    let last = &found[SHOWN - 1];
    assert!(
        last.message
            .ends_with(&format!("[and {} more like it, not listed]", n - SHOWN)),
        "{}",
        last.message
    );
    assert_eq!(found[SHOWN].counterexample, ["s0"]);
    assert_eq!(found[1].counterexample, ["s0", "s1"]);
}

/// `DeadlineAtMost(states: "*")` asks for deadlines where a run can stay: a terminal state,
/// where the run has ended, needs none. A pattern without wildcards names one state, and a
/// state the workflow lacks is `unknown-state` at the pattern, as in every other rule (it
/// checked nothing, silently).
#[test]
fn deadline_patterns_skip_terminal_states_and_a_plain_name_must_exist() {
    let policy = r#"Policy(name: "p", rules: [(name: "all", rule: DeadlineAtMost(states: "*", max: "2h"))])"#;
    let found = check_text(policy, SMALL);
    let states: Vec<&str> = found
        .iter()
        .map(|d| d.counterexample.last().map_or("", String::as_str))
        .collect();
    // `prod` has its 1h; `build` and `undo` have none; `done` and `undone` are terminal.
    assert_eq!(states, ["build", "undo"], "{found:#?}");

    let typo = r#"Policy(name: "p", rules: [(name: "r", rule: DeadlineAtMost(states: "undoo", max: "5m"))])"#;
    let found = check_text(typo, SMALL);
    assert_eq!(codes(&found), [Code::UnknownState], "{found:#?}");
    assert_eq!(found[0].file, "seed.ron");
    assert_eq!(found[0].help.as_deref(), Some("did you mean `undo`?"));
    let line = typo.lines().nth(found[0].line - 1).expect("the line");
    assert!(
        line[found[0].column - 1..].starts_with("\"undoo\""),
        "{line}"
    );
    // A wildcard pattern matching nothing checks nothing.
    let none = r#"Policy(name: "p", rules: [(name: "r", rule: DeadlineAtMost(states: "zz*", max: "5m"))])"#;
    assert_eq!(codes(&check_text(none, SMALL)), []);
}

/// A run starts in the initial state without passing any guard: `GuardedBy` on it is broken
/// (it held, since no transition leads into it), on entry as on every path.
#[test]
fn starting_in_the_guarded_state_breaks_guarded_by() {
    let starts_in_prod = SMALL.replace("initial: \"build\"", "initial: \"prod\"");
    let policy = r#"Policy(name: "p", rules: [
        (name: "entry", rule: GuardedBy(state: "prod", guard: Approval())),
        (name: "path", rule: GuardedBy(state: "prod", guard: Approval(), on: Path)),
    ])"#;
    let found = check_text(policy, &starts_in_prod);
    let summary: Vec<(Code, Vec<String>, bool)> = found
        .iter()
        .map(|d| {
            (
                d.code,
                d.counterexample.clone(),
                d.message.contains("rule `entry`"),
            )
        })
        .collect();
    let prod = vec!["prod".to_owned()];
    let build = vec!["build".to_owned(), "prod".to_owned()];
    assert_eq!(
        summary,
        [
            (Code::PolicyGuardedBy, prod.clone(), true),
            // `build` (no longer reachable) still has its unguarded transition into `prod`.
            (Code::PolicyGuardedBy, build, true),
            (Code::PolicyGuardedBy, prod, false),
        ],
        "{found:#?}"
    );
    assert!(
        found[0]
            .message
            .contains("a run starts in `prod` (the initial state)"),
        "{}",
        found[0].message
    );
}
