//! The witness: a small file beside sled's own (`state/applied`) that says how far sled has
//! applied the journal, readable without opening sled (opening it writes). `verify` and the
//! read index use it to tell a journal that lost its tail (`docs/storage.md`, "Verify").

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::journal;

/// The file beside sled's own that says how far sled has applied the journal (`verify`'s
/// witness of a journal that lost its tail).
pub(crate) const WITNESS: &str = "applied";

/// What the witness file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Witness {
    /// The last event sled has applied.
    recorded: u64,
    /// Its hash.
    last_hash: String,
}

/// The last event sled had applied, as the witness file beside it says; `None` when there is
/// no readable witness. Read without opening sled (`verify`, the read index).
pub(crate) fn witnessed(store: &Path) -> Option<u64> {
    fs::read(path_in(&store.join("state")))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Witness>(&bytes).ok())
        .map(|w| w.recorded)
}

/// The witness file in the state directory `state`.
pub(crate) fn path_in(state: &Path) -> PathBuf {
    state.join(WITNESS)
}

/// Writes at `path` that sled has applied the journal up to event `recorded`, whose hash is
/// `last_hash`. Best effort and unsynced, like sled's own flush: it is written after the
/// journal is synced, so it never claims more than the journal holds; a lost or torn one only
/// weakens the check (no witness), never fails it falsely.
pub(crate) fn write(path: &Path, recorded: u64, last_hash: &str) {
    let witness = Witness {
        recorded,
        last_hash: last_hash.to_owned(),
    };
    let written = serde_json::to_vec(&witness)
        .map_err(std::io::Error::other)
        .and_then(|bytes| {
            let mut file = journal::create_options(path)
                .write(true)
                .truncate(true)
                .open(path)?;
            std::io::Write::write_all(&mut file, &bytes)
        });
    if let Err(e) = written {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}
