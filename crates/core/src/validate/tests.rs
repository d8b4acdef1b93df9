//! Validation findings by code, each with where it must point (docs/workflow-format.md,
//! "Diagnostics": a name at its opening `"`, a `${var}` at its `$`, a map key at its `"`, a
//! transition problem at its `from` value). One line of input per construct, so the column
//! reads off the text.

use super::{pinned, validate};
use crate::diagnostic::{Code, Severity};

/// `analysis_error! { name, input, line, column, code[, label] }`: validating `input` gives a
/// finding of `code` at `line`:`column` (1-based), with the code's severity and its label (or
/// `label` where the finding says more).
macro_rules! analysis_error {
    (
        name: $name:ident,
        input: $input:expr,
        line: $line:expr,
        column: $column:expr,
        code: $code:ident $(,)?
    ) => {
        analysis_error! {
            name: $name, input: $input, line: $line, column: $column, code: $code,
            label: Code::$code.label(),
        }
    };
    (
        name: $name:ident,
        input: $input:expr,
        line: $line:expr,
        column: $column:expr,
        code: $code:ident,
        label: $label:expr $(,)?
    ) => {
        #[test]
        fn $name() {
            let text: &str = $input;
            let v = validate("t.ron", text);
            let found: Vec<_> = v
                .diagnostics
                .iter()
                .filter(|d| d.code == Code::$code)
                .collect();
            assert_eq!(found.len(), 1, "one {}: {:#?}", Code::$code, v.diagnostics);
            let d = found[0];
            assert_eq!((d.line, d.column), ($line, $column), "{d:?}");
            assert_eq!(d.severity, Code::$code.severity());
            assert_eq!(d.label, $label);
            assert_eq!(v.workflow.is_some(), !v.has_errors());
        }
    };
}

/// A valid workflow to build cases from: `build` → `done`.
const BASE: &str = r#"Workflow(
    name: "t",
    initial: "build",
    vars: { "v": (default: "1") },
    states: {
        "build": (on_enter: [Command(run: ["echo", "${v}"])], on_failure: "done"),
        "done": (terminal: Success),
    },
    transitions: [
        (from: "build", to: "done", guards: [(name: "g", check: Command(run: ["true"]))]),
    ],
)"#;

#[test]
fn the_base_is_clean() {
    let v = validate("t.ron", BASE);
    assert!(v.diagnostics.is_empty(), "{:#?}", v.diagnostics);
}

fn with(from: &str, to: &str) -> &'static str {
    assert!(BASE.contains(from), "{from}");
    Box::leak(BASE.replacen(from, to, 1).into_boxed_str())
}

analysis_error! {
    name: unknown_state_points_at_the_to_value,
    input: with(r#"to: "done""#, r#"to: "dnoe""#),
    line: 10,
    column: 29,
    code: UnknownState,
}

analysis_error! {
    name: undeclared_var_points_at_the_dollar,
    input: with(r#""${v}""#, r#""${w}""#),
    line: 6,
    column: 53,
    code: UndeclaredVar,
}

analysis_error! {
    name: bad_duration_points_at_the_value,
    input: with(r#"Command(run: ["true"])"#, r#"Command(run: ["true"], timeout: "5 minutes")"#),
    line: 10,
    column: 97,
    code: BadDuration,
}

analysis_error! {
    name: a_zero_timeout_is_a_bad_duration,
    input: with(r#"Command(run: ["true"])"#, r#"Command(run: ["true"], timeout: "0s")"#),
    line: 10,
    column: 97,
    code: BadDuration,
    label: "zero",
}

analysis_error! {
    name: invalid_name_points_at_the_state_key,
    input: with(r#""done": (terminal"#, r#""done ": (terminal"#).replacen(r#"to: "done""#, r#"to: "done ""#, 1).leak(),
    line: 7,
    column: 9,
    code: InvalidName,
}

analysis_error! {
    name: duplicate_key_points_at_the_second_key,
    input: with(r#"Command(run: ["true"])"#, r#"Command(run: ["true"], env: {"M": "a", "M": "b"})"#),
    line: 10,
    column: 104,
    code: DuplicateKey,
}

analysis_error! {
    name: duplicate_guard_points_at_the_second,
    input: with(r#"(name: "g", check: Command(run: ["true"]))"#, r#"(name: "g", check: Command(run: ["true"])), (name: "g", check: Command(run: ["true"]))"#),
    line: 10,
    column: 97,
    code: DuplicateGuard,
}

analysis_error! {
    name: bad_value_points_at_the_empty_run,
    input: with(r#"Command(run: ["true"])"#, r#"Command(run: [])"#),
    line: 10,
    column: 78,
    code: BadValue,
}

analysis_error! {
    name: unused_var_points_at_its_key,
    input: with(r#""${v}""#, r#""x""#),
    line: 4,
    column: 13,
    code: UnusedVar,
}

analysis_error! {
    name: unreachable_state_points_at_its_key,
    input: with(r#""done": (terminal"#, r#""lost": (), "done": (terminal"#),
    line: 7,
    column: 9,
    code: UnreachableState,
}

analysis_error! {
    name: missing_failure_path_points_at_the_state_key,
    input: with(r#", on_failure: "done")"#, ")"),
    line: 6,
    column: 9,
    code: MissingFailurePath,
}

analysis_error! {
    name: no_terminal_points_at_states,
    input: with("(terminal: Success)", "()"),
    line: 5,
    column: 5,
    code: NoTerminal,
}

analysis_error! {
    name: transition_from_terminal_points_at_from,
    input: with("    ],\n)", "        (from: \"done\", to: \"build\"),\n    ],\n)"),
    line: 11,
    column: 16,
    code: TransitionFromTerminal,
}

#[test]
fn a_pinned_definition_reads_the_newer_rules_as_warnings_at_the_same_place() {
    let text = with(
        r#"Command(run: ["true"])"#,
        r#"Command(run: ["true"], timeout: "0s")"#,
    );
    let v = pinned("t.ron", text);
    assert!(v.workflow.is_some(), "{:#?}", v.diagnostics);
    let d = &v.diagnostics[0];
    assert_eq!(
        (d.code, d.severity, d.line, d.column),
        (Code::BadDuration, Severity::Warning, 10, 97)
    );
}

analysis_error! {
    name: min_beyond_the_approvers_counted_without_case_points_at_min,
    input: with(
        r#"check: Command(run: ["true"])"#,
        r#"check: Approval(prompt: "ok", min: 2, approvers: ["bob", "Bob"])"#,
    ),
    line: 10,
    column: 93,
    code: BadValue,
}

#[test]
fn a_pinned_definition_with_names_past_the_length_limit_still_reads() {
    // Runs started before the limit, on the embedded store, pinned such names: the long
    // workflow, environment and lock names warn there rather than make the run unreadable.
    let text = include_str!("../../../../tests/invalid/long-names.ron");
    assert!(validate("t.ron", text).workflow.is_none());
    let v = pinned("t.ron", text);
    assert!(v.workflow.is_some(), "{:#?}", v.diagnostics);
    let long: Vec<_> = v
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::InvalidName)
        .map(|d| d.severity)
        .collect();
    assert_eq!(long, [Severity::Warning; 3]);
}
