//! `serve`: the store opened here, handed to the server (`waygate_server::serve`).

use std::sync::Arc;

use waygate_core::store::StopWaiting;
use waygate_server::drives::DirRecord;
use waygate_server::{Backend, Config, Limits};

use crate::app::{embedded_dir, open_store, process_clock, store_options};
use crate::cli::{Global, ServeArgs};
use crate::exit::{CliError, Exit};

/// Serves until SIGTERM or SIGINT; exit 0 after a clean stop.
pub fn run(global: &Global, args: &ServeArgs) -> Result<Exit, CliError> {
    if args.tls_cert.is_some() {
        return Err(CliError::BadInput(
            "--tls-cert/--tls-key: this build serves plain HTTP only; put a reverse proxy that \
             terminates TLS in front of it (docs/api.md, TLS)"
                .into(),
        ));
    }
    let clock = process_clock();
    let opened = open_store(
        &global.store,
        true,
        store_options(&StopWaiting::default()),
        Arc::new(move || waygate_executor::Clock::now(&clock)),
    )?;
    // The runs this server drives are written down beside the store it holds.
    let record = DirRecord::new(embedded_dir(&global.store)?.join("serve").join("driving"))
        .map_err(|e| CliError::BadInput(format!("cannot keep the record of driven runs: {e}")))?;
    let backend = Backend {
        store: opened.store,
        run_locks: opened.run_locks,
        clock: Arc::new(clock),
        record: Arc::new(record),
    };
    let config = Config {
        listen: args.listen,
        tokens: args.tokens.clone(),
        workflows: args.workflows.clone(),
        limits: Limits::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Output)?;
    runtime.block_on(waygate_server::serve(config, backend, |addr, catalog| {
        eprintln!(
            "waygate serve: listening on http://{addr} ({} workflows loaded, {} not)",
            catalog.loaded.len(),
            catalog.rejected.len()
        );
    }))?;
    Ok(Exit::Ok)
}
