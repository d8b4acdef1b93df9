//! Builders the executor's unit tests, integration tests and benches share. Not part of the
//! API: hidden from the docs and free to change.

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
    }
}
