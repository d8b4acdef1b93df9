//! The models of pinned definitions this process has read, so that loading a run does not
//! parse and validate its definition again: the executor loads a run several times per step,
//! and a definition, once pinned, never changes (docs/performance.md, "Pinned definitions").
//!
//! An entry is found by the run's `definition_hash` (SHA-256 of the text, [`crate::run::Run`])
//! and served only when the text is the very text it was read from, so a record whose hash
//! does not match its text (damaged, or written by a test) gets its own reading, never another
//! definition's model. Only definitions that make a model are kept; the least recently used
//! entry goes when the cache is full.

use std::sync::{Arc, Mutex};

use crate::diagnostic::Diagnostic;
use crate::model::Workflow;

/// How many definitions a process keeps: a process acts on runs of a few workflows (a server,
/// a `waygate test` of many scenarios, a report over many runs), each pinned at a few versions.
const CAPACITY: usize = 32;

/// How many bytes of definition text a process keeps at most (the models are of a like size):
/// four of the largest workflows `start` accepts ([`super::MAX_WORKFLOW_BYTES`]), hundreds of
/// usual ones. The most recent definition is always kept, whatever its size.
const MAX_BYTES: usize = 4 * super::MAX_WORKFLOW_BYTES;

/// The cache every reading of a pinned definition goes through ([`super::pinned_workflow`]).
pub(super) static PINNED: PinnedCache = PinnedCache::new(CAPACITY, MAX_BYTES);

/// Models of pinned definitions, by definition hash: at most `capacity` of them, and while
/// more than one, at most `max_bytes` of text.
pub(super) struct PinnedCache {
    capacity: usize,
    max_bytes: usize,
    /// Least recently used first.
    entries: Mutex<Vec<Entry>>,
}

struct Entry {
    hash: String,
    text: String,
    workflow: Arc<Workflow>,
}

impl PinnedCache {
    pub(super) const fn new(capacity: usize, max_bytes: usize) -> PinnedCache {
        PinnedCache {
            capacity,
            max_bytes,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The model of `text` (whose SHA-256 the run records as `hash`), read with the pinned
    /// rules unless this cache has it; or every diagnostic of a reading that makes none.
    pub(super) fn read(
        &self,
        hash: &str,
        file: &str,
        text: &str,
    ) -> Result<Arc<Workflow>, Vec<Diagnostic>> {
        if let Some(found) = self.find(hash, text) {
            return Ok(found);
        }
        // Read outside the lock: other loads go on meanwhile (two may read one definition at
        // once; the second to finish replaces the first's entry with an equal model).
        let validated = super::pinned(file, text);
        let Some(workflow) = validated.workflow else {
            return Err(validated.diagnostics);
        };
        let workflow = Arc::new(workflow);
        self.keep(hash, text, workflow.clone());
        Ok(workflow)
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // A panic while the lock was held leaves at worst an entry missing or a list out of
        // order, never a wrong entry: each is pushed whole.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn find(&self, hash: &str, text: &str) -> Option<Arc<Workflow>> {
        let mut entries = self.entries();
        let at = entries
            .iter()
            .position(|e| e.hash == hash && e.text == text)?;
        let entry = entries.remove(at);
        let workflow = entry.workflow.clone();
        entries.push(entry);
        Some(workflow)
    }

    fn keep(&self, hash: &str, text: &str, workflow: Arc<Workflow>) {
        let mut entries = self.entries();
        // One entry per hash: a text recorded under another's hash replaces it.
        entries.retain(|e| e.hash != hash);
        if entries.len() >= self.capacity {
            let excess = entries.len() + 1 - self.capacity;
            entries.drain(..excess);
        }
        entries.push(Entry {
            hash: hash.to_owned(),
            text: text.to_owned(),
            workflow,
        });
        let mut bytes: usize = entries.iter().map(|e| e.text.len()).sum();
        while bytes > self.max_bytes && entries.len() > 1 {
            bytes -= entries.remove(0).text.len();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::sha256_hex;

    fn definition(name: &str, last: &str) -> String {
        format!(
            r#"Workflow(
    name: "{name}",
    initial: "build",
    states: {{
        "build": (),
        "{last}": (terminal: Success),
    }},
    transitions: [
        (from: "build", to: "{last}"),
    ],
)"#
        )
    }

    fn read(cache: &PinnedCache, text: &str) -> Arc<Workflow> {
        cache
            .read(&sha256_hex(text.as_bytes()), "w.ron", text)
            .expect("the definition makes a model")
    }

    #[test]
    fn a_definition_read_again_is_served_from_the_cache() {
        let cache = PinnedCache::new(4, usize::MAX);
        let text = definition("deploy", "done");
        let first = read(&cache, &text);
        let second = read(&cache, &text);
        assert!(
            Arc::ptr_eq(&first, &second),
            "the second load was read again"
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_definition_not_yet_read_is_read_and_kept() {
        let cache = PinnedCache::new(4, usize::MAX);
        let a = read(&cache, &definition("a", "done"));
        let b = read(&cache, &definition("b", "done"));
        assert_eq!((a.name.as_str(), b.name.as_str()), ("a", "b"));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn two_runs_pinning_two_versions_of_one_workflow_each_get_their_own() {
        let cache = PinnedCache::new(4, usize::MAX);
        let v1 = definition("deploy", "done");
        let v2 = definition("deploy", "released");
        for _ in 0..2 {
            let one = read(&cache, &v1);
            let two = read(&cache, &v2);
            assert!(one.state_id("done").is_some() && one.state_id("released").is_none());
            assert!(two.state_id("released").is_some() && two.state_id("done").is_none());
        }
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_hash_that_does_not_match_the_text_never_serves_another_definition() {
        let cache = PinnedCache::new(4, usize::MAX);
        let v1 = definition("deploy", "done");
        let v2 = definition("deploy", "released");
        // A damaged record, or one written by a test, with one hash for both texts.
        let one = cache.read("ab", "w.ron", &v1).expect("reads");
        let two = cache.read("ab", "w.ron", &v2).expect("reads");
        assert!(one.state_id("done").is_some());
        assert!(two.state_id("released").is_some() && two.state_id("done").is_none());
        let again = cache.read("ab", "w.ron", &v1).expect("reads");
        assert!(again.state_id("done").is_some() && !Arc::ptr_eq(&one, &again));
    }

    #[test]
    fn the_cache_keeps_at_most_its_capacity_dropping_the_least_recently_used() {
        let cache = PinnedCache::new(2, usize::MAX);
        let [a, b, c] = ["a", "b", "c"].map(|n| definition(n, "done"));
        let first_a = read(&cache, &a);
        let first_b = read(&cache, &b);
        // `a` used again: `b` is now the least recently used, and goes when `c` comes.
        assert!(Arc::ptr_eq(&first_a, &read(&cache, &a)));
        read(&cache, &c);
        assert_eq!(cache.len(), 2);
        assert!(Arc::ptr_eq(&first_a, &read(&cache, &a)), "a was dropped");
        assert!(!Arc::ptr_eq(&first_b, &read(&cache, &b)), "b was kept");
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_definition_that_makes_no_model_gives_its_diagnostics_and_is_not_kept() {
        let cache = PinnedCache::new(4, usize::MAX);
        let text = definition("w", "done").replace("initial: \"build\"", "initial: \"nowhere\"");
        let text = text.as_str();
        let found = cache.read(&sha256_hex(text.as_bytes()), "w.ron", text);
        let diagnostics = found.expect_err("no model");
        assert!(diagnostics.iter().any(Diagnostic::is_error));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_keeps_at_most_its_bytes_of_text_and_always_the_latest() {
        let [a, b, c] = ["a", "b", "c"].map(|n| definition(n, "done"));
        let cache = PinnedCache::new(8, a.len() + b.len());
        let first_a = read(&cache, &a);
        read(&cache, &b);
        assert_eq!(cache.len(), 2);
        read(&cache, &c);
        assert_eq!(cache.len(), 2);
        assert!(!Arc::ptr_eq(&first_a, &read(&cache, &a)), "a was kept");
        // One definition larger than the bound is still kept, alone.
        let small = PinnedCache::new(8, 1);
        let first = read(&small, &a);
        assert!(Arc::ptr_eq(&first, &read(&small, &a)));
        read(&small, &b);
        assert_eq!(small.len(), 1);
    }
}
