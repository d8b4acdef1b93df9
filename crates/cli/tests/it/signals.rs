//! Ctrl-C (SIGINT) during `drive`: prompt exit 4, no process of the guard left behind, a
//! store that verifies, and a later `drive` that carries on.

use std::time::{Duration, Instant};

use crate::helpers::{alive, pids_in, wait_until, Sandbox};

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

#[test]
fn ctrl_c_while_waiting_stops_drive_at_once() {
    let sb = Sandbox::new();
    sb.write(
        "wf.ron",
        &GUARDED.replace(
            r#"Command(run: ["./guard.sh"], timeout: "5m")"#,
            r#"Wait(duration: "1h")"#,
        ),
    );
    let run = sb.start("alice", "wf.ron", "dev", &[]);
    let drive = sb.spawn_as("alice", "drive", &["drive", &run]);
    wait_until("the drive to wait", Duration::from_secs(30), || {
        sb.status(&run)["status"] == "waiting"
    });
    drive.signal(libc::SIGINT);
    drive.wait(Duration::from_secs(20)).code(4);
    sb.verify();
}
