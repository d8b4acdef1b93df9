//! `run_process` directly: output capture, spawn errors, and that nothing it started
//! survives a normal exit, a timeout or a cancellation.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use waygate_executor::process::{run_process, Exit, ProcessSpec};
use waygate_executor::ExecError;

use crate::support::{gone, pid_in};

fn spec(argv: &[&str], timeout: Duration) -> ProcessSpec {
    ProcessSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        cwd: PathBuf::from("."),
        timeout,
        grace: Duration::from_millis(300),
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
