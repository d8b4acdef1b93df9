//! The store's benchmarks (issue 5): durable commits next to a raw append + fdatasync loop on
//! the same directory, one after another and 16 runs at once; and reads out of a big history
//! (one run's events, a one-hour range, `verify`). See `docs/performance.md`, section Store.
//!
//! `cargo bench -p waygate-core --bench store`; `WAYGATE_BENCH_EVENTS=100000` for a quicker
//! fixture (built once, cached under `target/bench-stores/`).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use waygate_core::event::{Cause, EventKind, NewEvent};
use waygate_core::run::{Run, RunId};
use waygate_core::store::{EmbeddedStore, EventFilter, RunChange, Store};

#[path = "support/fixture.rs"]
mod fixture;

/// Threads committing at once in the group-commit bench.
const THREADS: u64 = 16;

fn new_run(id: &str, env: &str) -> (Run, NewEvent) {
    let run = Run::new(RunId::from(id), "web", env, "s0", "ana", "web.ron", "(..)");
    let started = run.started();
    (run, NewEvent::new("ana", started))
}

/// A ~300-byte `Transitioned` event (as JSON in the journal).
fn moved(to: &str) -> NewEvent {
    NewEvent::new(
        "drive",
        EventKind::Transitioned {
            from: "canary".into(),
            to: to.into(),
            cause: Cause::Advance,
            reason: Some("all 3 guards passed: health, error-rate, approval by ana".into()),
        },
    )
}

fn commit_next(store: &EmbeddedStore, id: &RunId, version: &AtomicU64) {
    let v = version.load(Ordering::Relaxed);
    let (run, _) = store
        .commit(
            id,
            v,
            RunChange::to_state(format!("s{v}")),
            vec![moved("prod")],
        )
        .expect("commit");
    version.store(run.version, Ordering::Relaxed);
}

fn commits(c: &mut Criterion) {
    // On the disk the store would use (target/, not a tmpfs /tmp), raw loop and store side by side.
    let root = fixture::cache_root();
    std::fs::create_dir_all(&root).expect("cache dir");
    let dir = tempfile::tempdir_in(&root).expect("tempdir");
    let store = EmbeddedStore::open(dir.path().join("store")).expect("open");
    let runs: Vec<(RunId, AtomicU64)> = (0..THREADS)
        .map(|i| {
            let (run, started) = new_run(&format!("r{i:02}"), &format!("env{i}"));
            let run = store.create_run(run, vec![started]).expect("create").0;
            (run.id, AtomicU64::new(run.version))
        })
        .collect();

    let mut group = c.benchmark_group("commit");
    group.throughput(Throughput::Elements(1));
    let mut raw = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("raw.bin"))
        .expect("raw file");
    let record = [b'x'; 300];
    let raw_loop = |raw: &mut File| {
        raw.write_all(&record).expect("write");
        raw.sync_data().expect("fdatasync");
    };
    group.bench_function("raw_append_fdatasync_300B", |b| {
        b.iter(|| raw_loop(&mut raw))
    });
    let (id, version) = &runs[0];
    {
        let _held = store.hold().expect("hold");
        group.bench_function("commit_sequential_held", |b| {
            b.iter(|| commit_next(&store, id, version))
        });
        group.bench_function("commit_16_threads_held", |b| {
            b.iter_custom(|iters| {
                let each = iters.div_ceil(THREADS);
                let barrier = Barrier::new(THREADS as usize + 1);
                let elapsed = std::thread::scope(|scope| {
                    for (id, version) in &runs {
                        let (store, barrier) = (&store, &barrier);
                        scope.spawn(move || {
                            barrier.wait();
                            for _ in 0..each {
                                commit_next(store, id, version);
                            }
                        });
                    }
                    barrier.wait();
                    Instant::now()
                })
                .elapsed();
                // Time for `iters` commits at the measured rate.
                elapsed.mul_f64(iters as f64 / (each * THREADS) as f64)
            })
        });
    }
    group.bench_function("commit_sequential_one_shot", |b| {
        b.iter(|| commit_next(&store, id, version))
    });
    // The raw loop again at the end: the disk changes speed for minutes at a time, so a
    // ratio is only worth something if both ends agree.
    group.bench_function("raw_append_fdatasync_300B_again", |b| {
        b.iter(|| raw_loop(&mut raw))
    });
    group.finish();
}

fn reads(c: &mut Criterion) {
    let fx = fixture::fixture(fixture::wanted_events());
    let store = EmbeddedStore::open(&fx.dir).expect("open the bench store");
    fixture::warm(&store, &fx.run);
    let hour = EventFilter {
        since: Some(fx.since),
        until: Some(fx.until),
        ..EventFilter::default()
    };
    let mut group = c.benchmark_group(format!("read_{}", fx.events));
    {
        let _held = store.hold().expect("hold");
        group.bench_function("run_events_held", |b| {
            b.iter(|| store.run_events(&fx.run).expect("events"))
        });
        group.bench_function("load_run_with_events_held", |b| {
            b.iter(|| store.load_run_with_events(&fx.run).expect("events"))
        });
        group.bench_function("scan_one_hour_held", |b| {
            b.iter(|| store.scan_events(&hour).expect("scan"))
        });
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(20));
        group.bench_function("verify_held", |b| {
            b.iter(|| assert!(store.verify().expect("verify").is_ok()))
        });
    }
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("load_run_with_events_one_shot", |b| {
        b.iter(|| store.load_run_with_events(&fx.run).expect("events"))
    });
    group.finish();
}

criterion_group!(benches, commits, reads);
criterion_main!(benches);
