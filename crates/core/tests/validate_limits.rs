//! Validation stays in proportion to the file: a file too large to be a workflow is refused
//! before it is parsed, and no single finding grows with the size of the workflow.

use waygate_core::diagnostic::Code;
use waygate_core::validate::{validate, MAX_WORKFLOW_BYTES};

/// `n` states in a chain that never reaches the terminal state.
fn dead_chain(n: usize) -> String {
    let mut states = vec![
        "\"start\": ()".to_owned(),
        "\"done\": (terminal: Success)".to_owned(),
    ];
    states.extend((0..n).map(|i| format!("\"s{i}\": ()")));
    let mut trans = vec![
        "(from: \"start\", to: \"done\")".to_owned(),
        "(from: \"start\", to: \"s0\")".to_owned(),
    ];
    trans.extend((0..n - 1).map(|i| format!("(from: \"s{i}\", to: \"s{}\")", i + 1)));
    format!(
        "Workflow(name: \"w\", initial: \"start\", states: {{ {} }}, transitions: [ {} ])",
        states.join(", "),
        trans.join(", ")
    )
}

#[test]
fn states_that_cannot_finish_are_each_reported_with_a_message_of_bounded_length() {
    let v = validate("w.ron", &dead_chain(3000));
    let dead: Vec<_> = v
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::NoPathToTerminal)
        .collect();
    assert_eq!(dead.len(), 3000);
    for d in &dead {
        assert!(d.message.len() < 300, "{}", d.message);
    }
    assert_eq!(
        dead[0].message,
        "state `s0` cannot reach any terminal state; from it a run can only reach `s0` -> `s1` -> `s2` -> `s3` -> `s4` -> `s5` -> ..."
    );
    let last = dead.last().expect("some");
    assert!(last.message.contains("is a dead end"), "{}", last.message);
    let next_to_last = &dead[dead.len() - 2];
    assert!(
        next_to_last
            .message
            .ends_with("only reach `s2998` -> `s2999`"),
        "{}",
        next_to_last.message
    );
}

#[test]
fn many_unknown_states_get_bounded_help() {
    let states: Vec<String> = (0..500)
        .map(|i| format!("\"s{i}\": (terminal: Success)"))
        .collect();
    let trans: Vec<String> = (0..500)
        .map(|i| format!("(from: \"s0\", to: \"missing_{i}_x\")"))
        .collect();
    let text = format!(
        "Workflow(name: \"w\", initial: \"s0\", states: {{ {} }}, transitions: [ {} ])",
        states.join(", "),
        trans.join(", ")
    );
    let v = validate("w.ron", &text);
    let unknown: Vec<_> = v
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::UnknownState)
        .collect();
    assert_eq!(unknown.len(), 500);
    for d in unknown {
        let help = d.help.as_deref().unwrap_or_default();
        assert!(help.len() < 200, "{help}");
    }
}

#[test]
fn text_larger_than_the_limit_is_refused_without_being_parsed() {
    let mut text = dead_chain(2);
    text.push_str(&" ".repeat(MAX_WORKFLOW_BYTES));
    let v = validate("big.ron", &text);
    assert!(v.workflow.is_none());
    assert_eq!(v.diagnostics.len(), 1);
    let d = &v.diagnostics[0];
    assert_eq!((d.code, d.line, d.column), (Code::TooLarge, 0, 0));
    assert!(
        d.message.contains("at most 4194304 bytes (4 MiB)"),
        "{}",
        d.message
    );
}

#[test]
fn every_reference_in_one_long_string_is_reported_at_its_place() {
    // 5,000 undeclared references in one string with an escape before them, so positions in
    // the file differ from positions in the value.
    let refs = "${nope} ".repeat(5_000);
    let text = format!(
        "Workflow(name: \"w\", initial: \"a\", states: {{ \"a\": (on_enter: [Command(run: [\"echo\", \"\\t{refs}\"])], on_failure: \"b\"), \"b\": (terminal: Failure) }}, transitions: [(from: \"a\", to: \"b\")])"
    );
    let v = validate("w.ron", &text);
    let undeclared: Vec<_> = v
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::UndeclaredVar)
        .collect();
    assert_eq!(undeclared.len(), 5_000);
    let first = text.find("${nope}").expect("written");
    for (i, d) in undeclared.iter().enumerate() {
        assert_eq!(d.span.start, first + 8 * i, "reference {i}");
    }
}

#[test]
fn a_state_named_with_other_unicode_characters_is_pointed_out() {
    // The state is written composed (U+00E9), the transition decomposed (e + U+0301).
    let text = "Workflow(name: \"w\", initial: \"a\", states: { \"a\": (), \"caf\u{e9}\": (terminal: Success) }, transitions: [(from: \"a\", to: \"cafe\u{301}\")])";
    let v = validate("w.ron", text);
    let d = v
        .diagnostics
        .iter()
        .find(|d| d.code == Code::UnknownState)
        .expect("unknown-state");
    let help = d.help.as_deref().unwrap_or_default();
    assert!(
        help.contains("looks the same but is written with other characters"),
        "{help}"
    );
    assert!(help.contains("U+00E9") && help.contains("U+0301"), "{help}");
}
