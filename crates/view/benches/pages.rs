//! Rendering what a run page shows of a run of 10,000 events (the timeline table with each
//! event's evidence, and the graph with the path taken), against 100 events: the render alone,
//! without reading the store. `docs/performance.md` ("Pages") has the figures and the
//! whole-process measurement beside them (`bench/pages`).
//!
//! ```sh
//! cargo bench -p waygate-view --bench pages -- --warm-up-time 1 --measurement-time 3
//! ```

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use serde_json::json;
use waygate_core::event::Event;
use waygate_core::validate::validate;
use waygate_view::report::{event_table, graph_figure};

const QUICKSTART: &str = include_str!("../../../workflows/examples/quickstart.ron");

/// `n` events as `make_store` writes them: a start, then guard evaluations and actions.
fn events(n: u64) -> Vec<Event> {
    let hash = "5064da3f05fe41b7bd977d8812c1b31d353aef424c5f802d870ba700e3fe3dc7";
    (1..=n)
        .map(|seq| {
            let mut e = match seq % 3 {
                0 => json!({"kind": "GuardsEvaluated", "state": "build", "to": "bake",
                    "passed": true, "guards": [{"name": "tests", "outcome": "pass",
                    "detail": "exit status 0", "evidence": "Fri Nov 27 02:41:09 UTC 2026",
                    "duration_ms": 3, "attempts": 1}]}),
                1 => json!({"kind": "ActionStarted", "state": "build", "index": 0,
                    "action": "echo hello from waygate: building"}),
                _ => json!({"kind": "ActionFinished", "state": "build", "index": 0, "ok": true,
                    "detail": "exit status 0", "evidence": "hello from waygate: building",
                    "duration_ms": 2}),
            };
            let fields = e.as_object_mut().expect("an object");
            for (k, v) in [
                ("seq", json!(seq)),
                ("run_id", json!("run-00000")),
                ("at", json!("2026-11-29T15:22:21.537960423Z")),
                ("actor", json!("bench")),
                ("prev_hash", json!(hash)),
                ("hash", json!(hash)),
            ] {
                fields.insert(k.into(), v);
            }
            serde_json::from_value(e).expect("an event")
        })
        .collect()
}

fn pages(c: &mut Criterion) {
    let workflow = validate("quickstart.ron", QUICKSTART)
        .workflow
        .expect("the quickstart validates");
    let mut group = c.benchmark_group("run_page");
    for n in [100u64, 10_000] {
        let events = events(n);
        group.bench_with_input(BenchmarkId::new("timeline", n), &events, |b, events| {
            b.iter(|| {
                let mut out = String::new();
                event_table(&mut out, events, None);
                out
            })
        });
        group.bench_with_input(BenchmarkId::new("graph", n), &events, |b, events| {
            b.iter(|| graph_figure(&workflow, events))
        });
    }
    group.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
