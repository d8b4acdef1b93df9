//! Exit codes and the one place outcomes and errors are mapped to them (`docs/cli.md`,
//! "Exit codes").

use std::process::ExitCode;
use waygate_core::store::EmbeddedError;

use waygate_core::decide::Decision;
use waygate_core::ending::How;
use waygate_core::run::RunStatus;
use waygate_core::store::StoreError;
use waygate_executor::engine::{DriveEnd, StepOutcome};

/// The exit codes of `docs/cli.md` ("Exit codes"), the same for every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done.
    Ok = 0,
    /// Bad input or a store problem.
    Error = 1,
    /// Bad command-line usage (clap's own code).
    Usage = 2,
    /// Guards failed and nothing changed; a failure moved the run onto its failure path; or
    /// the run failed in place.
    GuardsFailed = 3,
    /// Waiting on an approval, timer, window or watch; or stopped by a signal, resumable.
    Waiting = 4,
    /// The run moved under us, the environment already has an active run, a rollback is
    /// already under way, or another command aborted the run.
    Conflict = 5,
    /// The run ended in a failure terminal state.
    FailedTerminal = 6,
    /// Server mode: no token, an unknown or revoked one (HTTP 401), or a role that does not
    /// allow the action (HTTP 403). Nothing changed.
    NotAllowed = 7,
}

impl Exit {
    /// How a run that has ended exits every command that reports it: 0 succeeded, 6 failed in
    /// a failure terminal state, 3 failed in place, 5 aborted (by another command).
    pub fn of_end(status: RunStatus, how: &How) -> Exit {
        match status {
            RunStatus::Succeeded => Exit::Ok,
            RunStatus::Aborted => Exit::Conflict,
            RunStatus::Failed if *how == How::InPlace => Exit::GuardsFailed,
            RunStatus::Failed => Exit::FailedTerminal,
            // Not an end; a caller never asks, but "done" would be a lie.
            RunStatus::Active | RunStatus::Waiting => Exit::Waiting,
        }
    }

    /// How a command stopped by an operator's signal exits (SIGINT, SIGTERM, SIGHUP): 4, as
    /// for waiting, since the run is left resumable.
    pub fn of_interrupted() -> Exit {
        Exit::Waiting
    }

    /// How `drive` and `run` exit. An operator's signal leaves the run resumable: 4, as for
    /// waiting.
    pub fn of_drive(end: &DriveEnd) -> Exit {
        match end {
            DriveEnd::Ended { status, how, .. } => Exit::of_end(*status, how),
            DriveEnd::Waiting => Exit::Waiting,
            DriveEnd::Interrupted { .. } => Exit::of_interrupted(),
            DriveEnd::Blocked { .. } => Exit::GuardsFailed,
        }
    }

    /// How one step (`advance`, `rollback`) exits. A move caused by a failure (a broken
    /// watch, a passed deadline, failing guards, a failed action) is never success: 3.
    pub fn of_step(outcome: &StepOutcome) -> Exit {
        match outcome {
            StepOutcome::Moved { cause, .. } if cause.is_failure() => Exit::GuardsFailed,
            StepOutcome::Moved { .. } => Exit::Ok,
            StepOutcome::Ended { status, how, .. } => Exit::of_end(*status, how),
            StepOutcome::Waiting { .. } => Exit::Waiting,
            StepOutcome::Blocked { .. } => Exit::GuardsFailed,
        }
    }
}

impl Exit {
    /// How `check` (a dry run) exits: what [`decide`](waygate_core::decide::decide) says
    /// `advance` would do with its evaluations (0 a transition is taken, 4 waiting, 3 blocked
    /// or an incident). A run that has ended is refused before (`EngineError::Ended`, exit 1).
    pub fn of_check(decision: &Decision) -> Exit {
        match decision {
            Decision::Ended => Exit::Error,
            Decision::Take { .. } => Exit::Ok,
            Decision::Wait => Exit::Waiting,
            Decision::Blocked { .. } | Decision::Incident { .. } => Exit::GuardsFailed,
        }
    }
}

impl Exit {
    /// How a command exits when the server refused it with `code`: as the same refusal
    /// exits on a local store, and 7 when the token is missing, unknown or not allowed.
    pub fn of_remote(code: waygate_server::error::Code) -> Exit {
        use waygate_server::error::Code;
        match code {
            Code::NotAuthenticated | Code::NotAllowed => Exit::NotAllowed,
            Code::Usage => Exit::Usage,
            Code::Conflict | Code::Busy => Exit::Conflict,
            Code::Interrupted => Exit::of_interrupted(),
            Code::Error
            | Code::NotFound
            | Code::TooLarge
            | Code::Store
            | Code::WrongMethod
            | Code::Timeout => Exit::Error,
        }
    }

    /// How `audit report` exits once its file is written: 0 when the chain verified intact and
    /// every run in scope could be read, else 1 (the report says what is wrong).
    pub fn of_report(intact: bool, every_run_read: bool) -> Exit {
        if intact && every_run_read {
            Exit::Ok
        } else {
            Exit::Error
        }
    }

    /// How `test` exits: 0 when every scenario passed, 1 when `failed` did not (or could
    /// not run).
    pub fn of_tests(failed: usize) -> Exit {
        if failed == 0 {
            Exit::Ok
        } else {
            Exit::Error
        }
    }
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
    /// A workflow file could not be read, or is too large to be one.
    #[error("{0}")]
    File(Box<waygate_core::diagnostic::Diagnostic>),
    /// Output could not be written (a closed pipe ends quietly).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// `audit report --out -`: stdout closed before the whole report reached it. Unlike a
    /// list cut short by `| head`, a report read in part is not the report: said, and exit 1.
    #[error(
        "the report was cut off: stdout closed before its end ({0}); what was read is not a \
         complete report, write it again (or `--out FILE.html`)"
    )]
    ReportCutOff(std::io::Error),
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
    /// A tokens file could not be changed (`token new`, `token revoke`).
    #[error(transparent)]
    Tokens(#[from] waygate_server::tokens::TokensError),
    /// `serve` could not start, or stopped with an error.
    #[error(transparent)]
    Serve(#[from] waygate_server::ServeError),
    /// Server mode: the server refused or failed, and said why.
    #[error("{}", .0.message)]
    Remote(waygate_server::error::ApiError),
    /// Server mode: the server could not be reached, or answered something unreadable.
    #[error("{0}")]
    Server(String),
    /// A local command on a store that a `waygate serve` holds.
    #[error(
        "the store at {dir} is held by `waygate serve` at {server}; use it: \
         `waygate --server {server} ...` with a token (WAYGATE_TOKEN or --token-file)"
    )]
    HeldByServer {
        /// The store directory.
        dir: String,
        /// The server's URL.
        server: String,
    },
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
            StoreError::Embedded(EmbeddedError::Corrupt { .. }) => Some(
                "`waygate audit verify` names the first damaged event; commands that do not \
                 need it keep working (`abort` does); `waygate store salvage --to NEWDIR` \
                 copies everything readable into a new store and records what was lost",
            ),
            StoreError::Embedded(EmbeddedError::JournalTruncated { .. }) => Some(
                "run `waygate audit verify` first: if it reports only events missing at the \
                 end, deleting `state` accepts that loss; if it reports damage before the end, \
                 `waygate store salvage --to NEWDIR` copies everything readable into a new \
                 store and records what was lost",
            ),
            _ => None,
        }
    }

    /// The signal that ended this command's wait for a store held by another process, when
    /// that is what this error is.
    pub fn stopped_waiting(&self) -> Option<waygate_executor::Signal> {
        let locked = matches!(
            self,
            CliError::Store(StoreError::Locked { .. })
                | CliError::Engine(waygate_executor::EngineError::Store(
                    StoreError::Locked { .. }
                ))
        );
        if locked {
            crate::signals::received()
        } else {
            None
        }
    }

    /// The exit code for this error.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Invalid(_) | CliError::File(_) | CliError::BadInput(_) => Exit::Error,
            CliError::Output(_) | CliError::ReportCutOff(_) => Exit::Error,
            CliError::Usage(_) => Exit::Usage,
            // A signal ended a wait for a store a neighbour held: the operator stopped the
            // command and nothing changed, so it exits as any other interruption.
            _ if self.stopped_waiting().is_some() => Exit::of_interrupted(),
            CliError::Store(e) if e.is_conflict() => Exit::Conflict,
            CliError::Store(_) => Exit::Error,
            CliError::Engine(e) if e.is_conflict() => Exit::Conflict,
            CliError::Engine(e) if e.is_interrupted() => Exit::of_interrupted(),
            // A flag's value the command does not take, as clap would report it.
            CliError::Engine(waygate_executor::EngineError::BlankReason(_)) => Exit::Usage,
            CliError::Engine(_) => Exit::Error,
            // An actor name outside the set is refused as `--as` is.
            CliError::Tokens(waygate_server::tokens::TokensError::BadActor { .. }) => Exit::Usage,
            CliError::Tokens(_) => Exit::Error,
            CliError::Serve(_) => Exit::Error,
            CliError::Remote(e) => Exit::of_remote(e.code),
            CliError::Server(_) => Exit::Error,
            // The store is held, by a server: as for any held lock.
            CliError::HeldByServer { .. } => Exit::Conflict,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use waygate_core::decide::{decide, Evaluation, Incident};
    use waygate_core::validate::validate;

    use super::*;

    #[test]
    fn check_exits_as_the_decision_says() {
        let v = validate(
            "t.ron",
            r#"Workflow(name: "t", initial: "a", states: {"a": (), "done": (terminal: Success)},
                transitions: [(from: "a", to: "done")])"#,
        );
        let w = v.workflow.unwrap_or_else(|| panic!("{:?}", v.diagnostics));
        let a = w.state_id("a").expect("a");
        let evals = [Evaluation {
            transition: w.outgoing(a)[0].id,
            results: &[],
        }];
        let take = decide(&w, a, &[], Duration::ZERO, &evals);
        assert!(matches!(take, Decision::Take { .. }));
        let incident = Decision::Incident {
            to: None,
            incident: Incident::WatchBroke("w".into()),
        };
        // (decision, exit)
        let cases = [
            (take, Exit::Ok),
            (Decision::Wait, Exit::Waiting),
            (Decision::Blocked { on_failure: None }, Exit::GuardsFailed),
            (incident, Exit::GuardsFailed),
            (Decision::Ended, Exit::Error),
        ];
        for (decision, exit) in cases {
            assert_eq!(Exit::of_check(&decision), exit, "{decision:?}");
        }
    }
}
