//! How an embedded store behaves: lock waits and segment size.

use std::time::Duration;

use super::journal;
use super::lock::{StopWaiting, WaitNotice};

/// How long an operation waits for another process to let go of the store.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// How an [`EmbeddedStore`](super::EmbeddedStore) behaves; `Options::default()` is what the CLI uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How long an operation waits for another process to let go of the store before failing
    /// with [`StoreError::Locked`](crate::store::StoreError::Locked). Default [`DEFAULT_LOCK_TIMEOUT`].
    pub lock_timeout: Duration,
    /// A journal segment is closed once the next commit would take it past this many bytes.
    /// Default [`DEFAULT_SEGMENT_LIMIT`]; tests use small values to exercise rolling.
    pub segment_limit: u64,
    /// Told who holds the lock while an operation waits for it (see [`WaitNotice`]); the CLI
    /// waits without limit and prints it. Default: nobody is told.
    pub on_wait: Option<WaitNotice>,
    /// Set to stop waiting for the lock (see [`StopWaiting`]). Default: waits are not stopped.
    pub stop_waiting: Option<StopWaiting>,
}

/// The default journal segment size limit: 64 MiB.
pub const DEFAULT_SEGMENT_LIMIT: u64 = journal::SEGMENT_LIMIT;

impl Default for Options {
    fn default() -> Options {
        Options {
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            segment_limit: DEFAULT_SEGMENT_LIMIT,
            on_wait: None,
            stop_waiting: None,
        }
    }
}
