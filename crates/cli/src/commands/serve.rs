//! `serve`: the store opened and held here, handed to the server (`waygate_server::serve`).
//!
//! On the embedded store one server holds the directory for as long as it serves (its
//! operations then skip opening the store each time), and writes down where it listens in
//! `serve/server` there, so that a local command on that directory says which server to use
//! instead of waiting for the store ([`holder`]). The note is removed when the server stops;
//! one left by a server that was killed names a process that is gone, and is ignored.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use waygate_core::run::RunId;
use waygate_core::store::{EmbeddedStore, StopWaiting};
use waygate_postgres::PgLeases;
use waygate_server::drives::{DirRecord, DriveRecord};
use waygate_server::{Backend, Config, Limits};

use crate::app::{open_store, process_clock, store_options};
use crate::cli::{Global, ServeArgs};
use crate::exit::{CliError, Exit};

/// Serves until SIGTERM or SIGINT; exit 0 after a clean stop.
pub fn run(global: &Global, args: &ServeArgs) -> Result<Exit, CliError> {
    // Read before anything else is opened: a bad certificate or key serves nothing.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            waygate_server::tls::Tls::from_pem_files(cert, key)
                .map_err(|e| CliError::BadInput(e.to_string()))?,
        ),
        (None, None) => None,
        _ => {
            return Err(CliError::Usage(
                "--tls-cert and --tls-key go together".into(),
            ))
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    if args.lease_renew >= args.lease {
        return Err(CliError::BadInput(format!(
            "--lease-renew ({:?}) must be shorter than --lease ({:?}): a lease renewed after \
             it lapsed may already be another replica's",
            args.lease_renew, args.lease
        )));
    }
    let clock = process_clock();
    let opened = open_store(
        &global.store,
        true,
        store_options(&StopWaiting::default()),
        Arc::new(move || waygate_executor::Clock::now(&clock)),
    )?;
    let dir = global.store.clone();
    let _held = match &opened.embedded {
        Some(store) => Some(Holding::start(store.clone())?),
        None => None,
    };
    let record: Arc<dyn DriveRecord> = match global
        .store
        .to_str()
        .filter(|s| waygate_postgres::is_postgres_url(s))
    {
        // Replicas on one database share the runs through a lease per run there.
        Some(url) => Arc::new(Leases {
            leases: PgLeases::new(url, replica_name(), args.lease),
            every: args.lease_renew,
        }),
        // The runs this server drives are written down beside the store it holds.
        None => Arc::new(
            DirRecord::new(dir.join("serve").join("driving")).map_err(|e| {
                CliError::BadInput(format!("cannot keep the record of driven runs: {e}"))
            })?,
        ),
    };
    // The store is let go of after the runtime: a database client must not be dropped on
    // one of its threads.
    let store = opened.store.clone();
    let embedded = opened.embedded.is_some();
    let backend = Backend {
        store: opened.store,
        run_locks: opened.run_locks,
        clock: Arc::new(clock),
        record,
    };
    let config = Config {
        listen: args.listen,
        tokens: args.tokens.clone(),
        workflows: args.workflows.clone(),
        limits: Limits {
            streams: args.max_streams,
            ..Limits::default()
        },
        tls,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Output)?;
    let note = note_path(&dir);
    let served = runtime.block_on(waygate_server::serve(config, backend, |addr, catalog| {
        let url = format!("{scheme}://{addr}");
        if embedded {
            if let Err(e) = std::fs::write(&note, format!("{url} {}\n", std::process::id())) {
                tracing::warn!("cannot write {}: {e}", note.display());
            }
        }
        eprintln!(
            "waygate serve: listening on {url} ({} workflows loaded, {} not)",
            catalog.loaded.len(),
            catalog.rejected.len()
        );
    }));
    if embedded {
        let _ = std::fs::remove_file(&note);
    }
    drop(runtime);
    drop(store);
    served?;
    Ok(Exit::Ok)
}

/// This replica's name in the leases table: host, process and start time, so that a
/// restarted process is a new replica (the leases of the one that died lapse).
fn replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    let started = jiff::Timestamp::now().as_nanosecond();
    format!("{host}:{}:{started:x}", std::process::id())
}

/// The runs a replica drives, as leases in a PostgreSQL store.
#[derive(Debug)]
struct Leases {
    leases: PgLeases,
    every: std::time::Duration,
}

impl DriveRecord for Leases {
    fn record(&self, run: &RunId, actor: &str) -> std::io::Result<()> {
        match self.leases.take(run, actor)? {
            None => Ok(()),
            Some(holder) => Err(std::io::Error::new(
                std::io::ErrorKind::ResourceBusy,
                format!("replica {holder} drives it (its lease has not lapsed)"),
            )),
        }
    }

    fn forget(&self, run: &RunId) -> std::io::Result<()> {
        self.leases.forget(run)
    }

    fn list(&self) -> std::io::Result<Vec<(RunId, String)>> {
        self.leases.lapsed()
    }

    fn release(&self, run: &RunId) -> std::io::Result<()> {
        self.leases.release(run)
    }

    fn renew(&self, runs: &[RunId]) -> std::io::Result<Vec<RunId>> {
        self.leases.renew(runs)
    }

    fn renew_every(&self) -> Option<std::time::Duration> {
        Some(self.every)
    }
}

fn note_path(dir: &Path) -> PathBuf {
    dir.join("serve").join("server")
}

/// The URL of the live server that holds the store in `dir`, if one does.
pub fn holder(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(note_path(dir)).ok()?;
    let mut words = text.split_whitespace();
    let url = words.next()?.to_owned();
    let pid: libc::pid_t = words.next()?.parse().ok()?;
    if pid == std::process::id() as libc::pid_t {
        return None;
    }
    // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
    let exists = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // A killed server not yet reaped by its parent holds nothing any more.
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after_name = stat.rsplit_once(')')?.1.trim_start().to_owned();
            after_name.chars().next()
        })
        == Some('Z');
    (exists && !zombie).then_some(url)
}

/// The embedded store held open by a thread of its own until dropped (the hold borrows the
/// store, so it lives where the store does).
struct Holding {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Holding {
    fn start(store: Arc<EmbeddedStore>) -> Result<Holding, CliError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || match store.hold() {
            Ok(held) => {
                let _ = ready_tx.send(Ok(()));
                let _ = stop_rx.recv();
                drop(held);
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Holding {
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(CliError::BadInput(
                "the store could not be held open".into(),
            )),
        }
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        // Letting go applies what the session has not applied yet: wait for it.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
