//! Running the binary and checking what it printed and how it exited.

use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository root (for `workflows/` and `tests/`).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A `waygate` command with a pinned environment: no colour, a fixed actor, no stray store.
pub fn waygate(cwd: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("waygate").expect("binary built");
    cmd.current_dir(cwd)
        .env_remove("WAYGATE_STORE")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("WAYGATE_ACTOR", "tester");
    cmd
}

/// What a finished command gave.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Ran {
        Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `waygate ARGS` in `cwd`.
pub fn run(cwd: &Path, args: &[&str]) -> Ran {
    waygate(cwd)
        .args(args)
        .output()
        .expect("waygate runs")
        .into()
}

impl Ran {
    /// Asserts the exit code, showing everything printed when it differs.
    #[track_caller]
    pub fn code(&self, want: i32) -> &Self {
        assert_eq!(
            self.code, want,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}
