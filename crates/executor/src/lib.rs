//! waygate's executor: evaluates the guards of a validated workflow and runs its actions.
//!
//! The executor does IO (child processes, HTTP, files, clocks) and nothing else: it does not
//! decide where a run goes (that is `waygate_core`'s pure `decide`) and does not touch the
//! store. A caller builds a [`GuardContext`] from the stored run, calls
//! [`evaluate_transition`] or [`run_action`], and records what comes back. Every detail,
//! piece of evidence and description it returns is already redacted and bounded.
//!
//! # Layout
//!
//! - [`context`]: [`GuardContext`], the run's values, approvals and clock; redaction.
//! - [`clock`]: where "now" comes from (system, fixed, tokio-paused).
//! - [`process`]: running an argv in its own process group, bounded output, no survivors.
//! - [`guard`]: one check, tried once, one file per kind: [`guard::command`], [`guard::http`],
//!   [`guard::json`], [`guard::approval`], [`guard::wait`], [`guard::window`],
//!   [`guard::watch`].
//! - [`evaluate`]: retries, timing, redaction; all guards of a transition concurrently.
//! - [`action`]: `on_enter` actions (commands and webhooks).
//! - [`live`]: what commands print while they run, line by line to a caller's channel, redacted.
//! - [`lock`]: per-run locks held while a process runs a run's actions.
//! - [`shutdown`]: an operator's signal to stop, watched by the engine.
//! - [`script`]: guard outcomes and action results supplied instead of run; `scenario` (the
//!   `scenario` feature) runs a scripted scenario through the real engine on a paused clock.
//! - [`error`]: what can go wrong before a check can even be tried.
//!
//! Guard evaluations, action and commit durations and transitions are recorded through the
//! `metrics` facade (`waygate serve` exports them; without a recorder, as in the CLI, they
//! cost nothing).
//!
//! # Features
//!
//! - `scenario`: [`scenario`], which needs tokio's paused clock (`tokio/test-util`).
//! - `tls` (off by default): https URLs in `Http` checks and webhooks, through
//!   `reqwest/rustls-tls`. Without it the client speaks plain HTTP only and an https URL
//!   fails its check with a clear detail.
#![deny(missing_docs)]

pub mod action;
pub mod clock;
pub mod context;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod guard;
pub mod live;
pub mod lock;
pub mod process;
#[cfg(feature = "scenario")]
pub mod scenario;
pub mod script;
pub mod shutdown;
#[doc(hidden)]
pub mod test_support;

pub use action::{describe, run_action, ActionResult};
pub use clock::{Clock, FixedClock, ProcessClock, SystemClock, TokioClock};
pub use context::{ApprovalRecord, GuardContext, DEFAULT_KILL_GRACE, REDACTED};
pub use engine::{Engine, EngineError};
pub use error::ExecError;
pub use evaluate::{evaluate_guard, evaluate_transition};
pub use guard::Verdict;
pub use live::{LiveOutput, Origin, OutputLine, OutputSender, Stream};
pub use shutdown::{Shutdown, Signal, Trigger};
pub use waygate_core::approval::{may_approve, Refusal};
