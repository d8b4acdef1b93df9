//! Secrets given to `start` with `--var`: never stored, so later commands are told to take
//! them from the environment.

use crate::helpers::{files_containing, Sandbox};

const SECRET_FLOW: &str = r#"Workflow(
    name: "sec", initial: "a",
    vars: { "token": (secret: true, from_env: "WG_TEST_DEPLOY_TOKEN") },
    states: { "a": (), "done": (terminal: Success) },
    transitions: [(from: "a", to: "done", guards: [
        (name: "has-token", check: Command(run: ["test", "-n", "${token}"])),
    ])],
)"#;

#[test]
fn a_secret_given_to_start_is_not_kept_and_later_commands_say_where_it_must_come_from() {
    let sb = Sandbox::new();
    sb.write("sec.ron", SECRET_FLOW);
    let started = sb.wg(&[
        "start",
        "sec.ron",
        "--env",
        "local",
        "--var",
        "token=tok-7f3a9",
    ]);
    started.code(0);
    assert!(
        started
            .stderr
            .contains("note: `token` is secret and is not stored; later commands need $WG_TEST_DEPLOY_TOKEN set"),
        "{}",
        started.stderr
    );
    let run = started.stdout.trim().to_owned();

    let without = sb.wg(&["drive", &run]);
    without.code(1);
    assert!(
        without.stderr.contains(
            "`token` is secret and never stored: set $WG_TEST_DEPLOY_TOKEN in the environment"
        ),
        "{}",
        without.stderr
    );

    let with = sb
        .command("tester", &["drive", &run])
        .env("WG_TEST_DEPLOY_TOKEN", "tok-7f3a9")
        .output()
        .expect("waygate runs");
    assert_eq!(with.status.code(), Some(0), "{with:?}");
    assert!(files_containing(&sb.store(), b"tok-7f3a9").is_empty());
    sb.verify();
}

/// `--var "$DEPLOY_TOKEN"` with the `token=` forgotten: the value may well be a secret, and
/// the error goes to a CI log. It says what is wrong without repeating the value.
#[test]
fn a_var_without_a_name_is_refused_without_printing_its_value() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        r#"Workflow(name: "v", initial: "a", vars: { "token": (secret: true, from_env: "T") },
            states: { "a": (), "done": (terminal: Success) }, transitions: [(from: "a", to: "done")])"#,
    );
    for given in ["tok-7f3a9", "=tok-7f3a9"] {
        let ran = sb.wg_as("alice", &["start", "wf.ron", "--env", "x", "--var", given]);
        ran.code(1).stderr_has("--var: expected NAME=VALUE");
        assert!(
            !ran.stderr.contains("tok-7f3a9") && !ran.stdout.contains("tok-7f3a9"),
            "the value was printed: {ran:?}"
        );
    }
}
