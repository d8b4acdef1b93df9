//! `kill -9` of a `drive` at any moment: the store stays verifiable, `status` works, a new
//! `drive` finishes the run, and an action whose process died unrecorded is run again once,
//! then failed (operator stops are another matter: see `signals.rs`).
//!
//! The kill moments come from a seeded generator; the test prints its seed (`seed N`), and
//! `WAYGATE_TEST_SEED=N cargo test -p waygate --test it crash::` replays those moments (the
//! child processes' own progress still depends on the machine's speed).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::helpers::{
    alive, of_kind, on_both_stores, one_action_workflow, pids_in, wait_until, Sandbox,
};

/// Actions and guards that take a little while, and a bake, so kills land everywhere.
const CRASHY: &str = r#"Workflow(
    name: "crashy",
    initial: "deploy",
    rollback: "rollback",
    environments: { "dev": () },
    states: {
        "deploy": (on_enter: [Command(run: ["./act.sh", "deploy"]), Command(run: ["./act.sh", "migrate"])], on_failure: "rollback"),
        "bake": (on_failure: "rollback"),
        "done": (terminal: Success, on_enter: [Command(run: ["./act.sh", "announce"])]),
        "rollback": (on_enter: [Command(run: ["./act.sh", "revert"])]),
        "rolled_back": (terminal: Failure),
    },
    transitions: [
        (from: "deploy", to: "bake", guards: [(name: "healthy", check: Command(run: ["./act.sh", "check"]))]),
        (from: "bake", to: "done", guards: [(name: "bake", check: Wait(duration: "1500ms"))]),
        (from: "rollback", to: "rolled_back"),
    ],
)
"#;

/// A small deterministic generator; the seed is printed so a failure can be replayed
/// (`WAYGATE_TEST_SEED`).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

on_both_stores! {
    fn kill_9_at_random_moments_never_breaks_the_store_and_drive_finishes(sb: Sandbox) {
    sb.write("wf.ron", CRASHY);
    sb.script("act.sh", "echo \"$1 $$\" >> actions.log\nsleep 0.2");
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let seed = match std::env::var("WAYGATE_TEST_SEED") {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("WAYGATE_TEST_SEED={text:?} is not a u64")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    eprintln!("seed {seed} (replay with WAYGATE_TEST_SEED={seed})");
    let mut rng = Lcg(seed);
    for i in 0..8 {
        if sb.status(&run)["status"] != "active" && sb.status(&run)["status"] != "waiting" {
            break;
        }
        let drive = sb.spawn_as("alice", &format!("drive{i}"), &["drive", &run]);
        std::thread::sleep(Duration::from_millis(50 + rng.below(900)));
        drive.kill9();
        sb.verify();
        let st = sb.status(&run);
        assert!(!st["state"].is_null(), "{st}");
        sb.wg(&["history", &run]).code(0);
    }
    // A kill may have come after the last commit: then `drive` reports how the run ended.
    let end = sb.wg_as("alice", &["drive", &run]);
    assert!([0, 3, 6].contains(&end.code), "{end:?}");
    let st = sb.status(&run);
    match (st["status"].as_str(), st["state"].as_str()) {
        (Some("succeeded"), Some("done")) | (Some("failed"), Some("rolled_back")) => {}
        // The revert cut off twice too: failed in place, nowhere further to go.
        (Some("failed"), Some("rollback")) => {
            assert!(sb.history(&run).iter().any(|e| e["state"] == "rollback"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("died 2 times"))));
        }
        _ => panic!("after the kills and a drive: {st}"),
    }
    sb.verify();
    // Every action started was finished exactly once, after at most two starts.
    let history = sb.history(&run);
    let mut keys: Vec<(String, u64)> = of_kind(&history, "ActionStarted")
        .iter()
        .map(|e| {
            (
                e["state"].as_str().unwrap_or("").to_owned(),
                e["index"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    for (state, index) in keys {
        let count = |kind: &str| {
            of_kind(&history, kind)
                .iter()
                .filter(|e| e["state"] == state.as_str() && e["index"] == index)
                .count()
        };
        assert!((1..=2).contains(&count("ActionStarted")), "{state} {index}");
        assert_eq!(count("ActionFinished"), 1, "{state} {index}");
    }
    // Nothing holds the environment any more.
    sb.start("alice", "wf.ron", "dev", &[]);
    }
}

/// One action that runs until the test lets it go, writing its pid first.
fn hangs() -> String {
    one_action_workflow("hangs", "dev", "60s")
}

fn kill_all(pids: &[i32]) {
    for &pid in pids {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

#[test]
fn an_action_cut_off_is_reported_run_again_once_then_failed() {
    let sb = Sandbox::new();
    sb.write("wf.ron", &hangs());
    sb.script(
        "deploy.sh",
        "echo $$ >> deploy.pids\ni=0; while [ ! -f release ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done",
    );
    sb.script("revert.sh", "echo reverted >> revert.log");
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let pids = sb.path().join("deploy.pids");

    for attempt in 1..=2 {
        let drive = sb.spawn_as("alice", &format!("drive{attempt}"), &["drive", &run]);
        wait_until("the action to start", Duration::from_secs(30), || {
            pids_in(&pids).len() == attempt
        });
        let st = sb.status(&run);
        assert_eq!(st["actions"][0]["status"], "running", "{st}");
        drive.kill9();
        // The action's leader goes with the SIGKILLed waygate (parent-death signal).
        let leaders = pids_in(&pids);
        wait_until(
            "the action to die with waygate",
            Duration::from_secs(10),
            || leaders.iter().all(|&p| !alive(p)),
        );
        let st = sb.status(&run);
        assert_eq!(st["actions"][0]["status"], "interrupted", "{st}");
        let human = sb.wg(&["status", &run]);
        human.stdout_has("interrupted");
        sb.verify();
    }
    // Found dead a second time: recorded as failed, the run takes its failure path.
    let started = Instant::now();
    let end = sb.wg_as("alice", &["drive", &run]);
    end.code(6);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(pids_in(&pids).len(), 2, "not run a third time");
    let history = sb.history(&run);
    let finished = of_kind(&history, "ActionFinished");
    assert_eq!(finished[0]["state"], "deploy");
    assert_eq!(finished[0]["ok"], false);
    assert!(finished[0]["detail"]
        .as_str()
        .is_some_and(|d| d.contains("died 2 times")));
    assert_eq!(sb.status(&run)["state"], "rolled_back");
    assert!(sb.path().join("revert.log").exists());
    sb.verify();
}

#[test]
fn an_action_cut_off_once_is_run_again_and_the_run_goes_on() {
    let sb = Sandbox::new();
    sb.write("wf.ron", &hangs());
    sb.script(
        "deploy.sh",
        "echo $$ >> deploy.pids\ni=0; while [ ! -f release ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done",
    );
    sb.script("revert.sh", "true");
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let pids = sb.path().join("deploy.pids");
    let drive = sb.spawn_as("alice", "drive1", &["drive", &run]);
    wait_until("the action to start", Duration::from_secs(30), || {
        pids_in(&pids).len() == 1
    });
    drive.kill9();
    // Not needed on Linux (the action dies with waygate); harmless elsewhere.
    kill_all(&pids_in(&pids));
    sb.write("release", "");
    sb.wg_as("alice", &["drive", &run]).code(0);
    assert_eq!(pids_in(&pids).len(), 2, "run again once");
    assert_eq!(sb.status(&run)["state"], "done");
}

/// `kill -9` of a `drive` after its move line, while the new state's action runs: the next
/// `drive` says, before that action prints anything again, that it runs the action again and
/// why; an operator reading its log at 3 a.m. does not see a deployment start over unexplained.
#[test]
fn a_drive_after_a_kill_says_why_an_action_runs_again() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        r#"Workflow(
    name: "again", initial: "a",
    environments: { "dev": () },
    states: {
        "a": (),
        "b": (on_enter: [Command(run: ["sh", "-c", "echo deploying; [ -f once ] || { touch once; kill -9 $PPID; sleep 5; }"])]),
        "done": (terminal: Success),
    },
    transitions: [(from: "a", to: "b"), (from: "b", to: "done")],
)"#,
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let killed = sb.wg_as("alice", &["drive", &run]);
    assert_eq!(killed.code, -1, "killed by its action: {}", killed.stderr);
    killed.stderr_has("→ a -> b (advance)");
    let again = sb.wg_as("alice", &["drive", &run]);
    again.code(0);
    let said = again
        .stderr
        .find("action 1 of `b` runs again: the process running it died")
        .unwrap_or_else(|| panic!("says why: {}", again.stderr));
    let output = again.stderr.find("deploying").expect("the action's output");
    assert!(
        said < output,
        "said before the action prints: {}",
        again.stderr
    );
}

/// `kill -9` of a `drive` after it committed a move and before the new state's first action
/// started (here by the rollback's notification hook): the next `drive` says it is finishing
/// that entry before the action prints, rather than printing a rollback's output unannounced.
#[test]
fn a_drive_after_a_kill_says_it_finishes_an_entry_another_drive_began() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        r#"Workflow(
    name: "entry", initial: "a", rollback: "rollback",
    environments: { "dev": () },
    notify: [(on: [RollbackStarted], action: Command(run: ["sh", "-c", "[ -f once ] || { touch once; kill -9 $PPID; sleep 5; }"]))],
    states: {
        "a": (on_failure: "rollback"),
        "rollback": (on_enter: [Command(run: ["echo", "reverting"])]),
        "undone": (terminal: Failure),
    },
    transitions: [
        (from: "a", to: "undone", guards: [(name: "g", check: Command(run: ["false"]))]),
        (from: "rollback", to: "undone"),
    ],
)"#,
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let killed = sb.wg_as("alice", &["drive", &run]);
    assert_eq!(killed.code, -1, "killed by its hook: {}", killed.stderr);
    assert!(!killed.stderr.contains("reverting"), "{}", killed.stderr);
    let again = sb.wg_as("alice", &["drive", &run]);
    again.code(6);
    let said = again
        .stderr
        .find("`rollback` was entered but its actions had not finished: action 1 runs now")
        .unwrap_or_else(|| panic!("says so: {}", again.stderr));
    let output = again.stderr.find("reverting").expect("the action's output");
    assert!(
        said < output,
        "said before the action prints: {}",
        again.stderr
    );
}

/// The initial state is entered by the run's start, not by a move: its actions run at the
/// first `run` or `drive` as a matter of course, with no word of finishing someone's entry.
#[test]
fn a_first_drive_runs_the_initial_state_s_actions_without_a_recovery_line() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        r#"Workflow(
    name: "first", initial: "build", environments: { "dev": () },
    states: {
        "build": (on_enter: [Command(run: ["echo", "building"])]),
        "done": (terminal: Success),
    },
    transitions: [(from: "build", to: "done")],
)"#,
    );
    let ran = sb.wg_as("alice", &["run", "wf.ron", "--env", "dev"]);
    ran.code(0).stderr_has("building");
    assert!(!ran.stderr.contains('↻'), "run: {}", ran.stderr);
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let driven = sb.wg_as("alice", &["drive", &run]);
    driven.code(0).stderr_has("building");
    assert!(!driven.stderr.contains('↻'), "drive: {}", driven.stderr);
}

/// The store directory's journal segments.
fn segments(sb: &Sandbox) -> Vec<std::path::PathBuf> {
    let mut segs: Vec<_> = std::fs::read_dir(sb.store().join("journal"))
        .expect("journal dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    segs
}

#[test]
fn audit_verify_names_the_event_whose_bytes_were_changed() {
    let sb = Sandbox::new();
    sb.write("wf.ron", hangs().replace("./deploy.sh", "true").as_str());
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg_as("mallory", &["abort", &run, "--reason", "original reason"])
        .code(0);
    sb.verify();
    let history = sb.history(&run);
    let aborted = of_kind(&history, "Aborted")[0]["seq"]
        .as_u64()
        .expect("seq");
    // Rewrite history in place: same length, different words.
    let seg = segments(&sb).pop().expect("a segment");
    let mut bytes = std::fs::read(&seg).expect("read");
    let at = bytes
        .windows(b"original reason".len())
        .position(|w| w == b"original reason")
        .expect("the reason is in the journal");
    bytes[at..at + 8].copy_from_slice(b"innocent");
    std::fs::write(&seg, bytes).expect("write");
    let verify = sb.wg(&["--format", "json", "audit", "verify"]);
    verify.code(1);
    let report = verify.json();
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["first_bad"]["seq"].as_u64(),
        Some(aborted),
        "{report}"
    );
    let human = sb.wg(&["audit", "verify"]);
    human.code(1);
    assert!(
        human.stdout.contains(&format!("event {aborted}")),
        "{}",
        human.stdout
    );
}

#[test]
fn a_deleted_sled_state_is_rebuilt_from_the_journal_with_the_same_answers() {
    let sb = Sandbox::new();
    sb.write("wf.ron", hangs().replace("./deploy.sh", "true").as_str());
    let a = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["drive", &a]).code(0);
    let b = sb.start("bob", "wf.ron", "dev", &[]);
    let runs = sb.wg(&["--format", "json", "runs"]).code(0).json();
    let audit = sb.wg(&["--format", "json", "audit"]).code(0).json();
    std::fs::remove_dir_all(sb.store().join("state")).expect("rm state");
    assert_eq!(sb.wg(&["--format", "json", "runs"]).code(0).json(), runs);
    assert_eq!(sb.wg(&["--format", "json", "audit"]).code(0).json(), audit);
    // The environment is still held by the run that has not ended.
    let busy = sb.wg(&["start", "wf.ron", "--env", "dev"]);
    busy.code(5);
    assert!(busy.stderr.contains(&b));
    sb.verify();
}
