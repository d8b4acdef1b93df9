//! Text from people and programs is data: actor names keep to their character set, human
//! output escapes control and invisible characters, JSON keeps the exact text.

use crate::helpers::{of_kind, Sandbox};

const GATE: &str = r#"Workflow(
    name: "gate",
    initial: "a",
    environments: { "dev": () },
    states: {
        "a": (),
        "done": (terminal: Success),
    },
    transitions: [
        (from: "a", to: "done", guards: [
            (name: "noisy", check: Command(run: ["sh", "-c", "printf 'boom\\033[2J\\n  ok   fake row\\n'; exit 1"])),
            (name: "sign", check: Approval(prompt: "sign")),
        ]),
    ],
)
"#;

/// A fake row an attacker would like to appear in a table.
const FAKE: &str = "\n999  2026-01-01 00:00:00Z  x  root  Approved  approved `sign`";

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for bad in ['\x1b', '\u{202e}', '\u{9b}', '\r'] {
        assert!(!text.contains(bad), "{what} prints {bad:?} raw:\n{text}");
    }
    assert!(
        !text.contains("\n999  2026"),
        "{what} prints a fake row:\n{text}"
    );
}

#[test]
fn actor_names_with_newlines_or_escapes_are_a_usage_error() {
    let sb = Sandbox::new();
    sb.write("gate.ron", GATE);
    for actor in [
        format!("bob{FAKE}"),
        "bob\x1b[2J".to_owned(),
        "ali\u{202e}ecila".to_owned(),
        "jane doe".to_owned(),
        "$(id)".to_owned(),
    ] {
        // Through --as and through WAYGATE_ACTOR alike.
        let ran = sb.wg(&["--as", &actor, "start", "gate.ron", "--env", "dev"]);
        ran.code(2).stderr_has("actor name");
        assert_clean("the refusal", &ran.stderr);
        let ran = sb.wg_as(&actor, &["start", "gate.ron", "--env", "dev"]);
        ran.code(2);
        assert_clean("the refusal", &ran.stderr);
    }
    // Nothing was recorded: refused before the store is opened, no store was even created.
    let runs = sb.wg(&["--format", "json", "runs"]);
    runs.code(1).stderr_has("no store at");
}

#[test]
fn an_os_user_outside_the_set_is_refused_for_writes_and_fine_for_reads() {
    let sb = Sandbox::new();
    sb.write("gate.ron", GATE);
    let run = sb.start("tester", "gate.ron", "dev", &[]);
    let as_os_user = |args: &[&str]| -> crate::helpers::Ran {
        sb.command("unused", args)
            .env_remove("WAYGATE_ACTOR")
            .env("USER", "jane doe")
            .env("LOGNAME", "jane doe")
            .output()
            .expect("waygate runs")
            .into()
    };
    let ran = as_os_user(&["approve", &run, "sign"]);
    ran.code(2);
    assert!(
        ran.stderr.contains("$USER") && ran.stderr.contains("--as"),
        "{}",
        ran.stderr
    );
    as_os_user(&["history", &run]).code(0);
    as_os_user(&["status", &run]).code(0);
    assert_eq!(of_kind(&sb.history(&run), "Approved").len(), 0);
}

#[test]
fn comments_and_reasons_print_escaped_in_history_and_audit_and_exact_in_json() {
    let sb = Sandbox::new();
    sb.write("gate.ron", GATE);
    let run = sb.start("tester", "gate.ron", "dev", &[]);
    let comment = format!("fine\x1b[31m\u{202e}{FAKE}");
    sb.wg_as("alice", &["approve", &run, "sign", "--comment", &comment])
        .code(0);
    sb.wg(&["check", &run]).code(3);
    let reason = format!("stop\r{FAKE}\u{9b}2J");
    sb.wg(&["abort", &run, "--reason", &reason]).code(0);

    let history = sb.wg(&["history", &run]).code(0).stdout.clone();
    assert_clean("history", &history);
    assert!(
        history.contains(r"fine\u{1b}[31m\u{202e}\n999  2026"),
        "{history}"
    );
    assert!(history.contains(r"stop\r\n999"), "{history}");
    let audit = sb.wg(&["audit"]).code(0).stdout.clone();
    assert_clean("audit", &audit);
    let status = sb.wg(&["status", &run]).code(0).stdout.clone();
    assert_clean("status", &status);

    // JSON keeps the exact text.
    let events = sb.history(&run);
    assert_eq!(of_kind(&events, "Approved")[0]["comment"], comment.as_str());
    assert_eq!(of_kind(&events, "Aborted")[0]["reason"], reason.as_str());
}

#[test]
fn command_output_with_escape_codes_prints_escaped_in_check_status_and_drive() {
    let sb = Sandbox::new();
    sb.write("gate.ron", GATE);
    let run = sb.start("tester", "gate.ron", "dev", &[]);
    let check = sb.wg(&["check", &run]);
    check.code(3);
    assert_clean("check", &check.stdout);
    sb.wg(&["advance", &run]).code(3);
    let history = sb.wg(&["history", &run]).code(0).stdout.clone();
    assert_clean("history", &history);
    let drive = sb.wg(&["drive", &run, "--no-wait"]);
    assert_clean("drive", &drive.stderr);
    assert_clean("drive", &drive.stdout);
    // The evidence keeps the bytes.
    let events = sb.history(&run);
    let evidence = of_kind(&events, "GuardsEvaluated")[0]["guards"][0].to_string();
    assert!(evidence.contains("\\u001b[2J"), "{evidence}");
}

#[test]
fn a_crafted_actor_cannot_run_commands_through_run_initiator() {
    let sb = Sandbox::new();
    sb.write(
        "tag.ron",
        r#"Workflow(
    name: "tag",
    initial: "a",
    environments: { "dev": () },
    states: {
        "a": (on_enter: [Command(run: ["sh", "-c", "echo deployed by ${run.initiator} > who"])]),
        "done": (terminal: Success),
    },
    transitions: [(from: "a", to: "done")],
)
"#,
    );
    // validate says where the value meets the shell.
    let v = sb.wg(&["validate", "tag.ron"]);
    v.code(0);
    assert!(
        v.stdout
            .contains("`${run.initiator}` pasted into a `sh -c` script"),
        "{}",
        v.stdout
    );
    let ran = sb.wg_as("x; touch pwned", &["run", "tag.ron", "--env", "dev"]);
    ran.code(2);
    assert!(!sb.path().join("pwned").exists());
    assert!(!sb.path().join("who").exists());
    sb.wg_as("ana", &["run", "tag.ron", "--env", "dev"]).code(0);
    assert_eq!(
        std::fs::read_to_string(sb.path().join("who")).expect("who"),
        "deployed by ana\n"
    );
}

#[test]
fn validate_shows_control_characters_of_a_file_escaped() {
    let sb = Sandbox::new();
    // Raw ESC and RLO bytes in the file itself, and escapes RON turns into them.
    sb.write(
        "evil.ron",
        "Workflow(\n    name: \"evil\",\n    initial: \"a\",\n    states: { \"a\": (), \"done\": (terminal: Success), \"dead\x1b[2J\u{202e}\": (), \"x\\u{1b}[31m\": () },\n    transitions: [(from: \"a\", to: \"done\")],\n)\n",
    );
    let ran = sb.wg(&["validate", "evil.ron"]);
    ran.code(1);
    assert_clean("validate", &ran.stdout);
    assert_clean("validate", &ran.stderr);
    assert!(
        ran.stdout
            .contains(r"state `dead\u{1b}[2J\u{202e}` cannot be reached"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains(r"`x\u{1b}[31m`"), "{}", ran.stdout);
    // JSON keeps the exact names.
    let json = sb.wg(&["--format", "json", "validate", "evil.ron"]);
    assert!(json.stdout.contains(r"dead\u001b[2J"), "{}", json.stdout);
}

/// The command-line parser's own usage errors quote the argument they could not take: a run id
/// pasted from elsewhere, a `--format` value. They print escaped like every other message.
#[test]
fn usage_errors_print_the_arguments_they_quote_escaped() {
    let sb = Sandbox::new();
    // A store to read, so `runs` gets as far as its `--status`.
    sb.write("wf.ron", GATE);
    sb.start("alice", "wf.ron", "dev", &[]);
    let evil = format!("x\u{1b}[2J\u{202e}{FAKE}");
    for args in [
        vec!["--format", evil.as_str(), "runs"],
        vec![evil.as_str()],
        vec!["runs", "--status", evil.as_str()],
    ] {
        let ran = sb.wg(&args);
        ran.code(2);
        assert!(ran.stderr.starts_with("error:"), "{}", ran.stderr);
        assert!(
            ran.stderr.contains("\\u{1b}[2J"),
            "shown escaped: {}",
            ran.stderr
        );
        assert_clean("a usage error", &ran.stderr);
    }
    // Help still prints as it is, on stdout.
    let help = sb.wg(&["--help"]);
    help.code(0).stdout_has("Usage:");
}

/// The run's directory is a path someone chose: a directory named with an escape sequence
/// printed raw in `status` cleared the screen. It prints escaped, in `status` and in the
/// error about a directory that is gone.
#[test]
fn a_run_directory_named_with_control_characters_prints_escaped() {
    let sb = Sandbox::new();
    let dir = sb.path().join("wd\x1b[2J\r");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("wf.ron"), GATE).expect("write");
    let out: crate::helpers::Ran = sb
        .command(
            "alice",
            &["--format", "json", "start", "wf.ron", "--env", "dev"],
        )
        .current_dir(&dir)
        .output()
        .expect("start")
        .into();
    out.code(0);
    let run = out.json()["run_id"].as_str().expect("run_id").to_owned();
    let status = sb.wg(&["status", &run]);
    status.code(0);
    assert!(
        status.stdout.contains(r"wd\u{1b}[2J\r"),
        "{}",
        status.stdout
    );
    assert_clean("status", &status.stdout);
    std::fs::remove_dir_all(&dir).expect("rm");
    let status = sb.wg(&["status", &run]);
    assert_clean("status", &status.stdout);
    let drive = sb.wg(&["drive", &run]);
    drive.code(1);
    assert_clean("drive", &drive.stderr);
}
