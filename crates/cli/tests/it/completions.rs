//! `waygate completions SHELL` and `waygate man`, generated from the clap definitions.

use crate::helpers::{repo, run, Sandbox};

const COMMANDS: [&str; 16] = [
    "validate",
    "graph",
    "start",
    "run",
    "status",
    "runs",
    "check",
    "advance",
    "approve",
    "drive",
    "rollback",
    "abort",
    "history",
    "audit",
    "completions",
    "man",
];

#[test]
fn completion_scripts_name_every_command() {
    let root = repo();
    let bash = run(&root, &["completions", "bash"]);
    bash.code(0).stdout_has("complete -F _waygate");
    for command in COMMANDS {
        assert!(bash.stdout.contains(command), "bash misses {command}");
    }
    // Flags too: `validate --format` completes its values.
    bash.stdout_has("human json jsonl csv");
    for shell in ["zsh", "fish"] {
        let script = run(&root, &["completions", shell]);
        script.code(0);
        for command in COMMANDS {
            assert!(script.stdout.contains(command), "{shell} misses {command}");
        }
    }
    run(&root, &["completions", "tcsh"]).code(2);
}

#[test]
fn bash_accepts_the_completion_script() {
    let sandbox = Sandbox::new();
    let script = run(&repo(), &["completions", "bash"]).stdout;
    let path = sandbox.write("waygate.bash", &script);
    let Ok(out) = std::process::Command::new("bash")
        .arg("-c")
        .arg("source \"$1\" && complete -p waygate")
        .arg("bash")
        .arg(&path)
        .output()
    else {
        eprintln!("no bash here: skipped");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("_waygate"));
}

#[test]
fn man_page_has_its_sections_and_renders() {
    let sandbox = Sandbox::new();
    let page = run(&repo(), &["man"]);
    page.code(0);
    for section in [
        ".TH waygate 1",
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH SUBCOMMANDS",
    ] {
        assert!(
            page.stdout.contains(section),
            "no {section}:\n{}",
            page.stdout
        );
    }
    for command in COMMANDS {
        assert!(page.stdout.contains(command), "man page misses {command}");
    }
    let path = sandbox.write("waygate.1", &page.stdout);
    // Rendered with man(1) where it is installed.
    if let Ok(out) = std::process::Command::new("man")
        .arg("-l")
        .arg(&path)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
    {
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("SYNOPSIS"), "{text}");
            assert!(text.contains("Declarative state"), "{text}");
        }
    }
    // One page per command into a directory.
    let dir = sandbox.path().join("man1");
    sandbox
        .wg(&["man", "--out", dir.to_str().expect("utf-8 path")])
        .code(0);
    for name in ["waygate.1", "waygate-validate.1", "waygate-audit-verify.1"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(text.contains(".SH NAME"), "{name}: {text}");
    }
}
