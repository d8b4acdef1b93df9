//! The `shell-interpolation` warning: `${var}` inside the script of a `sh -c` (any shell, any
//! short-option bundle with `c`), and nowhere else.

use waygate_core::validate::validate;

fn warnings(argv: &str) -> Vec<(String, usize)> {
    let text = format!(
        r#"Workflow(
    name: "w", initial: "a", rollback: "z",
    vars: {{ "v": (default: "1") }},
    states: {{ "a": (on_enter: [Command(run: {argv})]), "done": (terminal: Success), "z": (terminal: Failure) }},
    transitions: [(from: "a", to: "done")],
)"#
    );
    let v = validate("w.ron", &text);
    v.diagnostics
        .iter()
        .filter(|d| d.code == "shell-interpolation")
        .map(|d| (d.message.clone(), d.column))
        .collect()
}

#[test]
fn a_var_in_shell_code_is_a_warning_at_its_position() {
    let found = warnings(r#"["/bin/bash", "-ec", "deploy ${v} ${run.initiator} ${v}"]"#);
    assert_eq!(found.len(), 1, "{found:?}");
    let (message, column) = &found[0];
    assert!(
        message.starts_with("`${v}`, `${run.initiator}` pasted into a `bash -c` script"),
        "{message}"
    );
    // `    states: { "a": (on_enter: [Command(run: ["/bin/bash", "-ec", "deploy ` is 73 chars.
    assert_eq!(*column, 74);
}

#[test]
fn values_passed_as_arguments_or_to_other_programs_are_fine() {
    assert!(warnings(r#"["sh", "-c", "deploy \"$1\"", "sh", "${v}"]"#).is_empty());
    assert!(warnings(r#"["python3", "-c", "print('${v}')"]"#).is_empty());
    assert!(warnings(r#"["sh", "deploy.sh", "${v}"]"#).is_empty());
    assert!(warnings(r#"["sh", "--norc", "deploy.sh", "${v}"]"#).is_empty());
}
