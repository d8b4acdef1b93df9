//! `waygate serve`: one process holding the store, serving the API, driving runs.
//!
//! [`serve`] binds, resumes the drives an earlier server left ([`crate::drives`]) and accepts
//! connections until SIGTERM or SIGINT: then it stops accepting, lets requests in flight
//! finish (at most [`Limits::drain`]), stops its drives at their next await (an action
//! running is stopped and recorded as interrupted, never left half-committed) and returns.
//! SIGHUP reads the workflows directory again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use waygate_core::store::{RunFilter, Store};
use waygate_executor::engine::Wakes;
use waygate_executor::lock::RunLocks;
use waygate_executor::{Clock, Engine, Shutdown, Signal, Trigger};

use crate::auth::TokenSource;
use crate::catalog::Catalog;
use crate::drives::{DriveRecord, Drives};
use crate::tls::Tls;
use crate::tokens::TokensError;

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to listen on (port 0: any free port, printed when bound).
    pub listen: SocketAddr,
    /// The tokens file.
    pub tokens: PathBuf,
    /// The workflows directory.
    pub workflows: PathBuf,
    /// Request limits.
    pub limits: Limits,
    /// HTTPS with this certificate and key; plain HTTP without.
    pub tls: Option<Tls>,
}

/// What one request may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request body, in bytes.
    pub body_bytes: usize,
    /// How long a client may take to send its request head (a client that connects and
    /// sends nothing is dropped after this); with TLS, also how long its handshake may take.
    pub header: Duration,
    /// How long a request may take to arrive and be answered, except a drive that waits
    /// for its end and an event stream.
    pub request: Duration,
    /// How long requests in flight may take to finish on SIGTERM.
    pub drain: Duration,
    /// How many event streams (`GET /v1/runs/RUN/events`) may be open at once; one more is
    /// refused with `503`, code `busy`.
    pub streams: usize,
    /// How often an idle event stream looks at the store for writes this server did not
    /// make (another process's, another replica's); writes through this server wake it at once.
    pub stream_look: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body_bytes: 64 * 1024,
            header: Duration::from_secs(10),
            request: Duration::from_secs(60),
            drain: Duration::from_secs(30),
            streams: 256,
            stream_look: Duration::from_secs(5),
        }
    }
}

/// The store side, chosen by the caller (the CLI picks the backend from `--store`).
#[derive(Clone)]
pub struct Backend {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The run locks that go with it.
    pub run_locks: Arc<dyn RunLocks>,
    /// The clock engines use.
    pub clock: Arc<dyn Clock>,
    /// Where the server writes down the runs it drives.
    pub record: Arc<dyn DriveRecord>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("record", &self.record)
            .finish()
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The tokens file is missing or invalid.
    #[error(transparent)]
    Tokens(#[from] TokensError),
    /// The workflows directory cannot be read.
    #[error("workflows directory {dir}: {source}")]
    Workflows {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Binding, accepting or installing a handler failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The metrics recorder could not be installed.
    #[error("metrics: {0}")]
    Metrics(String),
}

/// What every request handler shares.
#[derive(Debug)]
pub struct Shared {
    pub(crate) backend: Backend,
    pub(crate) tokens: TokenSource,
    pub(crate) catalog: RwLock<Arc<Catalog>>,
    pub(crate) workflows_dir: PathBuf,
    pub(crate) record: Arc<dyn DriveRecord>,
    pub(crate) drives: Drives,
    pub(crate) shutdown: Shutdown,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) limits: Limits,
    /// Shared by every engine of this server: a write through the API (an approval, an
    /// abort) wakes the waiting drive of that run at once.
    pub(crate) wakes: Arc<Wakes>,
    /// One permit per open event stream, at most [`Limits::streams`].
    pub(crate) streams: Arc<tokio::sync::Semaphore>,
    /// The pages' signed-in sessions (this process's memory only).
    pub(crate) sessions: crate::session::Sessions,
    /// Whether the server speaks HTTPS: the session cookie is `Secure` then.
    pub(crate) tls: bool,
    /// The chain's last verification, for the audit page.
    pub(crate) chain: crate::pages::ChainCache,
}

impl Shared {
    /// An engine acting as `actor`, stopping when the server does.
    pub(crate) fn engine(&self, actor: &str) -> Engine {
        self.engine_with(actor, self.shutdown.clone())
    }

    /// An engine acting as `actor`, stopping at `shutdown` (a drive's own).
    pub(crate) fn engine_with(&self, actor: &str, shutdown: Shutdown) -> Engine {
        Engine::new(self.backend.store.clone(), actor)
            .with_clock(self.backend.clock.clone())
            .with_run_locks(self.backend.run_locks.clone())
            .with_shutdown(shutdown)
            .with_wakes(self.wakes.clone())
    }

    /// The workflows loaded now.
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the workflows directory again; the catalog changes only if it can be read.
    pub(crate) fn reload(&self) -> Result<Arc<Catalog>, std::io::Error> {
        let catalog = Arc::new(Catalog::read(&self.workflows_dir)?);
        report(&catalog);
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = catalog.clone();
        Ok(catalog)
    }

    /// Brings the gauges up to date before they are rendered.
    pub(crate) fn render_metrics(&self) -> String {
        if let Ok(runs) = self.backend.store.list_runs(&RunFilter::default()) {
            let mut by_status: BTreeMap<&'static str, u64> = BTreeMap::new();
            for status in ["active", "waiting", "succeeded", "failed", "aborted"] {
                by_status.insert(status, 0);
            }
            for run in &runs {
                *by_status.entry(run.status.as_str()).or_default() += 1;
            }
            for (status, n) in by_status {
                metrics::gauge!("waygate_runs", "status" => status).set(n as f64);
            }
        }
        metrics::gauge!("waygate_drives_active").set(self.drives.count() as f64);
        metrics::gauge!("waygate_leases_held").set(self.drives.held() as f64);
        let catalog = self.catalog();
        metrics::gauge!("waygate_workflows_loaded").set(catalog.loaded.len() as f64);
        metrics::gauge!("waygate_workflows_rejected").set(catalog.rejected.len() as f64);
        self.metrics.render()
    }
}

/// Logs what a catalog loaded and left out.
fn report(catalog: &Catalog) {
    for (name, w) in &catalog.loaded {
        tracing::info!(workflow = %name, file = %w.file.display(), "workflow loaded");
    }
    for r in &catalog.rejected {
        tracing::error!(file = %r.file, problems = %r.problems.join("; "), "workflow not loaded");
    }
}

/// Serves until SIGTERM or SIGINT. `bound` is told the address once listening (the port
/// when `listen` asked for any).
pub async fn serve(
    config: Config,
    backend: Backend,
    bound: impl FnOnce(SocketAddr, &Catalog),
) -> Result<(), ServeError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| ServeError::Io { what, source }
    };
    let tokens = TokenSource::open(&config.tokens)?;
    let catalog = Catalog::read(&config.workflows).map_err(|source| ServeError::Workflows {
        dir: config.workflows.clone(),
        source,
    })?;
    report(&catalog);
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| ServeError::Metrics(e.to_string()))?;
    let mut term = signal(SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(io("SIGHUP handler"))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(io(&format!("cannot listen on {}", config.listen)))?;
    let addr = listener.local_addr().map_err(io("local address"))?;
    let (trigger, shutdown) = Shutdown::new();
    let shared = Arc::new(Shared {
        record: backend.record.clone(),
        backend,
        tokens,
        catalog: RwLock::new(Arc::new(catalog)),
        workflows_dir: config.workflows.clone(),
        drives: Drives::default(),
        streams: Arc::new(tokio::sync::Semaphore::new(config.limits.streams)),
        shutdown,
        metrics,
        limits: config.limits,
        wakes: Arc::default(),
        sessions: Default::default(),
        tls: config.tls.is_some(),
        chain: Default::default(),
    });
    bound(addr, &shared.catalog());
    shared.drives.resume(&shared);
    let keeper = shared.clone();
    let keeping = tokio::spawn(async move { keeper.drives.keep(&keeper).await });
    let app = crate::routes::router(shared.clone());
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.limits.header);
    let stopped = loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = TowerToHyperService::new(app.clone());
                let watcher = graceful.watcher();
                let http = http.clone();
                let tls = config.tls.clone();
                let handshake = config.limits.header;
                let stopping = shared.shutdown.clone();
                tokio::spawn(async move {
                    let served = match tls {
                        None => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                        Some(tls) => {
                            let Some(stream) = tls.handshake(stream, handshake, &stopping).await else {
                                return;
                            };
                            watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await
                        }
                    };
                    if let Err(e) = served {
                        tracing::debug!("connection: {e}");
                    }
                });
            }
            Some(()) = hup.recv() => {
                if let Err(e) = shared.reload() {
                    tracing::error!("cannot read the workflows directory again: {e}; keeping the workflows loaded");
                }
            }
            Some(()) = term.recv() => break Signal::Terminate,
            Some(()) = int.recv() => break Signal::Interrupt,
        }
    };
    stop(stopped, &trigger, graceful, &shared).await;
    let _ = keeping.await;
    Ok(())
}

/// Stops taking requests, lets those in flight finish, stops the drives.
async fn stop(signal: Signal, trigger: &Trigger, graceful: GracefulShutdown, shared: &Shared) {
    tracing::info!("{signal}: stopping");
    trigger_after_drain(trigger, graceful, shared.limits.drain).await;
    shared.drives.finish().await;
    tracing::info!("stopped");
}

async fn trigger_after_drain(trigger: &Trigger, graceful: GracefulShutdown, drain: Duration) {
    // Requests waiting on a drive's end are answered when it stops: fire first, then drain.
    trigger.fire(Signal::Terminate);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {drain:?}; closing them");
    }
}
