//! Exit codes and the one place errors are mapped to them (contract, section 3).

use std::process::ExitCode;

use waygate_core::store::StoreError;

/// The contract's exit codes, the same for every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done.
    Ok = 0,
    /// Bad input or a store problem.
    Error = 1,
    /// Bad command-line usage (clap's own code).
    Usage = 2,
    /// Guards failed; nothing changed.
    GuardsFailed = 3,
    /// Waiting on an approval, timer, window or watch.
    Waiting = 4,
    /// The run moved under us, the environment already has an active run, or a rollback is
    /// already under way.
    Conflict = 5,
    /// The run ended in a failure terminal state.
    FailedTerminal = 6,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The workflow had errors; they have been printed already.
    #[error("{0} has errors")]
    Invalid(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Output could not be written (a closed pipe ends quietly).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// Input that parses but makes no sense (`--var` without `=`, unknown environment...).
    #[error("{0}")]
    BadInput(String),
    /// Command-line input outside what the command accepts, found after clap parsed the line
    /// (an actor name outside its character set, `audit --kind Bogus`, a format the command
    /// does not print): exit 2 like clap's own.
    #[error("{0}")]
    Usage(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] waygate_core::store::StoreError),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] waygate_executor::EngineError),
}

impl CliError {
    /// What to do about the error, when the message alone does not say: the store's own
    /// errors name no command, the CLI knows which of its commands help.
    pub fn hint(&self) -> Option<&'static str> {
        let store = match self {
            CliError::Store(e) => e,
            CliError::Engine(waygate_executor::EngineError::Store(e)) => e,
            _ => return None,
        };
        match store {
            StoreError::Corrupt { .. } => Some(
                "`waygate audit verify` names the first damaged event; commands that do not \
                 need it keep working (`abort` does); `waygate store salvage --to NEWDIR` \
                 copies everything readable into a new store and records what was lost",
            ),
            StoreError::JournalTruncated { .. } => Some(
                "run `waygate audit verify` first: if it reports only events missing at the \
                 end, deleting `state` accepts that loss; if it reports damage before the end, \
                 `waygate store salvage --to NEWDIR` copies everything readable into a new \
                 store and records what was lost",
            ),
            _ => None,
        }
    }

    /// The exit code for this error.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Invalid(_) | CliError::Read { .. } | CliError::BadInput(_) => Exit::Error,
            CliError::Output(_) => Exit::Error,
            CliError::Usage(_) => Exit::Usage,
            CliError::Store(e) if e.is_conflict() => Exit::Conflict,
            CliError::Store(_) => Exit::Error,
            CliError::Engine(e) if e.is_conflict() => Exit::Conflict,
            // A flag's value the command does not take, as clap would report it.
            CliError::Engine(waygate_executor::EngineError::BlankReason(_)) => Exit::Usage,
            CliError::Engine(_) => Exit::Error,
        }
    }
}
