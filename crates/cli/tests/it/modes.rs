//! One set of end-to-end scenarios, run on a local store and through a real `waygate serve`:
//! each step's exit code, and its output where it holds no times or paths, must be the same in
//! both modes.

use std::time::Duration;

use crate::helpers::{wait_until, Ran, Sandbox, Spawned};
use crate::serve::{new_token, spawn_server, WORKFLOWS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Local,
    Server,
}

/// A guard that always fails, which only bob may override.
const GLASS: &str = r#"Workflow(name: "glass", initial: "a", environments: { "dev": () },
    overridable_by: ["bob"],
    states: { "a": (), "done": (terminal: Success) },
    transitions: [(from: "a", to: "done", guards: [
        (name: "health", check: Command(run: ["sh", "-c", "echo db down; exit 1"])),
    ])])"#;

/// A sandbox with the workflows, and in server mode a server and a token per actor.
struct Deck {
    sb: Sandbox,
    mode: Mode,
    server: Option<(Spawned, String)>,
    tokens: Vec<(String, String)>,
}

impl Deck {
    fn new(mode: Mode) -> Deck {
        let sb = Sandbox::new();
        for (name, text) in WORKFLOWS.iter().chain([&("glass", GLASS)]) {
            sb.write(&format!("workflows/{name}.ron"), text);
        }
        let mut deck = Deck {
            sb,
            mode,
            server: None,
            tokens: Vec::new(),
        };
        if mode == Mode::Server {
            for actor in ["ana", "bob"] {
                let token = new_token(&deck.sb, actor, &["operator", "approver"]);
                deck.tokens.push((actor.to_owned(), token));
            }
            let (server, addr) = spawn_server(&deck.sb, "serve");
            deck.server = Some((server, format!("http://{addr}")));
        }
        deck
    }

    /// `waygate ARGS` as `actor`: `--as` locally, the actor's token against the server.
    fn command(&self, actor: &str, args: &[&str]) -> std::process::Command {
        let mut cmd = self.sb.command(actor, args);
        if let Some((_, url)) = &self.server {
            let token = self
                .tokens
                .iter()
                .find(|(a, _)| a == actor)
                .map(|(_, t)| t.clone())
                .unwrap_or_default();
            cmd.env("WAYGATE_SERVER", url).env("WAYGATE_TOKEN", token);
        }
        cmd
    }

    /// Runs [`Deck::command`] and waits for it.
    fn wg(&self, actor: &str, args: &[&str]) -> Ran {
        self.command(actor, args)
            .output()
            .expect("waygate runs")
            .into()
    }

    /// Starts [`Deck::command`] in the background.
    fn spawn(&self, actor: &str, tag: &str, args: &[&str]) -> Spawned {
        let out = self.sb.path().join(format!("{tag}.out"));
        let err = self.sb.path().join(format!("{tag}.err"));
        let child = self
            .command(actor, args)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out).expect("out"))
            .stderr(std::fs::File::create(&err).expect("err"))
            .spawn()
            .expect("spawn waygate");
        Spawned::from_child(child, out, err)
    }

    /// Runs each step (actor, arguments) and records it, output kept.
    fn play(&self, t: &mut Transcript, run: &str, steps: &[(&str, &[&str])]) {
        for (actor, args) in steps {
            let ran = self.wg(actor, args);
            record(t, run, &ran, &format!("{actor} {}", args.join(" ")), true);
        }
    }

    /// The run's events, as `history --format json` prints them.
    fn history(&self, run: &str) -> Vec<serde_json::Value> {
        let history = self
            .wg("bob", &["--format", "json", "history", run])
            .code(0)
            .json();
        history.as_array().expect("events").clone()
    }

    /// What `start` and `run` take: a file here, a loaded workflow's name there.
    fn workflow(&self, name: &str) -> String {
        match self.mode {
            Mode::Local => format!("workflows/{name}.ron"),
            Mode::Server => name.to_owned(),
        }
    }
}

/// One step: who, what, and its exit code and output (the run id written `RUN`).
type Transcript = Vec<(String, i32, String)>;

/// Records a step: its exit code, its stdout if `keep_output`, and its error lines.
fn record(t: &mut Transcript, run: &str, ran: &Ran, what: &str, keep_output: bool) {
    let mut out = if keep_output {
        ran.stdout.clone()
    } else {
        String::new()
    };
    for line in ran.stderr.lines().filter(|l| l.starts_with("error:")) {
        out.push_str(line);
        out.push('\n');
    }
    t.push((what.replace(run, "RUN"), ran.code, out.replace(run, "RUN")));
}

fn approvals_scenario(mode: Mode) -> Transcript {
    let d = Deck::new(mode);
    let mut t = Transcript::new();
    let w = d.workflow("signed");
    let started = d.wg("ana", &["start", &w, "--env", "dev"]);
    started.code(0);
    let run = started.stdout.trim().to_owned();
    let steps: [(&str, &[&str], bool); 12] = [
        ("ana", &["approve", &run, "sign"], true),
        ("ana", &["check", &run], true),
        ("ana", &["advance", &run], true),
        ("bob", &["approve", &run, "sign", "--comment", "fine"], true),
        (
            "bob",
            &["--format", "json", "approve", &run, "sign", "--withdraw"],
            true,
        ),
        ("bob", &["approve", &run, "sign"], true),
        ("ana", &["check", &run], true),
        ("ana", &["advance", &run, "--to", "nowhere"], true),
        ("ana", &["advance", &run], true),
        ("ana", &["advance", &run], true),
        ("ana", &["abort", &run, "--reason", "late"], true),
        ("ana", &["audit", "verify"], false),
    ];
    for (actor, args, keep) in steps {
        let ran = d.wg(actor, args);
        record(
            &mut t,
            &run,
            &ran,
            &format!("{actor} {}", args.join(" ")),
            keep,
        );
    }
    let who: Vec<String> = d
        .history(&run)
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["actor"].as_str().unwrap_or(""),
                e["kind"].as_str().unwrap_or("")
            )
        })
        .collect();
    t.push(("history".into(), 0, who.join("\n")));
    let status = d
        .wg("bob", &["--format", "json", "status", &run])
        .code(0)
        .json();
    t.push((
        "status".into(),
        0,
        format!(
            "{} {} {}",
            status["state"], status["status"], status["initiator"]
        ),
    ));
    let runs = d.wg("bob", &["--format", "csv", "runs", "--status", "succeeded"]);
    t.push((
        "runs".into(),
        runs.code,
        runs.stdout.lines().count().to_string(),
    ));
    t
}

fn errors_scenario(mode: Mode) -> Transcript {
    let d = Deck::new(mode);
    let mut t = Transcript::new();
    let started = d.wg("ana", &["start", &d.workflow("signed"), "--env", "dev"]);
    started.code(0);
    let run = started.stdout.trim().to_owned();
    let steps: [(&str, &[&str]); 8] = [
        ("ana", &["status", "20260101-000000-dead"]),
        ("ana", &["approve", &run, "no-such-guard"]),
        ("ana", &["abort", &run, "--reason", " "]),
        ("ana", &["runs", "--status", "bogus"]),
        ("ana", &["rollback", &run, "--reason", "bad"]),
        ("ana", &["rollback", &run, "--reason", "again"]),
        ("ana", &["advance", &run]),
        ("ana", &["start", &d.workflow("signed"), "--env", "nowhere"]),
    ];
    d.play(&mut t, &run, &steps);
    t
}

fn drive_scenario(mode: Mode) -> Transcript {
    let d = Deck::new(mode);
    let mut t = Transcript::new();
    let ran = d.wg("ana", &["run", &d.workflow("bake"), "--env", "dev"]);
    let run = ran
        .stderr
        .split("started run ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("")
        .to_owned();
    record(&mut t, &run, &ran, "run bake", true);
    let again = d.wg("bob", &["--format", "json", "drive", &run]);
    record(&mut t, &run, &again, "drive again", true);
    let free = d
        .wg("ana", &["start", &d.workflow("free"), "--env", "dev"])
        .code(0)
        .stdout
        .trim()
        .to_owned();
    let driven = d.wg("bob", &["drive", &free, "--no-wait"]);
    record(&mut t, &free, &driven, "drive free", true);
    t
}

#[track_caller]
fn same_in_both_modes(scenario: fn(Mode) -> Transcript) {
    let local = scenario(Mode::Local);
    let served = scenario(Mode::Server);
    for (l, s) in local.iter().zip(&served) {
        // The steps' labels differ only in how the workflow is named.
        assert_eq!((l.1, &l.2), (s.1, &s.2), "\nlocal:  {l:?}\nserver: {s:?}");
    }
    assert_eq!(local.len(), served.len());
}

#[test]
fn approvals_advance_and_history_are_the_same_in_both_modes() {
    same_in_both_modes(approvals_scenario);
}

#[test]
fn refusals_exit_the_same_in_both_modes() {
    let t = errors_scenario(Mode::Local);
    let codes: Vec<i32> = t.iter().map(|(_, c, _)| *c).collect();
    // The scenario has the refusals it means to have.
    assert_eq!(codes, [1, 1, 2, 2, 6, 1, 1, 1], "{t:#?}");
    same_in_both_modes(errors_scenario);
}

#[test]
fn run_and_drive_end_the_same_in_both_modes() {
    let t = drive_scenario(Mode::Server);
    assert_eq!(t[0].1, 0, "{t:#?}");
    assert!(t[0].2.contains("succeeded in `done`"), "{t:#?}");
    same_in_both_modes(drive_scenario);
}

#[test]
fn as_with_server_is_a_usage_error_and_a_missing_token_exits_7() {
    let d = Deck::new(Mode::Server);
    let (_, url) = d.server.as_ref().expect("server");
    let ran: Ran =
        d.sb.command("ana", &["--as", "ana", "--server", url, "runs"])
            .output()
            .expect("runs")
            .into();
    ran.code(2).stderr_has("--as cannot be used with --server");
    let ran: Ran =
        d.sb.command("ana", &["--server", url, "runs"])
            .env_remove("WAYGATE_TOKEN")
            .output()
            .expect("runs")
            .into();
    ran.code(7).stderr_has("no token");
    d.sb.write("ana.token", &format!("{}\n", d.tokens[0].1));
    let ran: Ran =
        d.sb.command(
            "x",
            &[
                "--server",
                url,
                "--token-file",
                "ana.token",
                "--format",
                "json",
                "runs",
            ],
        )
        .env_remove("WAYGATE_TOKEN")
        .output()
        .expect("runs")
        .into();
    ran.code(0);
    // A token file holding what no token holds (two lines, an escape) is said so, without
    // the token, rather than taken for a server that cannot be reached.
    let token = &d.tokens[0].1;
    d.sb.write("two.token", &format!("{token}\n{token}\x1b[31m\n"));
    let ran: Ran =
        d.sb.command("x", &["--server", url, "--token-file", "two.token", "runs"])
            .env_remove("WAYGATE_TOKEN")
            .output()
            .expect("runs")
            .into();
    ran.code(1);
    assert!(
        ran.stderr.contains("--token-file two.token")
            && ran.stderr.contains("no token has")
            && !ran.stderr.contains("reach")
            && !ran.stderr.contains(&token[4..]),
        "{}",
        ran.stderr
    );
    // `validate` and `graph` stay local: they work with a server named and no token.
    let ran: Ran =
        d.sb.command("x", &["--server", url, "validate", "workflows/free.ron"])
            .output()
            .expect("validate")
            .into();
    ran.code(0);
}

#[test]
fn ctrl_c_ends_only_the_client_of_a_server_driven_run() {
    let d = Deck::new(Mode::Server);
    let run = d
        .wg("ana", &["start", "bake", "--env", "dev"])
        .code(0)
        .stdout
        .trim()
        .to_owned();
    let drive = d.spawn("ana", "drive", &["drive", &run]);
    crate::helpers::wait_until(
        "the server drives the run",
        std::time::Duration::from_secs(10),
        || {
            std::fs::read_dir(d.sb.store().join("serve/driving"))
                .is_ok_and(|mut e| e.next().is_some())
        },
    );
    drive.signal(libc::SIGINT);
    let ran = drive.wait(std::time::Duration::from_secs(10));
    ran.code(4).stderr_has("the server goes on driving it");
    crate::helpers::wait_until(
        "the run succeeds",
        std::time::Duration::from_secs(20),
        || d.wg("bob", &["--format", "json", "status", &run]).json()["status"] == "succeeded",
    );
}

fn follow_scenario(mode: Mode) -> Transcript {
    let d = Deck::new(mode);
    let mut t = Transcript::new();
    let run = d
        .wg("ana", &["start", &d.workflow("bake"), "--env", "dev"])
        .code(0)
        .stdout
        .trim()
        .to_owned();
    let drive = d.spawn("ana", "drive", &["drive", &run]);
    let follow = d.wg("bob", &["status", &run, "--follow"]);
    let drove = drive.wait(std::time::Duration::from_secs(30));
    record(&mut t, &run, &drove, "drive", true);
    // Each event line after the status: time, actor, what. Waiting evaluations depend on
    // timing; the move and the end do not.
    let lines: Vec<&str> = follow
        .stdout
        .lines()
        .filter(|l| l.contains("(advance)") || l.contains("ended in"))
        .map(|l| l.split_once("Z  ").map_or(l, |(_, rest)| rest))
        .collect();
    t.push((
        "follow".into(),
        follow.code,
        lines.join("\n").replace(&run, "RUN"),
    ));
    let json = d.wg("bob", &["--format", "json", "status", &run, "--follow"]);
    t.push(("follow json".into(), json.code, String::new()));
    t
}

#[test]
fn status_follow_prints_the_events_until_the_end_in_both_modes() {
    let t = follow_scenario(Mode::Local);
    assert_eq!(
        t[1],
        (
            "follow".to_owned(),
            0,
            "ana  `a` -> `done` (advance)\nana  ended in `done`: succeeded".to_owned()
        ),
        "{t:#?}"
    );
    assert_eq!(t[2].1, 2, "{t:#?}");
    same_in_both_modes(follow_scenario);
}

fn override_scenario(mode: Mode) -> Transcript {
    let d = Deck::new(mode);
    let mut t = Transcript::new();
    let run = d
        .wg("ana", &["start", &d.workflow("glass"), "--env", "dev"])
        .code(0)
        .stdout
        .trim()
        .to_owned();
    let steps: [(&str, &[&str]); 7] = [
        (
            "ana",
            &["override", &run, "health", "--reason", "db is fine"],
        ),
        ("ana", &["advance", &run]),
        (
            "ana",
            &["override", &run, "health", "--reason", "db is fine"],
        ),
        ("bob", &["override", &run, "health", "--reason", " "]),
        (
            "bob",
            &[
                "--format",
                "json",
                "override",
                &run,
                "health",
                "--reason",
                "db is fine",
            ],
        ),
        ("bob", &["override", &run, "health", "--reason", "twice"]),
        ("ana", &["advance", &run]),
    ];
    d.play(&mut t, &run, &steps);
    let overrides: Vec<String> = d
        .history(&run)
        .iter()
        .filter(|e| e["kind"] == "Overridden")
        .map(|e| format!("{} {}", e["actor"], e["reason"]))
        .collect();
    t.push(("overrides".into(), 0, overrides.join("\n")));
    t
}

#[test]
fn override_keeps_its_rules_and_records_its_actor_in_both_modes() {
    let t = override_scenario(Mode::Local);
    let codes: Vec<i32> = t.iter().map(|(_, c, _)| *c).collect();
    // ana is not on the list (before and after the guard fails); a blank reason; bob's
    // counts; not twice; then the run moves.
    assert_eq!(codes, [1, 3, 1, 2, 0, 1, 0, 0], "{t:#?}");
    assert!(t[4].2.contains("\"actor\": \"bob\""), "{t:#?}");
    assert_eq!(t[7].2, "\"bob\" \"db is fine\"", "{t:#?}");
    same_in_both_modes(override_scenario);
}

fn report_scenario(mode: Mode) -> Transcript {
    let d = Deck::new(mode);
    let mut t = Transcript::new();
    let run = d
        .wg("ana", &["start", &d.workflow("signed"), "--env", "dev"])
        .code(0)
        .stdout
        .trim()
        .to_owned();
    d.wg("bob", &["approve", &run, "sign", "--comment", "fine"])
        .code(0);
    d.wg("ana", &["advance", &run]).code(0);
    let steps: [&[&str]; 4] = [
        &["audit", "report", "--run", &run, "--out", "report.html"],
        &["audit", "report", "--run", &run, "--out", "report.html"],
        &[
            "audit",
            "report",
            "--run",
            "20260101-000000-dead",
            "--out",
            "r2.html",
        ],
        &[
            "audit",
            "report",
            "--workflow",
            "nothing",
            "--out",
            "r3.html",
        ],
    ];
    for args in steps {
        let ran = d.wg("bob", args);
        // The chain head's hash depends on the times of the events.
        let mut out = ran.stdout.clone();
        if let Some(at) = out.find("head: event") {
            out.truncate(at);
        }
        let ran = crate::helpers::Ran { stdout: out, ..ran };
        record(&mut t, &run, &ran, &args.join(" "), true);
    }
    // Regression: an abort through the server was done, but the answer lacked the run and
    // the command said "answered what this waygate cannot read", exit 1.
    let other = d
        .wg("ana", &["start", &d.workflow("bake"), "--env", "dev"])
        .code(0)
        .stdout
        .trim()
        .to_owned();
    let aborted = d.wg("ana", &["abort", &other, "--reason", "not needed"]);
    record(&mut t, &other, &aborted, "abort", true);
    let html = std::fs::read_to_string(d.sb.path().join("report.html")).expect("the report");
    // What the report shows of the run, not where it came from.
    let shown = [
        "✔ approved",
        "fine",
        "✔ succeeded",
        "checksums and hash chain intact",
        run.as_str(),
    ]
    .map(|s| format!("{}: {}", s.replace(&run, "RUN"), html.contains(s)));
    t.push(("report".into(), 0, shown.join("\n")));
    for (_, token) in &d.tokens {
        assert!(!html.contains(&token[4..]), "the token is in the report");
    }
    if let Some((_, url)) = &d.server {
        assert!(html.contains(url.as_str()), "the report names the server");
    }
    t
}

#[test]
fn audit_report_is_written_here_from_either_side() {
    let t = report_scenario(Mode::Local);
    let codes: Vec<i32> = t.iter().map(|(_, c, _)| *c).collect();
    assert_eq!(codes, [0, 1, 1, 0, 0, 0], "{t:#?}");
    assert_eq!(t[4].2, "run RUN aborted in `a`\n", "{t:#?}");
    assert!(!t[5].2.contains("false"), "{t:#?}");
    same_in_both_modes(report_scenario);
}

#[test]
fn store_salvage_through_a_server_says_where_it_runs() {
    let d = Deck::new(Mode::Server);
    let ran = d.wg("ana", &["store", "salvage", "--to", "new"]);
    ran.code(2)
        .stderr_has("on the server's host, stop the server");
    assert!(!d.sb.path().join("new").exists());
}

/// Regression: a server stopped (SIGTERM) while the drive a client follows runs an action
/// left that client saying "cannot reach the server" (exit 1), as it asked the stopped server
/// for the run's state; the drive is the server's, which resumes it at its next start.
#[test]
fn a_client_following_a_drive_the_server_stops_exits_4_and_the_next_server_finishes_it() {
    let mut d = Deck::new(Mode::Server);
    let log = d.sb.path().join("ran.log");
    d.sb.write(
        "workflows/act.ron",
        &format!(
            r#"Workflow(name: "act", initial: "a", environments: {{ "dev": () }},
    states: {{ "a": (on_enter: [Command(run: ["sh", "-c", "echo start >> {log}; sleep 3"])]),
        "done": (terminal: Success) }},
    transitions: [(from: "a", to: "done")])"#,
            log = log.display()
        ),
    );
    let (server, _) = d.server.as_ref().expect("server");
    server.signal(libc::SIGHUP);
    let loaded = || {
        d.wg("ana", &["start", "act", "--env", "dev"])
            .stdout
            .trim()
            .to_owned()
    };
    let mut run = String::new();
    wait_until("the workflow is loaded", Duration::from_secs(10), || {
        run = loaded();
        !run.is_empty()
    });
    let drive = d.spawn("ana", "drive", &["drive", &run]);
    wait_until("the action runs", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("start"))
    });
    let (server, _) = d.server.take().expect("server");
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait(Duration::from_secs(30)).code, 0);
    let ran = drive.wait(Duration::from_secs(10));
    ran.code(4);
    assert!(
        ran.stderr.contains("resumes") && !ran.stderr.contains("cannot reach"),
        "{}",
        ran.stderr
    );
    let (server, addr) = spawn_server(&d.sb, "serve-again");
    d.server = Some((server, format!("http://{addr}")));
    wait_until("the run succeeds", Duration::from_secs(30), || {
        d.wg("bob", &["--format", "json", "status", &run]).json()["status"] == "succeeded"
    });
    let history = d.history(&run);
    let kinds: Vec<&str> = history
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| k.starts_with("Action"))
        .collect();
    assert_eq!(
        kinds,
        [
            "ActionStarted",
            "ActionInterrupted",
            "ActionStarted",
            "ActionFinished"
        ]
    );
    let starts = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(starts.lines().count(), 2, "{starts}");
}
