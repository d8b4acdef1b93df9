//! The runs this server drives: started on request, carried on with nobody connected, and
//! resumed by the server itself after a restart (`kill -9` included).
//!
//! Before a drive starts, the run is written down with the actor who asked ([`DriveRecord`]);
//! it is crossed out when the drive ends (the run ended, or is stuck). A drive stopped by
//! SIGTERM stays written down, and so does one whose process died: the next server start
//! drives each again, as that actor. On the embedded store one server holds the directory,
//! so the record is a directory of files. With several replicas on one database the record
//! is a lease per run, held by one replica and renewed while it lives ([`DriveRecord::renew`],
//! every [`DriveRecord::renew_every`]): `record` takes the lease (refused while another
//! replica's lease lasts), `list` names the runs whose lease lapsed, which [`Drives::keep`]
//! takes over. A drive whose lease could not be renewed (taken over, or the store
//! unreachable) is stopped at its next await rather than risk two drivers; the per-run lock
//! of the engine stays the second fence.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use waygate_core::run::RunId;
use waygate_executor::engine::{DriveEnd, DriveOptions, Progress, ProgressSink};
use waygate_executor::{Shutdown, Signal, Trigger};

use crate::error::ApiError;

/// How often a waiting drive looks at its run for writes this server did not make (another
/// replica's, on PostgreSQL). Timers wake it when they are due, and writes through this
/// server's API wake it at once ([`waygate_executor::engine::Wakes`]); this look is the
/// fallback, so that 1,000 waiting runs cost a server next to nothing.
pub const LOOK_AGAIN: Duration = Duration::from_secs(30);
use crate::server::Shared;

/// Where a server writes down the runs it drives.
pub trait DriveRecord: Send + Sync + std::fmt::Debug {
    /// Writes down that this server drives `run` as `actor`.
    fn record(&self, run: &RunId, actor: &str) -> io::Result<()>;
    /// Crosses `run` out.
    fn forget(&self, run: &RunId) -> io::Result<()>;
    /// The runs written down, with their actors, that no other server drives now.
    fn list(&self) -> io::Result<Vec<(RunId, String)>>;
    /// Lets another server take `run` at once, still written down (a drive stopped by this
    /// server's shutdown). Nothing to do when one server holds the record.
    fn release(&self, _run: &RunId) -> io::Result<()> {
        Ok(())
    }
    /// Renews this server's hold of `runs`; returns those it still holds. One server holding
    /// the record holds them all.
    fn renew(&self, runs: &[RunId]) -> io::Result<Vec<RunId>> {
        Ok(runs.to_vec())
    }
    /// How often [`DriveRecord::renew`] must be called, and lapsed runs taken over; `None`
    /// when one server holds the record.
    fn renew_every(&self) -> Option<Duration> {
        None
    }
}

/// A [`DriveRecord`] as a directory with one file per run, holding the actor.
#[derive(Debug)]
pub struct DirRecord {
    dir: PathBuf,
}

impl DirRecord {
    /// The record in `dir`, created if missing.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<DirRecord> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(DirRecord { dir })
    }

    fn path(&self, run: &RunId) -> io::Result<PathBuf> {
        let id = run.as_str();
        let plain = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if plain {
            Ok(self.dir.join(id))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a run id of letters, digits, - and _ only",
            ))
        }
    }
}

impl DriveRecord for DirRecord {
    fn record(&self, run: &RunId, actor: &str) -> io::Result<()> {
        let path = self.path(run)?;
        let temp = path.with_extension("new");
        std::fs::write(&temp, actor)?;
        std::fs::File::open(&temp)?.sync_all()?;
        std::fs::rename(&temp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()
    }

    fn forget(&self, run: &RunId) -> io::Result<()> {
        match std::fs::remove_file(self.path(run)?) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn list(&self) -> io::Result<Vec<(RunId, String)>> {
        let mut runs = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".new") {
                continue;
            }
            let actor = std::fs::read_to_string(entry.path())?;
            runs.push((RunId(name), actor.trim().to_owned()));
        }
        runs.sort();
        Ok(runs)
    }
}

/// How a drive ended, as the API returns it (`docs/api.md`, drive).
pub type DriveResult = Result<Value, ApiError>;

/// The drives in progress in this server.
#[derive(Debug, Default)]
pub struct Drives {
    running: Mutex<HashMap<RunId, Running>>,
    /// The runs whose hold the last renewal confirmed (the `leases held` gauge).
    held: AtomicUsize,
}

#[derive(Debug)]
struct Running {
    end: watch::Receiver<Option<DriveResult>>,
    task: JoinHandle<()>,
    /// Stops this drive alone (its hold was lost).
    stop: Arc<Trigger>,
    /// Whether the drive is written down (held), as a drive that waits is.
    held: bool,
}

/// Discards progress: what a drive does is in the run's events, which clients follow.
struct Quiet;

impl ProgressSink for Quiet {
    fn report(&mut self, _: &Progress) {}
}

impl Drives {
    /// Drives `run` as `actor` unless this server drives it already; returns where its end
    /// will be told. A drive that waits (`no_wait` false) is written down first.
    pub fn start(
        &self,
        shared: &Arc<Shared>,
        run: RunId,
        actor: &str,
        no_wait: bool,
    ) -> Result<watch::Receiver<Option<DriveResult>>, ApiError> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|_, r| !r.task.is_finished());
        if let Some(r) = running.get(&run) {
            return Ok(r.end.clone());
        }
        if !no_wait {
            shared.record.record(&run, actor).map_err(|e| {
                let code = match e.kind() {
                    io::ErrorKind::ResourceBusy => crate::error::Code::Conflict,
                    _ => crate::error::Code::Store,
                };
                ApiError::new(
                    code,
                    format!("cannot write down that this server drives run {run}: {e}"),
                )
            })?;
        }
        let (tx, rx) = watch::channel(None);
        let (stop, own) = Shutdown::new();
        let stop = Arc::new(stop);
        let engine = shared.engine_with(actor, own);
        let record = shared.record.clone();
        let id = run.clone();
        let server_stop = shared.shutdown.clone();
        let forward = stop.clone();
        let forwarding = tokio::spawn(async move { forward.fire(server_stop.wait().await) });
        let task = tokio::spawn(async move {
            let options = DriveOptions {
                no_wait,
                poll: LOOK_AGAIN,
            };
            let ended = engine.drive(&id, options, &mut Quiet).await;
            forwarding.abort();
            let keep = match &ended {
                Ok(DriveEnd::Interrupted { .. }) => true,
                Err(e) => e.is_interrupted(),
                Ok(_) => false,
            };
            if keep {
                tracing::info!(run = %id, "drive stopped; resumed at its next start, or by another replica");
                if let Err(e) = record.release(&id) {
                    tracing::warn!(run = %id, "cannot give the drive up to another replica: {e}");
                }
            } else if let Err(e) = record.forget(&id) {
                tracing::error!(run = %id, "cannot cross out a finished drive: {e}");
            }
            if let Err(e) = &ended {
                tracing::warn!(run = %id, "drive ended with an error: {e}");
            }
            let result = ended
                .map(|end| serde_json::to_value(end).unwrap_or_default())
                .map_err(ApiError::from);
            let _ = tx.send(Some(result));
        });
        running.insert(
            run,
            Running {
                end: rx.clone(),
                task,
                stop,
                held: !no_wait,
            },
        );
        Ok(rx)
    }

    /// Drives every run written down by an earlier server, as the actor who asked.
    pub fn resume(&self, shared: &Arc<Shared>) {
        let runs = match shared.record.list() {
            Ok(runs) => runs,
            Err(e) => {
                tracing::error!("cannot read the drives to resume: {e}");
                return;
            }
        };
        for (run, actor) in runs {
            if self.is_driving(&run) {
                continue;
            }
            tracing::info!(run = %run, actor = %actor, "resuming a drive");
            if let Err(e) = self.start(shared, run.clone(), &actor, false) {
                tracing::warn!(run = %run, "cannot resume: {e}");
            }
        }
    }

    fn is_driving(&self, run: &RunId) -> bool {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.get(run).is_some_and(|r| !r.task.is_finished())
    }

    /// Until the server stops, every [`DriveRecord::renew_every`]: renews the holds of the
    /// drives in progress, stops those whose hold was lost (all of them when the record
    /// cannot be reached), and takes over the runs whose holder's lease lapsed. Returns at
    /// once when one server holds the record.
    pub async fn keep(&self, shared: &Arc<Shared>) {
        let Some(every) = shared.record.renew_every() else {
            return;
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = shared.shutdown.wait() => return,
            }
            let driving: Vec<RunId> = {
                let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
                let mut runs: Vec<RunId> = running
                    .iter()
                    .filter(|(_, r)| r.held && !r.task.is_finished())
                    .map(|(id, _)| id.clone())
                    .collect();
                runs.sort();
                runs
            };
            let record = shared.record.clone();
            let asked = driving.clone();
            let renewed = tokio::task::spawn_blocking(move || record.renew(&asked)).await;
            let renewed = match renewed {
                Ok(Ok(renewed)) => renewed,
                Ok(Err(e)) => {
                    tracing::error!("cannot renew the leases of the runs this replica drives: {e}; stopping those drives rather than risk two drivers");
                    Vec::new()
                }
                Err(e) => {
                    tracing::error!("lease renewal failed: {e}");
                    Vec::new()
                }
            };
            self.held.store(renewed.len(), Ordering::Relaxed);
            for run in driving.iter().filter(|r| !renewed.contains(r)) {
                tracing::warn!(run = %run, "lease lost: stopping this drive");
                let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(r) = running.get(run) {
                    r.stop.fire(Signal::Terminate);
                }
            }
            if shared.shutdown.requested().is_none() {
                let shared = shared.clone();
                let _ = tokio::task::spawn_blocking(move || shared.drives.resume(&shared)).await;
            }
        }
    }

    /// How many runs this server held at its last renewal.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// How many drives are in progress.
    pub fn count(&self) -> usize {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.values().filter(|r| !r.task.is_finished()).count()
    }

    /// Waits for every drive to finish (after the engine's shutdown fired, they stop at their
    /// next await, recording an interrupted action as such).
    pub async fn finish(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.drain().map(|(_, r)| r.task).collect()
        };
        for task in tasks {
            let _ = task.await;
        }
    }
}
