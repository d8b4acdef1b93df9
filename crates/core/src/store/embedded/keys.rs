//! How the embedded store lays out its keys in sled: the one place that knows.
//!
//! sled holds only what is derived from the journal (`docs/storage.md`, "Directory layout"):
//! a store whose sled has another [`LAYOUT`] is rebuilt from the journal.

use crate::run::RunId;

/// The sled key layout this code writes: 4 = per-run event lists in chunks of [`CHUNK`]
/// (since 2), each run's pinned definition under its own key, written once, so a commit does
/// not rewrite it (since 3), and a run under a shared lock holding its (workflow, env) key as
/// well as the lock's (since 4: layout 3 has such a run under `a:lock:NAME` alone, and a
/// rebuild from the journal gives it both). (Layout 1 had no field: it reads as 1.)
pub(crate) const LAYOUT: u32 = 4;

/// Where sled's state stands in the journal (`Applied`, JSON).
pub(crate) const APPLIED: &[u8] = b"m:applied";

/// Every this many events, the seq→position and time→seq indexes get an entry.
pub(crate) const SPARSE: u64 = 256;

/// A run's event positions are kept in sled in chunks of this many (12 bytes each), so a
/// commit rewrites at most one chunk of 3 KiB however long the run's history is.
pub(crate) const CHUNK: usize = 256;

/// The prefix of every run record (`r:` ‖ run id: the run as JSON, without its definition).
pub(crate) const RUNS: &[u8] = b"r:";

/// The prefix of the clock-jump entries ([`step_back_key`]).
pub(crate) const STEP_BACKS: &[u8] = b"j:";

/// The prefix of the sparse time index ([`time_key`]).
pub(crate) const TIMES: &[u8] = b"t:";

/// `r:` ‖ run id: the run record.
pub(crate) fn run_key(id: &str) -> Vec<u8> {
    [RUNS, id.as_bytes()].concat()
}

/// `d:` ‖ run id: the run's pinned definition, written once when it is created.
pub(crate) fn definition_key(id: &str) -> Vec<u8> {
    [b"d:", id.as_bytes()].concat()
}

/// `e:` ‖ run id ‖ NUL: the prefix of the run's event-position chunks.
pub(crate) fn chunk_prefix(run: &RunId) -> Vec<u8> {
    [b"e:", run.as_str().as_bytes(), b"\0"].concat()
}

/// `e:` ‖ run id ‖ NUL ‖ chunk number (u32 BE, so chunks sort in order).
pub(crate) fn chunk_key(run: &RunId, index: u32) -> Vec<u8> {
    [chunk_prefix(run), index.to_be_bytes().to_vec()].concat()
}

/// `a:` ‖ a lock key (one of [`crate::run::Run::lock_keys`]) with its first `/` as NUL: the
/// unended run holding the lock. Its value is the run's id; or, where a journal written before
/// layout 4 has two unended runs of one (workflow, env), the ids of those holding it, oldest
/// first, one a line, the key held until the last has ended (`session.rs`, `active_runs`).
pub(crate) fn active_key(lock_key: &str) -> Vec<u8> {
    // The first `/` as a NUL: a (workflow, env) key is then the `a:` ‖ workflow ‖ NUL ‖ env
    // that stores written before locks could be shared hold (`lock_key` has no NUL in it, so
    // the mapping stays one to one).
    let (head, tail) = lock_key.split_once('/').unwrap_or((lock_key, ""));
    let slash = lock_key.contains('/');
    [
        b"a:".as_slice(),
        head.as_bytes(),
        if slash {
            b"\0".as_slice()
        } else {
            b"".as_slice()
        },
        tail.as_bytes(),
    ]
    .concat()
}

/// `s:` ‖ seq (u64 BE): where a sparse event is in the journal.
pub(crate) fn seq_key(seq: u64) -> [u8; 10] {
    let mut out = [0; 10];
    out[..2].copy_from_slice(b"s:");
    out[2..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// `j:` ‖ seq (u64 BE): an event stamped earlier than the event before it.
pub(crate) fn step_back_key(seq: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[..2].copy_from_slice(STEP_BACKS);
    k[2..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// `t:` ‖ nanoseconds since the epoch (sign bit flipped, so bytes sort as times) ‖ seq.
pub(crate) fn time_key(at: jiff::Timestamp, seq: u64) -> Vec<u8> {
    let nanos = (at.as_nanosecond() as u128) ^ (1 << 127);
    [TIMES, &nanos.to_be_bytes(), &seq.to_be_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_and_environment_lock_keeps_the_key_stores_have_always_held() {
        let key = crate::run::lock_key("web", "prod/eu", None);
        assert_eq!(active_key(&key), b"a:web\0prod/eu".to_vec());
        let shared = crate::run::lock_key("web", "prod", Some("chatbot-production"));
        assert_eq!(active_key(&shared), b"a:lock:chatbot-production".to_vec());
    }
}
