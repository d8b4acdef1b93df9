//! A run's pinned definition is read with the rules that make a model: the rules added since
//! runs began pinning (names, look-alikes, zero durations, keys written twice) warn for it,
//! while a file is refused by them; what still cannot make a model is refused either way.

use waygate_core::diagnostic::{Code, Severity};
use waygate_core::validate::{pinned, validate};

fn workflow(state: &str, env: &str, timeout: &str) -> String {
    format!(
        r#"Workflow(name: "w", initial: "{state}", states: {{ "{state}": (on_enter: [Command(run: ["true"], env: {env}, timeout: "{timeout}")]), "done": (terminal: Success) }}, transitions: [(from: "{state}", to: "done")])"#
    )
}

#[test]
fn rules_added_since_pinning_refuse_a_file_and_warn_for_a_pinned_definition() {
    // (what, text, code)
    let cases = [
        (
            "trailing white space in a state name",
            workflow("build ", "{}", "5s"),
            Code::InvalidName,
        ),
        (
            "a key written twice in env",
            workflow("build", r#"{"M": "a", "M": "b"}"#, "5s"),
            Code::DuplicateKey,
        ),
        (
            "a zero timeout",
            workflow("build", "{}", "0s"),
            Code::BadDuration,
        ),
        (
            "an approver no actor can be",
            workflow("build", "{}", "5s").replace(
                r#"(from: "build", to: "done")"#,
                r#"(from: "build", to: "done", guards: [(name: "ok", check: Approval(prompt: "go?", approvers: ["bob smith"]))])"#,
            ),
            Code::BadValue,
        ),
        (
            "two Approval guards of one name out of one state",
            workflow("build", "{}", "5s")
                .replace(
                    r#""done": (terminal: Success)"#,
                    r#""done": (terminal: Success), "other": (terminal: Failure)"#,
                )
                .replace(
                    r#"(from: "build", to: "done")"#,
                    r#"(from: "build", to: "done", guards: [(name: "ok", check: Approval(prompt: "go?"))]), (from: "build", to: "other", guards: [(name: "ok", check: Approval(prompt: "stop?"))])"#,
                ),
            Code::DuplicateGuard,
        ),
    ];
    for (what, text, code) in cases {
        let file = validate("w.ron", &text);
        assert!(file.workflow.is_none(), "{what}: a file is refused");
        assert!(
            file.diagnostics
                .iter()
                .any(|d| d.code == code && d.severity == Severity::Error),
            "{what}: {:?}",
            file.diagnostics
        );
        let run = pinned("w.ron", &text);
        assert!(run.workflow.is_some(), "{what}: {:?}", run.diagnostics);
        assert!(
            run.diagnostics
                .iter()
                .any(|d| d.code == code && d.severity == Severity::Warning),
            "{what}: {:?}",
            run.diagnostics
        );
    }
}

#[test]
fn a_pinned_definition_keeps_its_meaning() {
    let text = workflow("build", r#"{"M": "a", "M": "b"}"#, "0s");
    let wf = pinned("w.ron", &text).workflow.expect("a model");
    let state = wf.state(wf.initial);
    let waygate_core::model::Action::Command(c) = &state.on_enter[0] else {
        panic!("a command: {:?}", state.on_enter);
    };
    assert_eq!(c.timeout, std::time::Duration::ZERO);
    assert_eq!(c.env.len(), 1);
    assert_eq!(c.env["M"].source(), "b", "the last key wins, as it did");
}

#[test]
fn what_cannot_make_a_model_is_refused_for_a_pinned_definition_too() {
    let text = workflow("build", "{}", "5s").replace(r#"to: "done""#, r#"to: "nowhere""#);
    let run = pinned("w.ron", &text);
    assert!(run.workflow.is_none());
    assert!(run
        .diagnostics
        .iter()
        .any(|d| d.code == Code::UnknownState && d.is_error()));
}
