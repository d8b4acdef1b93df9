//! Where a run happens: the directory `start` was typed in is recorded, and every later
//! command runs the run's actions and guards there, wherever it is typed itself.

use std::path::Path;

use crate::helpers::{of_kind, Ran, Sandbox};

/// `a -> done` on an approval, with a Json guard and a Command guard in a sub-directory;
/// `rollback` touches a file where it runs.
const WORKFLOW: &str = r#"Workflow(
    name: "where",
    initial: "a",
    rollback: "rollback",
    environments: { "dev": () },
    states: {
        "a": (),
        "done": (terminal: Success, on_enter: [Command(run: ["touch", "released"])]),
        "rollback": (on_enter: [Command(run: ["touch", "reverted"])]),
        "rolled_back": (terminal: Failure),
    },
    transitions: [
        (from: "a", to: "done", guards: [
            (name: "flag", check: Json(file: "config/flags.json", pointer: "/on", equals: true)),
            (name: "in-sub", check: Command(run: ["sh", "-c", "pwd > seen-from"], cwd: "sub")),
            (name: "sign-off", check: Approval(prompt: "ok?")),
        ]),
        (from: "rollback", to: "rolled_back"),
    ],
)
"#;

/// `waygate ARGS` as `actor`, typed in `dir`.
fn wg_in(sb: &Sandbox, dir: &Path, actor: &str, args: &[&str]) -> Ran {
    sb.command(actor, args)
        .current_dir(dir)
        .output()
        .expect("waygate runs")
        .into()
}

/// Two checkouts, `repo` (where the run starts, with the workflow) and `other`.
fn checkouts(sb: &Sandbox) -> (std::path::PathBuf, std::path::PathBuf, String) {
    sb.write("repo/wf.ron", WORKFLOW);
    sb.write("repo/config/flags.json", r#"{"on": true}"#);
    std::fs::create_dir_all(sb.path().join("repo/sub")).expect("mkdir");
    std::fs::create_dir_all(sb.path().join("other/sub")).expect("mkdir");
    sb.write("other/config/flags.json", r#"{"on": false}"#);
    let repo = sb.path().join("repo");
    let other = sb.path().join("other");
    let started = wg_in(
        sb,
        &repo,
        "ana",
        &["--format", "json", "start", "wf.ron", "--env", "dev"],
    );
    started.code(0);
    let run = started.json()["run_id"].as_str().expect("id").to_owned();
    (repo, other, run)
}

#[test]
fn a_rollback_typed_in_another_checkout_runs_where_the_run_was_started() {
    let sb = Sandbox::new();
    let (repo, other, run) = checkouts(&sb);
    wg_in(
        &sb,
        &other,
        "bob",
        &["rollback", &run, "--reason", "bad release"],
    )
    .code(0);
    assert!(
        repo.join("reverted").exists(),
        "the revert ran in the run's checkout"
    );
    assert!(
        !other.join("reverted").exists(),
        "nothing ran where rollback was typed"
    );
}

#[test]
fn guards_resolve_relative_files_and_cwd_where_the_run_was_started() {
    let sb = Sandbox::new();
    let (repo, other, run) = checkouts(&sb);
    wg_in(&sb, &other, "bob", &["approve", &run, "sign-off"]).code(0);
    // `other` has the flag off; the run's own checkout has it on.
    wg_in(&sb, &other, "ana", &["drive", &run]).code(0);
    let seen = std::fs::read_to_string(repo.join("sub/seen-from")).expect("ran in repo/sub");
    assert_eq!(
        Path::new(seen.trim()),
        repo.join("sub").canonicalize().expect("canonical")
    );
    assert!(repo.join("released").exists());
    assert!(!other.join("sub/seen-from").exists() && !other.join("released").exists());
}

#[test]
fn status_and_history_show_where_the_run_runs() {
    let sb = Sandbox::new();
    let (repo, other, run) = checkouts(&sb);
    let repo = repo.canonicalize().expect("canonical");
    let json = wg_in(&sb, &other, "bob", &["--format", "json", "status", &run])
        .code(0)
        .json();
    assert_eq!(json["workdir"], repo.display().to_string());
    assert_eq!(json["file_path"], repo.join("wf.ron").display().to_string());
    let human = wg_in(&sb, &other, "bob", &["status", &run]);
    human.code(0);
    assert!(
        human
            .stdout
            .contains(&format!("directory  {}", repo.display())),
        "{}",
        human.stdout
    );
    let history = sb.history(&run);
    let started = of_kind(&history, "RunStarted");
    assert_eq!(started[0]["workdir"], repo.display().to_string());
    assert_eq!(started[0]["file"], "wf.ron");
    sb.verify();
}

#[test]
fn a_run_whose_directory_is_gone_says_so_and_changes_nothing() {
    let sb = Sandbox::new();
    let (repo, other, run) = checkouts(&sb);
    let version = sb.status(&run)["version"].clone();
    std::fs::remove_dir_all(&repo).expect("remove the checkout");
    let ran = wg_in(&sb, &other, "bob", &["rollback", &run, "--reason", "bad"]);
    ran.code(1);
    let repo = sb.path().join("repo");
    assert!(
        ran.stderr.contains(&repo.display().to_string()) && ran.stderr.contains("no longer exists"),
        "{}",
        ran.stderr
    );
    assert!(!other.join("reverted").exists());
    let ran = wg_in(&sb, &other, "bob", &["advance", &run]);
    ran.code(1).stderr_has("no longer exists");
    let status = wg_in(&sb, &other, "bob", &["status", &run]);
    status.code(0).stdout_has("(it no longer exists)");
    assert_eq!(sb.status(&run)["version"], version);
    // The error's advice works: the run can be ended, freeing its environment.
    assert!(ran
        .stderr
        .contains(&format!("waygate abort {run} --reason")));
    wg_in(
        &sb,
        &other,
        "bob",
        &["abort", &run, "--reason", "checkout gone"],
    )
    .code(0);
    assert_eq!(sb.status(&run)["status"], "aborted");
}

#[test]
fn a_file_a_guard_cannot_find_says_where_it_looked() {
    let sb = Sandbox::new();
    let (repo, _other, run) = checkouts(&sb);
    std::fs::remove_file(repo.join("config/flags.json")).expect("remove");
    let ran = wg_in(&sb, &repo, "ana", &["--format", "json", "check", &run]);
    let json = ran.json();
    let flag = json["transitions"][0]["guards"]
        .as_array()
        .expect("guards")
        .iter()
        .find(|g| g["name"] == "flag")
        .expect("the flag guard")
        .clone();
    let looked = repo
        .canonicalize()
        .expect("canonical")
        .join("config/flags.json");
    assert!(
        flag["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&looked.display().to_string()),
        "{flag}"
    );
}

#[test]
fn a_program_a_guard_cannot_find_says_where_it_looked() {
    let sb = Sandbox::new();
    sb.write(
        "repo/wf.ron",
        r#"Workflow(name: "missing", initial: "a", environments: { "dev": () },
            states: { "a": (), "done": (terminal: Success) },
            transitions: [(from: "a", to: "done", guards: [
                (name: "script", check: Command(run: ["./scripts/check"], cwd: "tools")),
            ])])"#,
    );
    std::fs::create_dir_all(sb.path().join("repo/tools")).expect("mkdir");
    let repo = sb.path().join("repo");
    let started = wg_in(
        &sb,
        &repo,
        "ana",
        &["--format", "json", "start", "wf.ron", "--env", "dev"],
    );
    started.code(0);
    let run = started.json()["run_id"].as_str().expect("id").to_owned();
    let ran = wg_in(&sb, sb.path(), "ana", &["advance", &run]);
    ran.code(3);
    let tools = repo.canonicalize().expect("canonical").join("tools");
    let detail = of_kind(&sb.history(&run), "GuardsEvaluated")[0]["guards"][0]["detail"].clone();
    assert!(
        detail.as_str().unwrap_or_default().contains(&format!(
            "cannot run ./scripts/check in {}",
            tools.display()
        )),
        "{detail}"
    );
}
