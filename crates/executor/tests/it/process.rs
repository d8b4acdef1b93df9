//! `run_process` directly: output capture, spawn errors, and that nothing it started
//! survives a normal exit, a timeout or a cancellation.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use waygate_executor::process::{run_process, Exit, ProcessOutput, ProcessSpec};
use waygate_executor::ExecError;

use crate::support::{gone, pid_in};

fn spec(argv: &[&str], timeout: Duration) -> ProcessSpec {
    ProcessSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        cwd: PathBuf::from("."),
        timeout,
        grace: Duration::from_millis(300),
        stop: None,
    }
}

#[tokio::test]
async fn exit_code_and_both_streams() {
    let out = run_process(&spec(
        &["sh", "-c", "echo hi; echo err >&2; exit 3"],
        Duration::from_secs(5),
    ))
    .await
    .expect("runs");
    assert_eq!(out.exit, Exit::Code(3));
    assert_eq!(out.stdout.tail, b"hi\n");
    assert_eq!(out.stderr.tail, b"err\n");
}

#[tokio::test]
async fn missing_program_is_a_spawn_error() {
    let err = run_process(&spec(
        &["/nonexistent/waygate-nope"],
        Duration::from_secs(5),
    ))
    .await
    .expect_err("cannot spawn");
    assert!(matches!(err, ExecError::Spawn { .. }), "{err}");
    let err = run_process(&spec(&[], Duration::from_secs(5)))
        .await
        .expect_err("empty");
    assert!(matches!(err, ExecError::EmptyCommand), "{err}");
}

#[tokio::test]
async fn timeout_reports_and_kills_the_group() {
    let out = run_process(&spec(
        &["sh", "-c", "sleep 100 & echo $!; sleep 100"],
        Duration::from_millis(300),
    ))
    .await
    .expect("runs");
    assert!(matches!(out.exit, Exit::TimedOut { .. }), "{:?}", out.exit);
    let pid = pid_in(&String::from_utf8_lossy(&out.stdout.tail));
    assert!(gone(pid).await, "grandchild {pid} survived");
}

#[tokio::test]
async fn leader_exit_does_not_wait_for_background_children() {
    // The background sleep keeps stdout open; the run must neither wait 100 s for EOF nor
    // leave the sleep behind.
    let started = Instant::now();
    let out = run_process(&spec(
        &["sh", "-c", "sleep 100 & echo $!"],
        Duration::from_secs(30),
    ))
    .await
    .expect("runs");
    assert_eq!(out.exit, Exit::Code(0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let pid = pid_in(&String::from_utf8_lossy(&out.stdout.tail));
    assert!(gone(pid).await, "background child {pid} survived");
}

#[tokio::test]
async fn cancellation_kills_the_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pid");
    let script = format!("sleep 100 & echo $! > {}; sleep 100", pidfile.display());
    let s = spec(&["sh", "-c", &script], Duration::from_secs(100));
    // Dropping the future half-way is what Ctrl-C in `drive` amounts to.
    let cancelled = tokio::time::timeout(Duration::from_millis(500), run_process(&s)).await;
    assert!(cancelled.is_err(), "the command cannot have finished");
    let pid = pid_in(&std::fs::read_to_string(&pidfile).expect("the script wrote its pid"));
    assert!(gone(pid).await, "grandchild {pid} survived cancellation");
}

/// Runs `sh -c TRAP; touch ready; loop` with an operator stop fired (as `signal`) once the
/// trap is set.
async fn stopped_once_trapped(trap: &str, signal: waygate_executor::Signal) -> ProcessOutput {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    let (trigger, stop) = waygate_executor::Shutdown::new();
    let script = format!(
        "{trap}; touch {}; while true; do sleep 0.05; done",
        ready.display()
    );
    let mut spec = spec(&["sh", "-c", &script], Duration::from_secs(60));
    spec.stop = Some(stop);
    let fire = tokio::spawn(async move {
        while !ready.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        trigger.fire(signal);
    });
    let out = run_process(&spec).await.expect("runs");
    fire.await.expect("fires");
    out
}

#[tokio::test]
async fn an_operator_stop_terminates_the_group_gracefully_then_kills() {
    use waygate_executor::Signal;
    // A program that cleans up on SIGTERM gets the chance.
    let out = stopped_once_trapped("trap 'echo cleaned; exit 143' TERM", Signal::Terminate).await;
    assert_eq!(
        out.exit,
        Exit::Stopped {
            signal: Signal::Terminate,
            killed: false
        }
    );
    assert_eq!(out.stdout.tail, b"cleaned\n");
    // One that ignores SIGTERM is killed after the grace.
    let started = Instant::now();
    let out = stopped_once_trapped("trap '' TERM", Signal::Interrupt).await;
    assert_eq!(
        out.exit,
        Exit::Stopped {
            signal: Signal::Interrupt,
            killed: true
        }
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
