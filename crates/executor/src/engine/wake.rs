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
use std::sync::{Arc, Mutex};

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

    /// A wait for the next [`Wakes::wake`] of `id`: take it before looking at the run, so
    /// that a write between the look and the sleep is not missed. (The server's event stream
    /// waits on it too.) Dropped, it forgets `id` once nobody else waits on it, even when
    /// the waiter is cancelled mid-wait (a client that disconnects, a drive stopped).
    pub fn subscribe(self: &Arc<Self>, id: &RunId) -> Subscription {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let rx = runs
            .entry(id.clone())
            .or_insert_with(|| watch::channel(()).0)
            .subscribe();
        Subscription {
            wakes: self.clone(),
            id: id.clone(),
            rx: Some(rx),
        }
    }

    /// How many runs have someone waiting on them (tests: nothing is kept for nobody).
    pub fn waited_on(&self) -> usize {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn unsubscribe(&self, id: &RunId) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.get(id).is_some_and(|tx| tx.receiver_count() == 0) {
            runs.remove(id);
        }
    }
}

/// One wait on a run's wake-ups ([`Wakes::subscribe`]).
#[derive(Debug)]
pub struct Subscription {
    wakes: Arc<Wakes>,
    id: RunId,
    rx: Option<watch::Receiver<()>>,
}

impl Subscription {
    /// Returns at the next wake-up of the run since this subscription was taken (or since
    /// the last one it returned for).
    pub async fn changed(&mut self) {
        match &mut self.rx {
            // The sender lives while this receiver does: an error cannot happen, and would
            // only mean "look now" too.
            Some(rx) => {
                let _ = rx.changed().await;
            }
            None => std::future::pending().await,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.rx.take());
        self.wakes.unsubscribe(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a waiter cancelled mid-wait (an event-stream client that disconnects, a
    /// drive the server stops) dropped its receiver without forgetting the run, so the run
    /// stayed in the map for good: one entry per run followed and left.
    #[tokio::test(start_paused = true)]
    async fn a_wait_cancelled_midway_keeps_nothing() {
        let wakes = Arc::new(Wakes::default());
        let id = RunId::from("20261129-120000-aaaa");
        let kept = wakes.subscribe(&id);
        {
            let mut woken = wakes.subscribe(&id);
            let cancelled =
                tokio::time::timeout(std::time::Duration::from_secs(1), woken.changed()).await;
            assert!(cancelled.is_err(), "nobody woke it");
        }
        assert_eq!(wakes.waited_on(), 1, "the other waiter still waits");
        drop(kept);
        assert_eq!(wakes.waited_on(), 0);
        // A wake-up still reaches a waiter taken afterwards.
        let mut woken = wakes.subscribe(&id);
        wakes.wake(&id);
        woken.changed().await;
        drop(woken);
        assert_eq!(wakes.waited_on(), 0);
    }
}
