//! The `shell-interpolation` warning: `${var}` inside the script of a `sh -c` (any shell, any
//! short-option bundle with `c`), and nowhere else.

use waygate_core::diagnostic::Code;
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
        .filter(|d| d.code == Code::ShellInterpolation)
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
    assert!(warnings(r#"["python3", "-c", "import sys; print(sys.argv[1])", "${v}"]"#).is_empty());
    assert!(warnings(r#"["sh", "deploy.sh", "${v}"]"#).is_empty());
    assert!(warnings(r#"["sh", "--norc", "deploy.sh", "${v}"]"#).is_empty());
    assert!(warnings(r#"["sudo", "-u", "deploy", "./deploy.sh", "${run.initiator}"]"#).is_empty());
    assert!(warnings(r#"["docker", "exec", "web", "deploy", "${v}"]"#).is_empty());
}

/// Each case: the argv and the start of the warning's message. The shell is found behind
/// wrappers, in bundles and absolute paths, and where a program hands a string to a shell.
#[test]
fn a_var_reaching_a_shell_through_any_door_is_a_warning() {
    let cases = [
        (
            r#"["env", "sh", "-c", "deploy ${v}"]"#,
            "`${v}` pasted into a `sh -c` script",
        ),
        (
            r#"["sudo", "sh", "-c", "deploy ${v}"]"#,
            "`${v}` pasted into a `sh -c` script",
        ),
        (
            r#"["bash", "-lc", "deploy ${run.initiator}"]"#,
            "`${run.initiator}` pasted into a `bash -c` script",
        ),
        (
            r#"["/usr/bin/env", "-i", "PATH=/bin", "/bin/dash", "-ec", "x ${v}"]"#,
            "`${v}` pasted into a `dash -c` script",
        ),
        (
            r#"["sudo", "-u", "app", "nice", "-n", "5", "timeout", "60", "zsh", "-c", "${v}"]"#,
            "`${v}` pasted into a `zsh -c` script",
        ),
        (
            r#"["xargs", "-0", "sh", "-c", "x ${v}"]"#,
            "`${v}` pasted into a `sh -c` script",
        ),
        (
            r#"["busybox", "sh", "-c", "x ${v}"]"#,
            "`${v}` pasted into a `sh -c` script",
        ),
        (
            r#"["fish", "-c", "x ${v}"]"#,
            "`${v}` pasted into a `fish -c` script",
        ),
        (
            r#"["ssh", "deploy@host", "deploy ${v}"]"#,
            "`${v}` pasted into the command line `ssh` hands to a shell",
        ),
        (
            r#"["su", "deploy", "-c", "x ${v}"]"#,
            "`${v}` pasted into the command line `su -c` hands to a shell",
        ),
        (
            r#"["watch", "-n", "5", "curl ${v}"]"#,
            "`${v}` pasted into the command line `watch` hands to a shell",
        ),
        (
            r#"["docker", "exec", "-it", "web", "sh", "-c", "x ${v}"]"#,
            "`${v}` pasted into a `sh -c` script",
        ),
        (
            r#"["kubectl", "exec", "pod", "--", "bash", "-c", "x ${v}"]"#,
            "`${v}` pasted into a `bash -c` script",
        ),
        (
            r#"["python3", "-c", "print('${v}')"]"#,
            "`${v}` pasted into the inline `python3 -c` program",
        ),
        (
            r#"["perl", "-le", "print '${v}'"]"#,
            "`${v}` pasted into the inline `perl -e` program",
        ),
        (
            r#"["awk", "-F:", "{ print \"${v}\" }"]"#,
            "`${v}` pasted into the inline `awk` program",
        ),
    ];
    for (argv, want) in cases {
        let found = warnings(argv);
        assert_eq!(found.len(), 1, "{argv}: {found:?}");
        assert!(found[0].0.starts_with(want), "{argv}: {}", found[0].0);
    }
}

#[test]
fn every_argument_ssh_joins_is_checked() {
    let found = warnings(r#"["ssh", "host", "deploy", "${v}", "--tag", "${run.initiator}"]"#);
    assert_eq!(found.len(), 2, "{found:?}");
}
