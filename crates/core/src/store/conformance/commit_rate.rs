//! What the commit-rate examples of every backend commit (`crates/core/examples/commit_rate.rs`,
//! `crates/postgres/examples/pg_commit_rate.rs`, `docs/performance.md`): runs of the 5-state
//! cycle of `bench/cycle5.ron`, each commit moving one to its next state with one
//! `Transitioned` event, so the figures of two backends measure the same writes.

use crate::event::{Cause, EventKind, NewEvent};
use crate::run::{Run, RunId};
use crate::store::{RunChange, Store, StoreError};

/// A run `id` of `cycle5` in `env`, in its initial state `s1`, not yet created, and the event
/// that creates it.
pub fn cycle5_run(id: String, env: String) -> (Run, NewEvent) {
    let run = Run::new(
        RunId(id),
        "cycle5",
        env,
        "s1",
        "bench",
        "bench/cycle5.ron",
        include_str!("../../../../../bench/cycle5.ron"),
    );
    let started = NewEvent::new("bench", run.started());
    (run, started)
}

/// Advances run `id` (at version 1, in `s1`) through `n` commits, round the states of
/// `bench/cycle5.ron`, so the runs left behind are valid for `status` and the pages.
pub fn advance(store: &dyn Store, id: &RunId, n: u64) -> Result<(), StoreError> {
    let mut version = 1;
    for i in 0..n {
        let (from, to) = (format!("s{}", i % 5 + 1), format!("s{}", (i + 1) % 5 + 1));
        let event = NewEvent::new(
            "bench",
            EventKind::Transitioned {
                from,
                to: to.clone(),
                cause: Cause::Advance,
                reason: Some("guards passed: ok".into()),
            },
        );
        version = store
            .commit(id, version, RunChange::to_state(to), vec![event])?
            .0
            .version;
    }
    Ok(())
}

/// Advances every run of `ids` through `each` commits at once, one thread per run (the
/// store's group commit decides how their commits share transactions): how long that took.
pub fn advance_together(
    store: &dyn Store,
    ids: &[RunId],
    each: u64,
) -> Result<std::time::Duration, StoreError> {
    let start = std::time::Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = ids
            .iter()
            .map(|id| scope.spawn(move || advance(store, id, each)))
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })?;
    Ok(start.elapsed())
}
