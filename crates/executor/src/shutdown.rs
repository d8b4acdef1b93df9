//! An operator's request to stop (SIGINT, SIGTERM, SIGHUP), as the engine sees it.
//!
//! The binary turns signals into a [`Trigger`]; the engine watches the matching [`Shutdown`]
//! at every await that can take long (guard evaluations, actions, waits), never inside a store
//! commit. A stop during an action is recorded (`ActionInterrupted`) before the process exits,
//! so the next command knows it was a deliberate stop and not a crash: see `docs/cli.md`,
//! `drive`.

use std::fmt;

use tokio::sync::watch;

/// The signals that ask waygate to stop cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Signal {
    /// Ctrl-C.
    #[serde(rename = "SIGINT")]
    Interrupt,
    /// `kill`, a CI job cancelled, a container stopped.
    #[serde(rename = "SIGTERM")]
    Terminate,
    /// The terminal closed.
    #[serde(rename = "SIGHUP")]
    Hangup,
}

impl Signal {
    /// The signal's usual name, `SIGINT`, `SIGTERM` or `SIGHUP` (recorded in the journal).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Fires the matching [`Shutdown`]s.
#[derive(Debug)]
pub struct Trigger(watch::Sender<Option<Signal>>);

impl Trigger {
    /// Asks everything watching to stop; the first signal is the one reported.
    pub fn fire(&self, signal: Signal) {
        self.0.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(signal);
                true
            } else {
                false
            }
        });
    }
}

/// Whether, and by which signal, a stop was requested.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<Option<Signal>>);

impl Shutdown {
    /// A trigger and the shutdown it fires.
    pub fn new() -> (Trigger, Shutdown) {
        let (tx, rx) = watch::channel(None);
        (Trigger(tx), Shutdown(rx))
    }

    /// A shutdown that never comes.
    pub fn never() -> Shutdown {
        Shutdown::new().1
    }

    /// The signal, if a stop was requested already.
    pub fn requested(&self) -> Option<Signal> {
        *self.0.borrow()
    }

    /// Completes with the signal once a stop is requested; never, if its trigger is gone
    /// without firing.
    pub async fn wait(&self) -> Signal {
        let mut rx = self.0.clone();
        let fired = rx.wait_for(Option::is_some).await.map(|s| *s);
        match fired {
            Ok(signal) => signal.unwrap_or(Signal::Interrupt),
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_signal_wins_and_never_never_fires() {
        let (trigger, shutdown) = Shutdown::new();
        assert_eq!(shutdown.requested(), None);
        trigger.fire(Signal::Terminate);
        trigger.fire(Signal::Interrupt);
        assert_eq!(shutdown.wait().await, Signal::Terminate);
        assert_eq!(shutdown.requested(), Some(Signal::Terminate));
        let never = Shutdown::never();
        let waited = tokio::time::timeout(std::time::Duration::from_millis(10), never.wait()).await;
        assert!(waited.is_err());
    }
}
