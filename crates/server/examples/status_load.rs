//! A bounded load on one run's status: `GET /v1/runs/RUN` at a fixed rate against a running
//! `waygate serve`, printing the latency percentiles (docs/performance.md, "The server").
//!
//! `cargo run --release -p waygate-server --example status_load -- URL TOKEN RUN RATE SECONDS`
//!
//! Open loop: a request is sent every 1/RATE s whether or not earlier ones have come back
//! (so a slow server shows as latency, not as a lower rate), over at most 64 connections.
//! Only 127.0.0.1 is meant: it refuses any other host.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Semaphore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, token, run, rate, seconds] = args.as_slice() else {
        eprintln!("usage: status_load URL TOKEN RUN RATE SECONDS");
        std::process::exit(2);
    };
    if !url.starts_with("http://127.0.0.1:") {
        eprintln!("status_load only loads a server on 127.0.0.1");
        std::process::exit(2);
    }
    let rate: f64 = rate.parse()?;
    let seconds: f64 = seconds.parse()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let target = format!("{url}/v1/runs/{run}");
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let slots = Arc::new(Semaphore::new(64));
    let total = (rate * seconds) as u64;
    let every = Duration::from_secs_f64(1.0 / rate);
    let began = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..total {
        tokio::time::sleep_until((began + every * i as u32).into()).await;
        let permit = slots.clone().acquire_owned().await?;
        let (client, target, token) = (client.clone(), target.clone(), token.clone());
        let (latencies, errors) = (latencies.clone(), errors.clone());
        let due = began + every * i as u32;
        tasks.push(tokio::spawn(async move {
            let sent = client.get(&target).bearer_auth(&token).send().await;
            let ok = match sent {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            // From when it was due, so queueing behind a slow server counts.
            let took = due.elapsed();
            drop(permit);
            if ok {
                latencies.lock().await.push(took);
            } else {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = began.elapsed().as_secs_f64();
    let mut l = latencies.lock().await.clone();
    l.sort();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "rate {rate}/s for {seconds}s: {} ok, {} errors, achieved {:.0}/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        l.len(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        l.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(1.0),
    );
    Ok(())
}
