//! Helpers shared by the store tests.

use std::path::{Path, PathBuf};

use waygate_core::event::{Event, NewEvent};
use waygate_core::run::{Run, RunId};
use waygate_core::store::{EmbeddedStore, RunChange, RunFilter, Store, StoreError};

pub fn new_run(id: &str, env: &str) -> (Run, NewEvent) {
    let run = Run::new(
        RunId::from(id),
        "web",
        env,
        "build",
        "ana",
        "deploy.ron",
        "(name: \"web\")",
    );
    let started = NewEvent::new("ana", run.started());
    (run, started)
}

/// The conformance suite's `Transitioned` event and first move, so these tests and the suite
/// write alike.
pub use waygate_core::store::conformance::{moved, to_canary};

/// The crash test's `ActionStarted` event, so these tests and the suite write alike.
pub use waygate_core::store::conformance::crash::action;

/// Moves run `id` of a [`populated`] store (in `canary`, at `version`) to `prod`, recording
/// `extra` events after the move.
pub fn to_prod(
    store: &dyn Store,
    id: &RunId,
    version: u64,
    extra: Vec<NewEvent>,
) -> Result<(Run, Vec<Event>), StoreError> {
    let mut events = vec![moved("canary", "prod")];
    events.extend(extra);
    store.commit(id, version, RunChange::to_state("prod"), events)
}

/// A store with three runs and a dozen events, the last run still active.
pub fn populated(dir: &Path) -> EmbeddedStore {
    let store = EmbeddedStore::open(dir).expect("open");
    for (id, env) in [("r1", "prod"), ("r2", "staging"), ("r3", "dev")] {
        let (run, started) = new_run(id, env);
        let run = store.create_run(run, vec![started]).expect("create").0;
        store
            .append(&run.id, vec![action("build")])
            .expect("append");
        to_canary(&store, &run);
    }
    store
}

/// Everything a reader can see: runs, and each run's events.
pub fn snapshot(store: &dyn Store) -> String {
    let runs = store.list_runs(&RunFilter::default()).expect("list");
    let mut out = String::new();
    for run in runs {
        out.push_str(&serde_json::to_string(&run).expect("json"));
        out.push('\n');
        assert_eq!(store.load_run(&run.id).expect("load"), run);
        for event in store.run_events(&run.id).expect("events") {
            out.push_str(&serde_json::to_string(&event).expect("json"));
            out.push('\n');
        }
    }
    out
}

pub fn segment(dir: &Path) -> PathBuf {
    dir.join("journal").join("00000001.seg")
}

/// (offset, payload length) of every record in a segment, per the documented format.
pub fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        out.push((at, len));
        at += 8 + len;
    }
    out
}

/// Copies the directory tree `from` to `to`, file by file.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}
