//! Builds (or reuses) the benchmarks' store and prints its size on disk against the bytes of
//! the events it holds (as `waygate history --format jsonl` would print them, without the
//! newlines), plus the id of a run and a one-hour range for timing the CLI against it.
//!
//! `cargo run --release -p waygate-core --example bench_store` (`WAYGATE_BENCH_EVENTS=10000`
//! for a small store).

use std::time::{Duration, Instant};

use waygate_core::store::{EmbeddedStore, EventFilter, Store};

#[path = "../benches/support/fixture.rs"]
mod fixture;

/// Wall time and this process's CPU time (user + system, all threads) of `f`: on a machine
/// shared with other work the CPU time says what the wall time would be with the cores free.
fn timed<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<(Duration, Duration), E> {
    let cpu = || {
        // SAFETY: getrusage writes into the struct we pass; no other memory is involved.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
        t(usage.ru_utime) + t(usage.ru_stime)
    };
    let (c0, w0) = (cpu(), Instant::now());
    f()?;
    Ok((w0.elapsed(), cpu() - c0))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fx = fixture::fixture(fixture::wanted_events());
    let store = EmbeddedStore::open(&fx.dir)?;
    let started = Instant::now();
    let events = store.scan_events(&EventFilter::default())?;
    let scanned = started.elapsed();
    let mut event_bytes = 0u64;
    for event in &events {
        event_bytes += serde_json::to_vec(event)?.len() as u64;
    }
    drop(events);
    let journal = fixture::dir_bytes(&fx.dir.join("journal"));
    let state = fixture::dir_bytes(&fx.dir.join("state"));
    let total = fixture::dir_bytes(&fx.dir);
    let mb = |b: u64| b as f64 / 1e6;
    println!("store        {}", fx.dir.display());
    println!(
        "events       {} ({} runs)",
        fx.events,
        fx.events / fixture::PER_RUN
    );
    println!(
        "event bytes  {:.1} MB (JSON, {} B/event)",
        mb(event_bytes),
        event_bytes / fx.events
    );
    println!(
        "journal      {:.1} MB ({:.3}x)",
        mb(journal),
        journal as f64 / event_bytes as f64
    );
    println!(
        "state (sled) {:.1} MB ({:.3}x)",
        mb(state),
        state as f64 / event_bytes as f64
    );
    println!(
        "total        {:.1} MB ({:.3}x the events' bytes)",
        mb(total),
        total as f64 / event_bytes as f64
    );
    println!("scan of everything: {scanned:.2?}");
    {
        let _held = store.hold()?;
        let n = 1000u32;
        let (wall, cpu) = timed(|| -> Result<(), waygate_core::store::StoreError> {
            for _ in 0..n {
                store.load_run_with_events(&fx.run)?;
            }
            Ok(())
        })?;
        println!(
            "one run's history (held): {:.3} ms wall, {:.3} ms CPU per call",
            wall.as_secs_f64() * 1e3 / f64::from(n),
            cpu.as_secs_f64() * 1e3 / f64::from(n)
        );
        let hour = EventFilter {
            since: Some(fx.since),
            until: Some(fx.until),
            ..EventFilter::default()
        };
        let mut found = 0;
        let (wall, cpu) = timed(|| -> Result<(), waygate_core::store::StoreError> {
            for _ in 0..100 {
                found = store.scan_events(&hour)?.len();
            }
            Ok(())
        })?;
        println!(
            "one hour ({found} events, held): {:.3} ms wall, {:.3} ms CPU per call",
            wall.as_secs_f64() * 10.0,
            cpu.as_secs_f64() * 10.0
        );
    }
    for _ in 0..3 {
        let (wall, cpu) = timed(|| store.verify().map(|r| assert!(r.is_ok(), "{r:?}")))?;
        println!("verify:      {wall:.2?} wall, {cpu:.2?} CPU (all threads)");
    }
    println!("a run:       {}", fx.run);
    println!("an hour:     --since {} --until {}", fx.since, fx.until);
    Ok(())
}
