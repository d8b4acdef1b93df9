//! Durable commits per second through the real [`EmbeddedStore`] and the plain [`Store`] API.
//!
//! Each commit moves a run to its next state with one `Transitioned` event (a ~390-byte
//! journal record), so each is one append + fdatasync plus sled's batch. `--threads T` starts
//! T runs (one per environment) and advances them at once from T threads; the store decides
//! how commits share syncs (group commit, where the store has it).
//!
//! `--mode held` keeps the store open for the whole measurement ([`EmbeddedStore::hold`],
//! what a long-lived process such as `drive` can do); `--mode oneshot` pays the lock + sled
//! open + close on every commit, as each separate `waygate advance` process does.
//!
//! ```sh
//! cargo run --release -p waygate-core --example commit_rate -- --dir target/commit-bench --commits 2000
//! ```
//!
//! `DIR` must not exist or be empty: it becomes the store. Prints one JSON line:
//! `{"commits":N,"threads":T,"mode":"held","seconds":S,"per_sec":R}`.

use std::path::PathBuf;
use std::process::ExitCode;

use waygate_core::store::conformance::commit_rate::{advance_together, cycle5_run};
use waygate_core::store::{EmbeddedStore, Store, StoreError};

#[path = "support/flags.rs"]
mod flags;
use flags::Flags;

struct Args {
    dir: PathBuf,
    commits: u64,
    threads: u64,
    held: bool,
}

fn parse_args() -> Result<Args, String> {
    let flags = Flags::parse(&["--commits", "--threads", "--mode"])?;
    let held = match flags.text("--mode") {
        None | Some("held") => true,
        Some("oneshot") => false,
        Some(other) => return Err(format!("--mode {other}: expected held or oneshot")),
    };
    let args = Args {
        commits: flags.number("--commits", 2000)?,
        threads: flags.number("--threads", 1)?,
        held,
        dir: flags.dir.clone(),
    };
    if args.threads == 0 || args.commits < args.threads {
        return Err("need --threads >= 1 and --commits >= --threads".into());
    }
    flags.dir_is_empty()?;
    Ok(args)
}

fn run(args: &Args) -> Result<f64, StoreError> {
    let store = EmbeddedStore::open(&args.dir)?;
    let mut ids = Vec::new();
    for t in 0..args.threads {
        let (run, started) = cycle5_run(format!("bench-{t:02}"), format!("env{t}"));
        ids.push(store.create_run(run, vec![started])?.0.id);
    }
    let held = if args.held { Some(store.hold()?) } else { None };
    let per_thread = args.commits / args.threads;
    let seconds = advance_together(&store, &ids, per_thread)?.as_secs_f64();
    drop(held);
    Ok(seconds)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("commit_rate: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(seconds) => {
            let commits = args.commits / args.threads * args.threads;
            println!(
                "{{\"commits\":{commits},\"threads\":{},\"mode\":\"{}\",\"seconds\":{seconds:.6},\"per_sec\":{:.1}}}",
                args.threads,
                if args.held { "held" } else { "oneshot" },
                commits as f64 / seconds
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("commit_rate: {e}");
            ExitCode::FAILURE
        }
    }
}
