//! The executor's typed errors.
//!
//! Most things that go wrong while evaluating a guard are simply its outcome (a command exits
//! 1, a server answers 503). These are the failures that happen *before* a check can even be
//! tried: a value missing for a `${var}`, a program that cannot be started, a request that
//! cannot be built. Guards turn them into a `Fail` with the error's message as detail; callers
//! of the lower-level functions ([`crate::process::run_process`]) see them as values.

use std::io;

use waygate_core::template::MissingVar;

/// Why a check or action could not be attempted.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A `${var}` has no value in this run.
    #[error(transparent)]
    MissingVar(#[from] MissingVar),
    /// `run: []`.
    #[error("the command is empty")]
    EmptyCommand,
    /// The program does not exist or may not be executed, or its directory is missing.
    #[error("cannot run {program} in {}: {source}", cwd.display())]
    Spawn {
        /// The program as given (`argv[0]`).
        program: String,
        /// The directory it was to run in (a relative program is looked for there).
        cwd: std::path::PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Waiting for the child failed.
    #[error("waiting for {program}: {source}")]
    Wait {
        /// The program as given.
        program: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// An HTTP method name reqwest does not accept.
    #[error("invalid HTTP method {0:?}")]
    Method(String),
    /// A header name or value that is not valid HTTP.
    #[error("invalid HTTP header {0:?}")]
    Header(String),
    /// The HTTP client could not be built (e.g. an https URL without the `tls` feature).
    #[error("HTTP client: {0}")]
    Client(String),
}
