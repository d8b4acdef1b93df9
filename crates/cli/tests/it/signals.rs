//! Signals during `drive`, `run` and `advance` (SIGINT from Ctrl-C, SIGTERM from a cancelled CI
//! job, SIGHUP from a closed terminal): prompt exit 4, no process of a guard or action left
//! behind, an action stopped recorded as interrupted (never as failed), a store that verifies,
//! and a later `drive` that carries on, running the stopped action again.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::helpers::{alive, of_kind, one_action_workflow, pids_in, wait_until, Sandbox, Spawned};

const GUARDED: &str = r#"Workflow(
    name: "guarded",
    initial: "deploy",
    environments: { "dev": () },
    states: {
        "deploy": (on_enter: [Command(run: ["true"])]),
        "done": (terminal: Success),
    },
    transitions: [
        (from: "deploy", to: "done", guards: [(name: "slow", check: Command(run: ["./guard.sh"], timeout: "5m"))]),
    ],
)
"#;

#[test]
fn ctrl_c_during_a_guard_stops_drive_and_leaves_no_process_behind() {
    let sb = Sandbox::new();
    sb.write("wf.ron", GUARDED);
    // The guard starts a grandchild and waits for it: both must die with the drive.
    sb.script(
        "guard.sh",
        "[ -f pass ] && exit 0\necho $$ >> guard.pids\nsleep 300 &\necho $! >> guard.pids\nwait",
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let drive = sb.spawn_as("alice", "drive", &["drive", &run]);
    let pids = sb.path().join("guard.pids");
    wait_until("the guard and its child", Duration::from_secs(30), || {
        pids_in(&pids).len() == 2
    });
    let running = pids_in(&pids);
    assert!(running.iter().all(|&p| alive(p)));

    let sent = Instant::now();
    drive.signal(libc::SIGINT);
    let ran = drive.wait(Duration::from_secs(20));
    ran.code(4);
    assert!(ran.stdout.contains("interrupted"), "{ran:?}");
    eprintln!("drive exited {:?} after SIGINT", sent.elapsed());
    wait_until(
        "the guard's processes to be gone",
        Duration::from_secs(10),
        || running.iter().all(|&p| !alive(p)),
    );
    sb.verify();
    let st = sb.status(&run);
    assert_eq!(st["state"], "deploy");

    sb.write("pass", "");
    sb.wg_as("alice", &["drive", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "done");
    sb.verify();
}

/// A started run whose only guard waits an hour.
fn waiting_run() -> (Sandbox, String) {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        &GUARDED.replace(
            r#"Command(run: ["./guard.sh"], timeout: "5m")"#,
            r#"Wait(duration: "1h")"#,
        ),
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    (sb, run)
}

#[test]
fn ctrl_c_while_waiting_stops_drive_at_once() {
    let (sb, run) = waiting_run();
    let drive = sb.spawn_as("alice", "drive", &["drive", &run]);
    wait_until("the drive to wait", Duration::from_secs(30), || {
        sb.status(&run)["status"] == "waiting"
    });
    drive.signal(libc::SIGINT);
    drive.wait(Duration::from_secs(20)).code(4);
    sb.verify();
}

/// A deploy action that starts a grandchild and waits for it, writing both pids; and a
/// revert that leaves a mark if it ever runs.
fn deploy() -> String {
    one_action_workflow("deploy", "prod", "5m")
}

fn deploy_sandbox() -> (Sandbox, String) {
    deploy_sandbox_with(
        "echo run >> deploy.log\n[ -f release ] && exit 0\necho $$ >> deploy.pids\nsleep 300 &\necho $! >> deploy.pids\nwait",
    )
}

/// A started run of [`deploy`] whose action runs `deploy_sh`; the revert leaves `revert.log`.
fn deploy_sandbox_with(deploy_sh: &str) -> (Sandbox, String) {
    let sb = Sandbox::new();
    sb.write("wf.ron", &deploy());
    sb.script("deploy.sh", deploy_sh);
    sb.script("revert.sh", "echo reverted >> revert.log");
    let run = sb.start("alice", "wf.ron", "prod", &[]);
    (sb, run)
}

/// Spawns `drive RUN` and waits until the deploy action wrote its one pid to `deploy.pids`
/// (returned with the drive).
fn drive_until_the_action_runs(sb: &Sandbox, run: &str) -> (Spawned, PathBuf) {
    let pids = sb.path().join("deploy.pids");
    let drive = sb.spawn_as("alice", "drive", &["drive", run]);
    wait_until("the action to start", Duration::from_secs(30), || {
        pids_in(&pids).len() == 1
    });
    (drive, pids)
}

/// Starts `args`, waits for the deploy action's two processes, sends `signal`, and checks
/// that it exits 4 promptly, that none of the action's processes survives, and what it said.
fn stop_during_the_action(
    sb: &Sandbox,
    run: &str,
    tag: &str,
    args: &[&str],
    signal: i32,
) -> String {
    let pids = sb.path().join("deploy.pids");
    let before = pids_in(&pids).len();
    let cmd = sb.spawn_as("alice", tag, args);
    wait_until("the action and its child", Duration::from_secs(30), || {
        pids_in(&pids).len() == before + 2
    });
    let running: Vec<i32> = pids_in(&pids)[before..].to_vec();
    assert!(running.iter().all(|&p| alive(p)));
    cmd.signal(signal);
    let ran = cmd.wait(Duration::from_secs(20));
    ran.code(4);
    wait_until(
        "the action's processes to be gone",
        Duration::from_secs(10),
        || running.iter().all(|&p| !alive(p)),
    );
    sb.verify();
    let st = sb.status(run);
    assert_eq!(st["state"], "deploy", "{st}");
    assert_eq!(st["actions"][0]["status"], "interrupted", "{st}");
    ran.stdout
}

#[test]
fn ctrl_c_twice_during_one_action_does_not_roll_production_back() {
    let (sb, run) = deploy_sandbox();
    for attempt in 1..=3 {
        let said = stop_during_the_action(
            &sb,
            &run,
            &format!("drive{attempt}"),
            &["drive", &run],
            libc::SIGINT,
        );
        // It says exactly what resuming does.
        assert!(said.contains("interrupted by SIGINT"), "{said}");
        assert!(
            said.contains("recorded as interrupted, not failed")
                && said.contains(&format!(
                    "`waygate drive {run}` runs it again from its start"
                )),
            "{said}"
        );
    }
    let history = sb.history(&run);
    let stops = of_kind(&history, "ActionInterrupted");
    assert_eq!(stops.len(), 3);
    assert!(stops
        .iter()
        .all(|e| e["signal"] == "SIGINT" && e["actor"] == "alice"));
    assert!(of_kind(&history, "ActionFinished").is_empty());

    // Resuming re-runs the action, and the run goes on to success: no rollback, ever.
    sb.write("release", "");
    let done = sb.wg_as("alice", &["drive", &run]);
    done.code(0);
    assert_eq!(sb.status(&run)["state"], "done");
    assert!(
        !sb.path().join("revert.log").exists(),
        "the revert never ran"
    );
    let runs = std::fs::read_to_string(sb.path().join("deploy.log")).unwrap_or_default();
    assert_eq!(
        runs.lines().count(),
        4,
        "three stopped runs and the one that finished"
    );
    sb.verify();
}

#[test]
fn sigterm_during_an_action_stops_its_processes_records_and_resumes() {
    let (sb, run) = deploy_sandbox();
    let said = stop_during_the_action(&sb, &run, "drive", &["drive", &run], libc::SIGTERM);
    assert!(said.contains("interrupted by SIGTERM"), "{said}");
    let history = sb.history(&run);
    assert_eq!(
        of_kind(&history, "ActionInterrupted")[0]["signal"],
        "SIGTERM"
    );
    sb.write("release", "");
    sb.wg_as("alice", &["drive", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "done");
    assert!(!sb.path().join("revert.log").exists());
    sb.verify();
}

#[test]
fn sighup_during_an_action_stops_its_processes_records_and_resumes() {
    let (sb, run) = deploy_sandbox();
    let said = stop_during_the_action(&sb, &run, "drive", &["drive", &run], libc::SIGHUP);
    assert!(said.contains("interrupted by SIGHUP"), "{said}");
    assert_eq!(
        of_kind(&sb.history(&run), "ActionInterrupted")[0]["signal"],
        "SIGHUP"
    );
    sb.write("release", "");
    sb.wg_as("alice", &["drive", &run]).code(0);
    assert_eq!(sb.status(&run)["state"], "done");
    sb.verify();
}

#[test]
fn sigterm_during_advance_and_run_is_treated_as_ctrl_c() {
    // `advance` runs the entry actions too.
    let (sb, run) = deploy_sandbox();
    let said = stop_during_the_action(&sb, &run, "advance", &["advance", &run], libc::SIGTERM);
    assert!(said.contains("interrupted by SIGTERM"), "{said}");

    // `run` (start, then drive) in a fresh environment.
    let sb = Sandbox::new();
    sb.write("wf.ron", &deploy());
    sb.script(
        "deploy.sh",
        "[ -f release ] && exit 0\necho $$ >> deploy.pids\nsleep 300 &\necho $! >> deploy.pids\nwait",
    );
    sb.script("revert.sh", "echo reverted >> revert.log");
    let pids = sb.path().join("deploy.pids");
    let cmd = sb.spawn_as("alice", "run", &["run", "wf.ron", "--env", "prod"]);
    wait_until("the action and its child", Duration::from_secs(30), || {
        pids_in(&pids).len() == 2
    });
    let running = pids_in(&pids);
    cmd.signal(libc::SIGTERM);
    let ran = cmd.wait(Duration::from_secs(20));
    ran.code(4);
    wait_until("the processes to be gone", Duration::from_secs(10), || {
        running.iter().all(|&p| !alive(p))
    });
    let run = ran.started_run();
    sb.write("release", "");
    sb.wg_as("alice", &["drive", &run]).code(0);
    assert!(!sb.path().join("revert.log").exists());
    sb.verify();
}

#[test]
fn sigterm_and_sighup_while_waiting_stop_drive_at_once() {
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        let (sb, run) = waiting_run();
        let drive = sb.spawn_as("alice", "drive", &["drive", &run]);
        wait_until("the drive to wait", Duration::from_secs(30), || {
            sb.status(&run)["status"] == "waiting"
        });
        drive.signal(signal);
        let ran = drive.wait(Duration::from_secs(20));
        ran.code(4);
        assert!(
            ran.stdout.contains(&format!(
                "`waygate drive {run}` evaluates the guards of `deploy` again"
            )),
            "{ran:?}"
        );
        sb.verify();
    }
}

#[test]
fn sigterm_during_a_rollback_action_is_recorded_and_drive_finishes_the_rollback() {
    let sb = Sandbox::new();
    sb.write("wf.ron", &deploy());
    sb.script("deploy.sh", "true");
    // The revert hangs until released, like a slow `git revert && deploy`.
    sb.script(
        "revert.sh",
        "echo run >> revert.log\n[ -f release ] && exit 0\necho $$ >> deploy.pids\nsleep 300 &\necho $! >> deploy.pids\nwait",
    );
    let run = sb.start("alice", "wf.ron", "prod", &[]);
    let said = stop_during_the_rollback(&sb, &run);
    assert!(said.contains("interrupted by SIGTERM"), "{said}");
    assert!(said.contains("action 1 of `rollback`"), "{said}");
    sb.write("release", "");
    sb.wg_as("alice", &["drive", &run]).code(6);
    assert_eq!(sb.status(&run)["state"], "rolled_back");
    let runs = std::fs::read_to_string(sb.path().join("revert.log")).unwrap_or_default();
    assert_eq!(runs.lines().count(), 2, "stopped once, then run to its end");
    sb.verify();
}

fn stop_during_the_rollback(sb: &Sandbox, run: &str) -> String {
    let pids = sb.path().join("deploy.pids");
    let cmd = sb.spawn_as(
        "bob",
        "rollback",
        &["rollback", run, "--reason", "error rate up"],
    );
    wait_until("the revert and its child", Duration::from_secs(30), || {
        pids_in(&pids).len() == 2
    });
    let running = pids_in(&pids);
    cmd.signal(libc::SIGTERM);
    let ran = cmd.wait(Duration::from_secs(20));
    ran.code(4);
    wait_until(
        "the revert's processes to be gone",
        Duration::from_secs(10),
        || running.iter().all(|&p| !alive(p)),
    );
    let history = sb.history(run);
    let stop = of_kind(&history, "ActionInterrupted");
    assert_eq!(stop.len(), 1);
    assert_eq!(stop[0]["state"], "rollback");
    assert_eq!(stop[0]["actor"], "bob");
    sb.verify();
    ran.stdout
}

#[test]
fn a_drive_started_with_sighup_ignored_outlives_its_terminal() {
    use std::os::unix::process::CommandExt;
    let (sb, run) = waiting_run();
    // As `nohup waygate drive RUN` starts it.
    let mut cmd = sb.command("alice", &["drive", &run]);
    let (out, err) = (
        sb.path().join("drive.stdout"),
        sb.path().join("drive.stderr"),
    );
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"));
    // SAFETY: signal is async-signal-safe, as a pre_exec hook requires.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let drive = crate::helpers::Spawned::from_child(cmd.spawn().expect("spawn"), out, err);
    wait_until("the drive to wait", Duration::from_secs(30), || {
        sb.status(&run)["status"] == "waiting"
    });
    drive.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(drive.pid()), "SIGHUP stays ignored");
    drive.signal(libc::SIGTERM);
    drive.wait(Duration::from_secs(20)).code(4);
}

#[test]
fn an_action_stopped_by_a_signal_gets_sigterm_first_so_it_can_clean_up() {
    // Like terraform: on SIGTERM it releases its lock, then exits.
    let (sb, run) = deploy_sandbox_with(
        "[ -f release ] && exit 0\ntrap 'echo released > lock.released; exit 143' TERM\necho $$ >> deploy.pids\nwhile true; do sleep 0.05; done",
    );
    let (drive, pids) = drive_until_the_action_runs(&sb, &run);
    drive.signal(libc::SIGTERM);
    drive.wait(Duration::from_secs(20)).code(4);
    assert!(
        sb.path().join("lock.released").exists(),
        "the action's own SIGTERM handler ran"
    );
    assert!(pids_in(&pids).iter().all(|&p| !alive(p)));
    assert_eq!(of_kind(&sb.history(&run), "ActionInterrupted").len(), 1);
    assert!(of_kind(&sb.history(&run), "ActionFinished").is_empty());
}

#[test]
fn an_action_that_ignores_sigterm_is_killed_after_the_grace() {
    let (sb, run) = deploy_sandbox_with(
        "trap '' TERM\necho $$ >> deploy.pids\nwhile true; do sleep 0.05; done",
    );
    let (drive, pids) = drive_until_the_action_runs(&sb, &run);
    let running = pids_in(&pids);
    drive.signal(libc::SIGINT);
    drive.wait(Duration::from_secs(20)).code(4);
    wait_until("the action to be killed", Duration::from_secs(10), || {
        running.iter().all(|&p| !alive(p))
    });
    assert_eq!(of_kind(&sb.history(&run), "ActionInterrupted").len(), 1);
    assert!(!sb.path().join("revert.log").exists());
}

#[test]
fn an_action_killed_by_the_same_sigterm_as_waygate_is_interrupted_not_failed() {
    // systemd stopping a service signals every process of its cgroup at once: the action
    // dies of the SIGTERM that also tells waygate to stop. That is the operator's stop, not a
    // failure of the action. Here the action plays both parts.
    for _ in 0..3 {
        // The action dies first; waygate's SIGTERM comes the moment waygate has reaped it,
        // from outside the action's process group (as systemd's may).
        let (sb, run) = deploy_sandbox_with(
            "[ -f release ] && exit 0\nsetsid sh -c \"touch detached; while kill -0 $$ 2>/dev/null; do sleep 0.005; done; kill -TERM $PPID\" >/dev/null 2>&1 &\nwhile [ ! -f detached ]; do sleep 0.01; done\nexit 143",
        );
        let ran = sb.wg_as("alice", &["drive", &run]);
        ran.code(4);
        let history = sb.history(&run);
        assert_eq!(of_kind(&history, "ActionInterrupted").len(), 1, "{ran:?}");
        assert!(of_kind(&history, "ActionFinished").is_empty(), "{ran:?}");
        assert!(!sb.path().join("revert.log").exists());
        sb.write("release", "");
        sb.wg_as("alice", &["drive", &run]).code(0);
    }
}

#[test]
fn sigterm_during_check_leaves_no_guard_process_behind() {
    let sb = Sandbox::new();
    sb.write("wf.ron", GUARDED);
    sb.script(
        "guard.sh",
        "echo $$ >> guard.pids\nsleep 300 &\necho $! >> guard.pids\nwait",
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let pids = sb.path().join("guard.pids");
    let check = sb.spawn_as("alice", "check", &["check", &run]);
    wait_until("the guard and its child", Duration::from_secs(30), || {
        pids_in(&pids).len() == 2
    });
    let running = pids_in(&pids);
    check.signal(libc::SIGTERM);
    let ran = check.wait(Duration::from_secs(20));
    ran.code(4);
    assert!(ran.stdout.contains("interrupted by SIGTERM"), "{ran:?}");
    wait_until(
        "the guard's processes to be gone",
        Duration::from_secs(10),
        || running.iter().all(|&p| !alive(p)),
    );
    assert!(of_kind(&sb.history(&run), "GuardsEvaluated").is_empty());
}
