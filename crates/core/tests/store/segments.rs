//! Long histories: segment rolling and the sparse seq and time indexes.

use std::fs;

use waygate_core::event::Event;
use waygate_core::store::{EmbeddedStore, EventFilter, Options, Store};

use crate::common::{action, new_run};

fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

#[test]
fn a_long_history_rolls_segments_and_time_scans_match_a_full_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options {
        segment_limit: 8 * 1024,
        ..Options::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), options.clone()).expect("open");
    let held = store.hold().expect("hold");
    let (run, started) = new_run("r1", "prod");
    let run = store.create_run(run, vec![started]).expect("create").0;
    for _ in 0..350 {
        store
            .append(&run.id, vec![action("build"), action("build")])
            .expect("append");
    }
    drop(held);
    let segments = fs::read_dir(dir.path().join("journal"))
        .expect("journal")
        .count();
    assert!(segments > 10, "only {segments} segments");

    let all = store.scan_events(&EventFilter::default()).expect("scan");
    assert_eq!(seqs(&all), (1..=701).collect::<Vec<_>>());
    let (t1, t2) = (all[300].at, all[550].at);
    for (since, until) in [(Some(t1), None), (Some(t1), Some(t2)), (None, Some(t2))] {
        let filter = EventFilter {
            since,
            until,
            ..EventFilter::default()
        };
        let expected: Vec<u64> = all
            .iter()
            .filter(|e| since.is_none_or(|t| e.at >= t) && until.is_none_or(|t| e.at <= t))
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs(&store.scan_events(&filter).expect("scan")), expected);
    }
    assert_eq!(store.run_events(&run.id).expect("events"), all);

    fs::remove_dir_all(dir.path().join("state")).expect("rm state");
    let rebuilt = EmbeddedStore::open_with(dir.path(), options).expect("open");
    assert_eq!(rebuilt.run_events(&run.id).expect("events"), all);
    let filter = EventFilter {
        since: Some(t1),
        until: Some(t2),
        ..EventFilter::default()
    };
    let before = store.scan_events(&filter).expect("scan");
    assert!(!before.is_empty());
    assert_eq!(rebuilt.scan_events(&filter).expect("scan"), before);
    let report = rebuilt.verify().expect("verify");
    assert!(report.is_ok() && report.events == 701, "{report:?}");
}
