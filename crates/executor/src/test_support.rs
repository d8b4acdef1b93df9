//! Builders and probes that the executor's unit tests, integration tests and benches share,
//! and the CLI's integration tests too. Not part of the API: hidden from the docs and free to
//! change.

use std::time::Duration;

use waygate_core::model::CommandCheck;
use waygate_core::template::Template;

/// A `Command` check or action running `argv` (each argument a template) with `timeout`, no
/// extra environment and the caller's working directory.
///
/// # Panics
///
/// When an argument is not a valid template: the arguments are the test's own literals.
pub fn command(argv: &[&str], timeout: Duration) -> CommandCheck {
    CommandCheck {
        run: argv
            .iter()
            .map(|a| Template::parse(a).expect("valid template"))
            .collect(),
        timeout,
        env: Default::default(),
        cwd: None,
        outputs: Vec::new(),
        secret_outputs: Vec::new(),
    }
}

/// Whether process `pid` exists and is not a zombie (a process that ended and awaits its
/// reaper does not count), from `/proc`.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}
