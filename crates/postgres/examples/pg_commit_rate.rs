//! Durable commits per second through the real [`PgStore`] and the plain `Store` API, and a
//! big database for the read figures (`docs/performance.md`, PostgreSQL).
//!
//! ```sh
//! cargo run --release -p waygate-postgres --example pg_commit_rate -- URL --commits 2000 --threads 16 [--tag a]
//! cargo run --release -p waygate-postgres --example pg_commit_rate -- URL --fill 1000000
//! ```
//!
//! `--threads T` starts T runs (environments `TAG-envN`) in one process and advances them at
//! once from T threads; the store's group commit decides how commits share transactions. Run
//! several processes with different `--tag`s on one database to measure them together. Each
//! commit moves a run to its next state with one `Transitioned` event. Prints one JSON line.
//!
//! `--fill N` writes N events (runs of 100 events each) into an empty database through
//! `PgStore::import`, sealed by a `MemoryStore`: the fixture for `history`, `audit verify` and
//! `audit --since/--until`. Their times are spread evenly over the 30 days before now (one
//! event every 2.6 s for a million), so an hour's window is a small slice of them.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use waygate_core::store::conformance::commit_rate::{advance, advance_together, cycle5_run};
use waygate_core::store::{EventFilter, MemoryStore, RunFilter, Store, StoreError};
use waygate_postgres::PgStore;

fn fill(url: &str, events: u64) -> Result<(), StoreError> {
    // One write per event (each run's first event, then one commit per event), so this clock
    // steps once per event from 30 days ago to now.
    const SPAN_NS: i128 = 30 * 24 * 3600 * 1_000_000_000;
    let step = (SPAN_NS / i128::from(events.max(1))) as i64;
    let first = jiff::Timestamp::now()
        .as_nanosecond()
        .saturating_sub(SPAN_NS);
    let calls = Arc::new(AtomicU64::new(0));
    let memory = MemoryStore::with_clock(Arc::new(move || {
        let n = i128::from(calls.fetch_add(1, Ordering::Relaxed));
        jiff::Timestamp::from_nanosecond(first + n * i128::from(step))
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }));
    let mut made = 0;
    let mut n = 0;
    while made < events {
        let (run, started) = cycle5_run(format!("fill-{n:06}"), format!("env{n}"));
        let id = memory.create_run(run, vec![started])?.0.id;
        let length = (events - made).min(100);
        advance(&memory, &id, length - 1)?;
        made += length;
        n += 1;
    }
    let runs = memory.list_runs(&RunFilter::default())?;
    let all = memory.scan_events(&EventFilter::default())?;
    let (store, _) = PgStore::open(url, true)?;
    let start = Instant::now();
    store.import(&runs, &all)?;
    println!(
        "{{\"filled\":{},\"runs\":{},\"seconds\":{:.3}}}",
        all.len(),
        runs.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<(), StoreError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .expect("usage: pg_commit_rate URL [--commits N] [--threads T] [--tag X] [--fill N]");
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(n) = flag("--fill") {
        return fill(url, n.parse().unwrap());
    }
    let commits: u64 = flag("--commits").map_or(2000, |n| n.parse().unwrap());
    let threads: u64 = flag("--threads").map_or(1, |n| n.parse().unwrap());
    let tag = flag("--tag").unwrap_or_else(|| "b".into());
    let (store, _) = PgStore::open(url, true)?;
    let mut ids = Vec::new();
    for t in 0..threads {
        let (run, started) = cycle5_run(format!("{tag}-{t:02}"), format!("{tag}-env{t}"));
        ids.push(store.create_run(run, vec![started])?.0.id);
    }
    let per_thread = commits / threads;
    let seconds = advance_together(&store, &ids, per_thread)?.as_secs_f64();
    let commits = per_thread * threads;
    println!(
        "{{\"commits\":{commits},\"threads\":{threads},\"seconds\":{seconds:.3},\"per_sec\":{:.1}}}",
        commits as f64 / seconds
    );
    Ok(())
}
