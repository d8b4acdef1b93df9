//! Rough figures for `docs/storage.md`, not a pass/fail test: run with
//! `cargo test --release -p waygate-core --test store figures -- --ignored --nocapture`.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Instant;

use waygate_core::run::RunId;
use waygate_core::store::{EmbeddedStore, EventFilter, RunChange, Store};

use crate::common::{action, moved, new_run};

fn per_op(label: &str, n: u32, f: impl FnMut(u32)) {
    let start = Instant::now();
    (0..n).for_each(f);
    let each = start.elapsed() / n;
    eprintln!(
        "{label:<48} {:>9.3} ms/op  {:>8.0} op/s",
        each.as_secs_f64() * 1e3,
        1.0 / each.as_secs_f64()
    );
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

#[test]
#[ignore = "prints figures; run by hand in release mode"]
fn figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw_path = dir.path().join("raw");
    let mut raw = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&raw_path)
        .expect("raw");
    let record = vec![b'x'; 330];
    per_op("raw append + fdatasync (330 B)", 300, |_| {
        raw.write_all(&record).expect("write");
        raw.sync_data().expect("sync");
    });

    let store_dir = dir.path().join("store");
    let store = EmbeddedStore::open(&store_dir).expect("open");
    let (run, started) = new_run("r0", "prod");
    let mut version = store
        .create_run(run, vec![started])
        .expect("create")
        .0
        .version;
    let id = RunId::from("r0");
    per_op("commit, one-shot (lock + sled open each)", 300, |i| {
        let to = format!("s{i}");
        store
            .commit(
                &id,
                version,
                RunChange::to_state(&to),
                vec![moved("a", &to)],
            )
            .expect("c");
        version += 1;
    });
    {
        let _held = store.hold().expect("hold");
        per_op("commit, store held open", 300, |i| {
            let to = format!("h{i}");
            store
                .commit(
                    &id,
                    version,
                    RunChange::to_state(&to),
                    vec![moved("a", &to)],
                )
                .expect("c");
            version += 1;
        });
        // Grow the history: 1,000 runs of 10 events, ten events per commit.
        for r in 1..=1000 {
            let (run, started) = new_run(&format!("r{r:04}"), &format!("env{r}"));
            let run = store.create_run(run, vec![started]).expect("create").0;
            store
                .append(&run.id, (0..9).map(|_| action("build")).collect())
                .expect("append");
        }
    }
    let events = store.verify().expect("verify").events;
    eprintln!("store now holds {events} events");
    let some = RunId::from("r0500");
    per_op("load_run, one-shot", 100, |_| {
        drop(store.load_run(&some).expect("load"))
    });
    per_op("run_events (10 events), one-shot", 100, |_| {
        assert_eq!(store.run_events(&some).expect("events").len(), 10)
    });
    let since = store.run_events(&RunId::from("r0900")).expect("events")[0].at;
    let filter = EventFilter {
        since: Some(since),
        ..EventFilter::default()
    };
    per_op("scan_events since (last ~10%), one-shot", 20, |_| {
        assert!(!store.scan_events(&filter).expect("scan").is_empty())
    });
    per_op("verify (whole journal), one-shot", 5, |_| {
        assert!(store.verify().expect("v").is_ok())
    });
    let journal = dir_bytes(&store_dir.join("journal"));
    let state = dir_bytes(&store_dir.join("state"));
    eprintln!(
        "on disk: journal {journal} B ({} B/event), state (sled) {state} B",
        journal / events
    );
}
