//! The `Store` conformance suite run from outside the crate, as a second backend runs it: through
//! `waygate-core`'s `testing` feature and the public API only.

use waygate_core::store::{conformance, EmbeddedStore, MemoryStore};

#[test]
fn the_suite_runs_from_outside_the_crate_against_both_stores() {
    conformance::run_all("memory, from outside", |check| check(&MemoryStore::new()));
    conformance::run_all("embedded, from outside", |check| {
        let dir = tempfile::tempdir().expect("tempdir");
        check(&EmbeddedStore::open(dir.path()).expect("open"));
    });
}
