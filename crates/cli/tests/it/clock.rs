//! Clocks that disagree, through the binary: one process whose clock runs a year ahead
//! (played with the debug-only `WAYGATE_TEST_CLOCK_OFFSET`) must not change the times the
//! others record, nor how long they wait, and time queries stay exact.

use std::time::Duration;

use crate::helpers::{of_kind, Sandbox, Spawned};

const YEAR: i64 = 365 * 86_400;

const BAKE: &str = r#"Workflow(
    name: "bake",
    initial: "bake",
    environments: { "local": () },
    states: {
        "bake": (deadline: "1h"),
        "done": (terminal: Success),
        "failed": (terminal: Failure),
    },
    transitions: [
        (from: "bake", to: "done", guards: [(name: "soak", check: Wait(duration: "2s"))]),
    ],
)
"#;

fn at(event: &serde_json::Value) -> jiff::Timestamp {
    event["at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("an event time")
}

#[test]
fn a_bake_started_under_a_clock_a_year_ahead_takes_its_own_two_seconds() {
    let sb = Sandbox::new();
    sb.write("wf.ron", BAKE);
    let ahead = sb
        .command(
            "ana",
            &["--format", "json", "start", "wf.ron", "--env", "local"],
        )
        .env("WAYGATE_TEST_CLOCK_OFFSET", YEAR.to_string())
        .output()
        .expect("waygate runs");
    assert_eq!(ahead.status.code(), Some(0), "{ahead:?}");
    let started: serde_json::Value = serde_json::from_slice(&ahead.stdout).expect("json");
    let run = started["run_id"].as_str().expect("run id").to_owned();
    let before = jiff::Timestamp::now();

    // A process with a right clock drives it: two seconds of bake, not a year.
    let driven = sb
        .spawn_as("bob", "drive", &["drive", &run])
        .wait(Duration::from_secs(60));
    driven.code(0);
    assert!(
        driven.stderr.contains("clock jump") && driven.stderr.contains("ahead of this clock"),
        "{}",
        driven.stderr
    );
    let after = jiff::Timestamp::now();
    let history = sb.history(&run);
    // The year-ahead start keeps its own time; everything after carries the right clock's.
    assert!(at(&history[0]) > after + jiff::SignedDuration::from_secs(YEAR - 86_400));
    for event in &history[1..] {
        let t = at(event);
        assert!(before <= t && t <= after, "{event}");
    }
    let moved = of_kind(&history, "Transitioned");
    assert_eq!(moved[0]["to"], "done");
    let waited = of_kind(&history, "GuardsEvaluated");
    let first_look = at(waited[0]);
    assert!(
        at(moved[0]).duration_since(first_look) >= jiff::SignedDuration::from_secs(2),
        "the bake counted from the first look"
    );

    // Time queries select by each event's own time across the jump.
    let audit = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["--format", "json", "audit"];
        all.extend_from_slice(args);
        let json = sb.wg(&all).code(0).json();
        json.as_array()
            .expect("a list")
            .iter()
            .filter_map(|e| e["seq"].as_u64())
            .collect()
    };
    let seqs: Vec<u64> = history.iter().filter_map(|e| e["seq"].as_u64()).collect();
    let (since, until) = (before.to_string(), after.to_string());
    assert_eq!(audit(&["--since", &since, "--until", &until]), seqs[1..]);
    assert_eq!(audit(&["--until", &until]), seqs[1..]);
    let next_month = (after + jiff::SignedDuration::from_secs(30 * 86_400)).to_string();
    assert_eq!(audit(&["--since", &next_month]), seqs[..1]);
    sb.verify();
}

/// A state with a deadline entered by a process whose clock runs a year behind: a process with
/// a right clock must not find the deadline a year past and roll back at once; the bake takes
/// its own two seconds.
#[test]
fn a_state_entered_under_a_clock_a_year_behind_does_not_miss_its_deadline_at_once() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        r#"Workflow(
    name: "behind",
    initial: "a",
    rollback: "rollback",
    environments: { "local": () },
    states: {
        "a": (),
        "verify": (deadline: "1h"),
        "done": (terminal: Success),
        "rollback": (),
        "rolled_back": (terminal: Failure),
    },
    transitions: [
        (from: "a", to: "verify"),
        (from: "verify", to: "done", guards: [(name: "soak", check: Wait(duration: "2s"))]),
        (from: "rollback", to: "rolled_back"),
    ],
)
"#,
    );
    let run = sb.start("ana", "wf.ron", "local", &[]);
    let behind = sb
        .command("ana", &["advance", &run])
        .env("WAYGATE_TEST_CLOCK_OFFSET", (-YEAR).to_string())
        .output()
        .expect("waygate runs");
    assert_eq!(behind.status.code(), Some(0), "{behind:?}");
    assert_eq!(sb.status(&run)["state"], "verify");

    let driven = sb
        .spawn_as("bob", "drive", &["drive", &run])
        .wait(Duration::from_secs(60));
    driven.code(0).stderr_has("clock jump");
    let history = sb.history(&run);
    let moves: Vec<&str> = of_kind(&history, "Transitioned")
        .iter()
        .filter_map(|e| e["to"].as_str())
        .collect();
    assert_eq!(moves, ["verify", "done"]);
    sb.verify();
}

/// The clock offset that makes a waygate process started now read `at`.
fn offset_to(at: &str) -> String {
    let at: jiff::Timestamp = at.parse().expect("a time");
    at.duration_since(jiff::Timestamp::now())
        .as_secs()
        .to_string()
}

/// A deploy window whose start falls in the spring-forward gap opens when the gap ends, and
/// `drive` waits for exactly that (it used to announce 01:30 GMT, 02:30 BST, and never open a
/// window that closed before then).
#[test]
fn a_window_starting_in_the_spring_forward_gap_opens_when_the_gap_ends() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        r#"Workflow(
    name: "window",
    initial: "a",
    environments: { "local": () },
    states: { "a": (), "done": (terminal: Success) },
    transitions: [
        (from: "a", to: "done", guards: [
            (name: "window", check: Window(days: [Sun], start: "01:30", end: "02:15", tz: "Europe/London")),
        ]),
    ],
)
"#,
    );
    // 28 March 2027: London's clocks go from 01:00 GMT to 02:00 BST at 01:00Z. Three seconds
    // before that, on this process's clock.
    let (out, err) = (sb.path().join("run.out"), sb.path().join("run.err"));
    let child = sb
        .command("ana", &["run", "wf.ron", "--env", "local"])
        .env(
            "WAYGATE_TEST_CLOCK_OFFSET",
            offset_to("2027-03-28T00:59:57Z"),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout"))
        .stderr(std::fs::File::create(&err).expect("stderr"))
        .spawn()
        .expect("waygate runs");
    let ran = Spawned::from_child(child, out, err).wait(Duration::from_secs(60));
    ran.code(0);
    ran.stderr_has("closed; opens Sun 02:00 Europe/London");
}
