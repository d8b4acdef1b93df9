//! The seam for running a workflow with nothing real behind it: guard outcomes and entry
//! action results supplied by a [`Script`] instead of a child process, a request or a clock.
//!
//! Everything else is the real engine: retries, the decision (`waygate_core::decide`), entry
//! actions' bookkeeping (`waygate_core::entry`), incidents, rollback, the store. `waygate
//! test` runs scenarios through it ([`crate::scenario`]). An engine without a script
//! ([`crate::Engine::with_script`]) never consults one.

use std::fmt;

use jiff::Timestamp;
use waygate_core::model::Guard;

use crate::guard::Verdict;

/// Supplies what evaluating a guard or running an action would have produced.
pub trait Script: Send + Sync + fmt::Debug {
    /// The verdict of one try of `guard`, on a transition out of `state`, at `now`.
    fn guard(&self, state: &str, guard: &Guard, now: Timestamp) -> Verdict;
    /// Whether entry action `index` of `state` succeeds, and a detail for the record.
    fn action(&self, state: &str, index: usize) -> (bool, String);
}
