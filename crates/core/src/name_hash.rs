//! A fast hasher for the name tables of validation and the model.
//!
//! State and variable names are looked up hundreds of thousands of times when a large
//! workflow is validated; std's SipHash (built to resist collision attacks from untrusted
//! keys) was a tenth of the work. The keys here come from the workflow file its own author
//! wrote, so the multiply-rotate hash used inside rustc (FxHash) is enough.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by names, with [`NameHasher`].
pub(crate) type NameMap<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;
/// A `HashSet` of names, with [`NameHasher`].
pub(crate) type NameSet<K> = HashSet<K, BuildHasherDefault<NameHasher>>;

/// FxHash: rotate, xor a word in, multiply.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NameHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_differ_only_in_their_tail_or_length_hash_apart() {
        let mut set: NameSet<String> = NameSet::default();
        for name in [
            "s1",
            "s10",
            "s100",
            "state-00000001",
            "state-00000002",
            "",
            "\0",
        ] {
            assert!(set.insert(name.to_owned()), "{name}");
        }
        assert!(set.contains("s10") && !set.contains("s1000"));
    }
}
