//! What goes to stderr when it is not a terminal (a CI log, a file): log lines without colour
//! codes, and a `drive` that keeps saying what it waits for.

use crate::helpers::{repo, Sandbox};

#[test]
fn log_lines_written_to_a_file_have_no_colour_codes() {
    let sb = Sandbox::new();
    // A store to read (only `start` and `run` create one).
    let quickstart = repo().join("workflows/examples/quickstart.ron");
    sb.start("alice", &quickstart.display().to_string(), "local", &[]);
    // Without NO_COLOR: stderr being a file alone must turn colour off.
    let out = sb
        .command("alice", &["-vv", "runs"])
        .env_remove("NO_COLOR")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEBUG"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}
