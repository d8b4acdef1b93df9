//! `waygate validate` and `waygate graph` on the shipped workflows and on one invalid
//! workflow per diagnostic (`tests/invalid/*.ron`, each saying what it expects on its
//! `// expect: CODE LINE:COL` lines).

use crate::helpers::{repo, run, Sandbox};

#[test]
fn shipped_workflows_validate_clean() {
    let root = repo();
    let mut args = vec!["validate", "workflows/production-deploy.ron"];
    let examples: Vec<String> = std::fs::read_dir(root.join("workflows/examples"))
        .expect("examples dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .map(|p| {
            p.strip_prefix(&root)
                .expect("inside repo")
                .display()
                .to_string()
        })
        .collect();
    assert!(examples.len() >= 3, "at least three examples ship");
    args.extend(examples.iter().map(String::as_str));
    let ran = run(&root, &args);
    ran.code(0);
    assert!(
        !ran.stdout.contains('⚠'),
        "no warnings expected:\n{}",
        ran.stdout
    );
    let json = run(&root, &[&["--format", "json"], &args[..]].concat())
        .code(0)
        .json();
    assert_eq!(json, serde_json::json!([]));
}

fn expectations(text: &str) -> Vec<(String, usize, usize)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("// expect: "))
        .map(|rest| {
            let (code, pos) = rest.split_once(' ').expect("`// expect: CODE LINE:COL`");
            let (line, col) = pos.trim().split_once(':').expect("LINE:COL");
            (
                code.to_owned(),
                line.parse().expect("line"),
                col.parse().expect("column"),
            )
        })
        .collect()
}

#[test]
fn every_invalid_workflow_fails_with_its_diagnostic_at_its_position() {
    let root = repo();
    let mut files: Vec<_> = std::fs::read_dir(root.join("tests/invalid"))
        .expect("tests/invalid")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "one file per diagnostic");
    for path in files {
        let rel = path
            .strip_prefix(&root)
            .expect("inside repo")
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("readable");
        let expected = expectations(&text);
        assert!(!expected.is_empty(), "{rel} has no `// expect:` line");
        let ran = run(&root, &["validate", "--format", "json", &rel]);
        let json = ran.json();
        let got: Vec<(String, usize, usize)> = json
            .as_array()
            .expect("a list")
            .iter()
            .map(|d| {
                (
                    d["code"].as_str().expect("code").to_owned(),
                    d["line"].as_u64().expect("line") as usize,
                    d["column"].as_u64().expect("column") as usize,
                )
            })
            .collect();
        assert_eq!(got, expected, "{rel}: diagnostics differ");
        let any_error = json
            .as_array()
            .expect("list")
            .iter()
            .any(|d| d["severity"] == "error");
        ran.code(if any_error { 1 } else { 0 });

        // The rendered form, snapshotted: colour off (not a terminal, NO_COLOR) and width 100.
        let human = run(&root, &["validate", &rel]);
        let name = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        insta::assert_snapshot!(name, human.stdout);
    }
}

#[test]
fn all_files_are_reported_not_just_the_first() {
    let root = repo();
    let ran = run(
        &root,
        &[
            "validate",
            "--format",
            "json",
            "tests/invalid/bad-pointer.ron",
            "tests/invalid/undeclared-var.ron",
        ],
    );
    ran.code(1);
    let files: Vec<String> = ran
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["file"].as_str().expect("file").to_owned())
        .collect();
    assert_eq!(
        files,
        [
            "tests/invalid/bad-pointer.ron",
            "tests/invalid/undeclared-var.ron"
        ]
    );
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let ran = run(&repo(), &["validate", "no/such.ron"]);
    ran.code(1);
    ran.stderr_has("no/such.ron");
}

#[test]
fn unreadable_file_is_reported_once_and_listed_in_json() {
    let root = repo();
    let ran = run(
        &root,
        &[
            "validate",
            "no/such.ron",
            "workflows/examples/quickstart.ron",
        ],
    );
    ran.code(1);
    assert_eq!(
        ran.stderr.matches("no/such.ron").count(),
        1,
        "said once:\n{}",
        ran.stderr
    );
    ran.stdout_has("quickstart.ron: ok");
    let json = run(
        &root,
        &[
            "validate",
            "--format",
            "json",
            "no/such.ron",
            "workflows/examples/quickstart.ron",
        ],
    );
    json.code(1);
    assert_eq!(json.stderr, "", "JSON mode says it in JSON only");
    let list = json.json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["file"], "no/such.ron");
    assert_eq!(list[0]["code"], "unreadable");
    assert_eq!(list[0]["line"], 0);
    assert_eq!(list[0]["severity"], "error");

    // A directory, a file that is not text, and an endless device: each one finding.
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path().join("dir.ron")).expect("mkdir");
    std::fs::write(sandbox.path().join("binary.ron"), b"Workflow(\xff\xfe)").expect("write");
    let ran = sandbox.wg(&[
        "validate",
        "--format",
        "json",
        "dir.ron",
        "binary.ron",
        "/dev/zero",
    ]);
    ran.code(1);
    let found: Vec<(String, String)> = ran
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_owned(),
                d["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[0].0, "unreadable");
    assert!(found[0].1.contains("it is a directory"), "{found:?}");
    assert_eq!(found[1].0, "unreadable");
    assert!(found[1].1.contains("not UTF-8 text"), "{found:?}");
    assert_eq!(found[2].0, "too-large");
    assert!(
        found[2].1.contains("more than 4194304 bytes long"),
        "{found:?}"
    );
}

#[test]
fn file_too_large_to_be_a_workflow_is_refused_naming_the_limit() {
    let sandbox = Sandbox::new();
    let quickstart =
        std::fs::read_to_string(repo().join("workflows/examples/quickstart.ron")).expect("read");
    // A valid workflow followed by 5 MiB of comment: refused for its size alone.
    let padding = "// padding\n".repeat(5 * 1024 * 1024 / 11);
    sandbox.write("big.ron", &format!("{quickstart}{padding}"));
    let ran = sandbox.wg(&["validate", "big.ron"]);
    ran.code(1);
    assert!(
        ran.stderr.starts_with("error: big.ron: is "),
        "{}",
        ran.stderr
    );
    ran.stderr_has("bytes (5.0 MiB); a workflow file may be at most 4194304 bytes (4 MiB)");
    let json = sandbox
        .wg(&["validate", "--format", "json", "big.ron"])
        .json();
    assert_eq!(json[0]["code"], "too-large");
    // Every command that reads a workflow file refuses it the same way.
    let start = sandbox.wg(&["start", "big.ron", "--env", "local"]);
    start.code(1);
    start.stderr_has("may be at most 4194304 bytes");
    let graph = sandbox.wg(&["graph", "big.ron"]);
    graph.code(1);
    graph.stderr_has("may be at most 4194304 bytes");
}

#[test]
fn usage_errors_exit_2_and_global_flags_go_anywhere() {
    let root = repo();
    run(&root, &["validate"]).code(2);
    run(&root, &["frobnicate"]).code(2);
    run(
        &root,
        &[
            "--format",
            "json",
            "validate",
            "workflows/examples/quickstart.ron",
        ],
    )
    .code(0);
    run(
        &root,
        &[
            "validate",
            "workflows/examples/quickstart.ron",
            "--format",
            "json",
        ],
    )
    .code(0);
}

#[test]
fn graph_renders_dot_and_mermaid() {
    let root = repo();
    let dot = run(&root, &["graph", "workflows/production-deploy.ron"]);
    dot.code(0);
    assert!(
        dot.stdout.starts_with("digraph \"production-deploy\" {"),
        "{}",
        dot.stdout
    );
    assert!(
        dot.stdout.contains("shape=doublecircle"),
        "terminal states are marked"
    );
    assert!(
        dot.stdout.contains("style=dashed"),
        "on_failure edges are drawn"
    );
    assert!(dot.stdout.trim_end().ends_with('}'));
    let mermaid = run(
        &root,
        &["graph", "--mermaid", "workflows/production-deploy.ron"],
    );
    mermaid.code(0);
    assert!(
        mermaid
            .stdout
            .starts_with("---\ntitle: \"production-deploy: Chat bot release"),
        "{}",
        mermaid.stdout
    );
    assert!(mermaid.stdout.contains("\n---\nstateDiagram-v2\n"));
    assert!(mermaid.stdout.contains("[*] --> s0"));
    // An invalid workflow is refused with its diagnostics.
    let bad = run(&root, &["graph", "tests/invalid/undeclared-var.ron"]);
    bad.code(1);
    bad.stderr_has("undeclared-var");
}

#[test]
fn a_very_long_line_is_shown_cut_around_the_problem() {
    let sandbox = Sandbox::new();
    // One 200 KB line with an undeclared variable near its end.
    let filler = "x".repeat(200_000);
    let text = format!(
        "Workflow(name: \"long\", initial: \"a\", states: {{ \"a\": (on_enter: [Command(run: [\"echo\", \"{filler} ${{nope}} tail\"])], on_failure: \"b\"), \"b\": (terminal: Failure) }}, transitions: [(from: \"a\", to: \"b\")])\n"
    );
    sandbox.write("long.ron", &text);
    let ran = sandbox.wg(&["validate", "long.ron"]);
    ran.code(1);
    ran.stdout_has("undeclared-var");
    assert!(
        ran.stdout.contains("${nope}"),
        "the place is shown:\n{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains('…'),
        "the cut is marked:\n{}",
        ran.stdout
    );
    let longest = ran.stdout.lines().map(|l| l.chars().count()).max();
    assert!(
        longest < Some(250),
        "longest line {longest:?}:\n{}",
        ran.stdout
    );
    // The header still gives the real column.
    ran.stdout_has("long.ron:1:200");
}

#[test]
fn graph_shows_descriptions_and_the_days_of_a_window() {
    let root = repo();
    let dot = run(&root, &["graph", "workflows/production-deploy.ron"]);
    dot.code(0);
    // The workflow's description titles the graph; a state's is its tooltip and under its name.
    dot.stdout_has("label=\"production-deploy\\nChat bot release: the whole production");
    assert!(
        dot.stdout.contains(
            "tooltip=\"PRE-DEPLOYMENT / Code Quality Checks: critical path tests, no undefined variables, feature flags reviewed.\""
        ),
        "{}",
        dot.stdout
    );
    assert!(dot
        .stdout
        .contains("label=\"code_quality\\nPRE-DEPLOYMENT / Code Quality"));
    dot.stdout_has("deploy-window (Window Mon-Thu 09:00-16:00 Europe/London)");
    let mermaid = run(
        &root,
        &["graph", "--mermaid", "workflows/production-deploy.ron"],
    );
    mermaid.code(0);
    // The note is attached to the state it describes.
    let id = mermaid
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("    state \"code_quality\" as "))
        .expect("code_quality is drawn");
    assert!(
        mermaid.stdout.contains(&format!(
            "note right of {id}: PRE-DEPLOYMENT / Code Quality Checks#58; critical path"
        )),
        "{}",
        mermaid.stdout
    );
    assert!(mermaid
        .stdout
        .contains("deploy-window (Window Mon-Thu 09#58;00-16#58;00 Europe/London)"));
}

#[test]
fn a_policy_proves_production_deploy_and_catches_a_broken_copy() {
    let root = repo();
    // The workflow names the seed policy itself, and --policy adds it again: one check each.
    run(
        &root,
        &[
            "validate",
            "--policy",
            "workflows/policies/seed.ron",
            "workflows/production-deploy.ron",
        ],
    )
    .code(0);
    let sandbox = Sandbox::new();
    let text = std::fs::read_to_string(root.join("workflows/production-deploy.ron"))
        .expect("the workflow");
    // Its own `policies` are relative to its directory: a copy elsewhere names none.
    let broken_text = text
        .replace("    policies: [\"policies/seed.ron\"],\n", "")
        .replace(", not_by_initiator: true)", ")");
    // The transition into production, at its `from`.
    let line = broken_text
        .lines()
        .zip(broken_text.lines().skip(1))
        .position(|(a, b)| a.ends_with("from: \"staging\",") && b.ends_with("to: \"production\","))
        .expect("staging -> production")
        + 1;
    let broken = sandbox.write("deploy.ron", &broken_text);
    let seed = root.join("workflows/policies/seed.ron");
    let (seed, broken) = (seed.display().to_string(), broken.display().to_string());
    run(sandbox.path(), &["validate", &broken]).code(0);
    let ran = run(sandbox.path(), &["validate", "--policy", &seed, &broken]);
    ran.code(1).stdout_has("policy-guarded-by");
    ran.stdout_has("counterexample: environment_check");
    let json = run(
        sandbox.path(),
        &["--format", "json", "validate", "--policy", &seed, &broken],
    )
    .code(1)
    .json();
    assert_eq!(json[0]["code"], "policy-guarded-by");
    assert_eq!(json[0]["line"], line);
    assert_eq!(json[0]["counterexample"][7], "production");
    // Named by the workflow and by --policy, a policy is checked once.
    let seed_text = std::fs::read_to_string(&seed).expect("the policy");
    std::fs::create_dir_all(sandbox.path().join("policies")).expect("a directory");
    sandbox.write("policies/seed.ron", &seed_text);
    let own = sandbox.write("own.ron", &text.replace(", not_by_initiator: true)", ")"));
    let own = own.display().to_string();
    let twice = run(
        sandbox.path(),
        &[
            "--format",
            "json",
            "validate",
            "--policy",
            "policies/seed.ron",
            &own,
        ],
    )
    .code(1)
    .json();
    assert_eq!(twice.as_array().map(Vec::len), Some(1), "{twice:#}");
}

#[test]
fn a_policy_that_does_not_parse_or_cannot_be_read_is_an_error() {
    let sandbox = Sandbox::new();
    let policy = sandbox.write(
        "p.ron",
        "Policy(name: \"p\", rules: [(name: \"x\", rule: Passes(state: \"a\"))])",
    );
    let root = repo();
    let deploy = root.join("workflows/production-deploy.ron");
    let (policy, deploy) = (policy.display().to_string(), deploy.display().to_string());
    let json = run(
        sandbox.path(),
        &["--format", "json", "validate", "--policy", &policy, &deploy],
    )
    .code(1)
    .json();
    assert_eq!(json[0]["code"], "unknown-variant");
    assert_eq!(
        (json[0]["line"].clone(), json[0]["column"].clone()),
        (1.into(), 45.into())
    );
    let json = run(
        sandbox.path(),
        &[
            "--format",
            "json",
            "validate",
            "--policy",
            "missing.ron",
            &deploy,
        ],
    )
    .code(1)
    .json();
    assert_eq!(json[0]["code"], "unreadable");
}

/// A workflow's own `policies` are read by `validate` (in CI, on a change someone proposes)
/// and what does not parse is shown: a path out of the workflow's directory, by `..`, an
/// absolute path or a symbolic link, would print another file's lines. It is refused, and
/// nothing of the file is shown.
#[test]
fn a_workflows_own_policy_path_cannot_leave_its_directory() {
    let sb = Sandbox::new();
    sb.write("secret.txt", "hunter2 top secret\n");
    std::fs::create_dir_all(sb.path().join("wf")).expect("dir");
    std::os::unix::fs::symlink(sb.path().join("secret.txt"), sb.path().join("wf/link.ron"))
        .expect("symlink");
    let secret = sb.path().join("secret.txt").display().to_string();
    for (path, says) in [
        (
            "../secret.txt",
            "must be relative to the workflow's directory",
        ),
        (
            secret.as_str(),
            "must be relative to the workflow's directory",
        ),
        ("link.ron", "leads out of the workflow's directory"),
    ] {
        sb.write(
            "wf/w.ron",
            &format!(
                r#"Workflow(name: "w", initial: "s", policies: [{path:?}],
  states: {{"s": (), "done": (terminal: Success)}},
  transitions: [(from: "s", to: "done")])"#
            ),
        );
        let ran = run(sb.path(), &["validate", "wf/w.ron"]);
        ran.code(1);
        assert!(
            ran.stdout.contains(says) || ran.stderr.contains(says),
            "{path}: {ran:?}"
        );
        assert!(
            !ran.stdout.contains("hunter2") && !ran.stderr.contains("hunter2"),
            "{path}: {ran:?}"
        );
    }
}
