//! `secret-in-argv`: a secret var in a command's argv is in the process list of every local
//! user while the command runs; `env` is the place for it.

use waygate_core::diagnostic::Code;
use waygate_core::validate::validate;

fn findings(command: &str) -> Vec<(String, usize, usize)> {
    let text = format!(
        r#"Workflow(
    name: "w", initial: "a", rollback: "z",
    vars: {{ "token": (secret: true, from_env: "TOKEN"), "v": (default: "1") }},
    states: {{ "a": (on_enter: [{command}]), "done": (terminal: Success), "z": (terminal: Failure) }},
    transitions: [(from: "a", to: "done")],
)"#
    );
    let v = validate("w.ron", &text);
    v.diagnostics
        .iter()
        .filter(|d| d.code == Code::SecretInArgv)
        .map(|d| (d.message.clone(), d.line, d.column))
        .collect()
}

#[test]
fn a_secret_in_the_argv_is_a_warning_at_its_position() {
    let found =
        findings(r#"Command(run: ["curl", "-H", "Authorization: Bearer ${token}", "${v}"])"#);
    assert_eq!(found.len(), 1, "{found:?}");
    let (message, line, column) = &found[0];
    assert_eq!(
        message,
        "secret `${token}` in a command's arguments: every local user can read it in the process list while the command runs"
    );
    // `    states: { "a": (on_enter: [Command(run: ["curl", "-H", "Authorization: Bearer ` is 82.
    assert_eq!((*line, *column), (4, 83));
}

#[test]
fn one_warning_per_argument_holding_a_secret() {
    let found = findings(r#"Command(run: ["deploy", "${token}", "--again=${token}${token}"])"#);
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn a_secret_in_env_or_a_plain_var_in_the_argv_is_fine() {
    assert!(findings(
        r#"Command(run: ["sh", "-c", "curl -H \"Authorization: Bearer $TOKEN\""], env: { "TOKEN": "${token}" })"#
    )
    .is_empty());
    assert!(findings(r#"Command(run: ["deploy", "${v}"])"#).is_empty());
    assert!(findings(r#"Http(url: "http://h/?t=${token}")"#).is_empty());
}
