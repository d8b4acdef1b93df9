//! Wake-ups: how a waiting `drive` learns at once that another command of the same process
//! wrote to its run (an approval, an abort, a move through the server's API), instead of
//! finding out at its next look at the store.
//!
//! Engines that share one [`Wakes`] ([`Engine::with_wakes`]) tell each other: every write an
//! engine makes to a run ([`Wakes::wake`]) wakes the drives of that run waiting in any of
//! them. Writes by other processes are not seen here; a waiting drive still looks at the
//! store every [`super::DriveOptions::poll`] for those. The server's event stream of a run
//! waits on the same wake-ups, so a client following a run sees each event as it is written.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;
use waygate_core::run::RunId;

#[cfg(doc)]
use super::Engine;

/// The drives waiting in this process, by run.
#[derive(Debug, Default)]
pub struct Wakes {
    runs: Mutex<HashMap<RunId, watch::Sender<()>>>,
}

impl Wakes {
    /// Wakes every drive of `id` waiting now, or between its last look and its sleep.
    pub(super) fn wake(&self, id: &RunId) {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = runs.get(id) {
            tx.send_replace(());
        }
    }

    /// A receiver that changes at the next [`Wakes::wake`] of `id`: take it before looking
    /// at the run, so that a write between the look and the sleep is not missed. (The
    /// server's event stream waits on it too.)
    pub fn subscribe(&self, id: &RunId) -> watch::Receiver<()> {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.entry(id.clone())
            .or_insert_with(|| watch::channel(()).0)
            .subscribe()
    }

    /// Forgets `id` once nobody waits on it (call after dropping the receiver).
    pub fn unsubscribe(&self, id: &RunId) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.get(id).is_some_and(|tx| tx.receiver_count() == 0) {
            runs.remove(id);
        }
    }
}
