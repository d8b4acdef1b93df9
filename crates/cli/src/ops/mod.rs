//! The operations the run commands call, with two implementations: on the store named by
//! `--store`, through the engine in this process, or through a `waygate serve` named by
//! `--server` (`remote.rs`). Commands hold an
//! [`Ops`] and render what it returns; they do not know which one they hold, so a command
//! prints and exits the same in both modes (`docs/cli.md`, Server mode).

mod remote;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use waygate_core::decide::OverrideTarget;
use waygate_core::event::Event;
use waygate_core::run::{Run, RunId};
use waygate_core::store::{EventFilter, RunFilter, VerifyReport};
use waygate_executor::engine::{
    ApproveOutcome, DriveEnd, DriveOptions, DryRun, Loaded, StepOutcome, TransitionReport,
};
use waygate_executor::Shutdown;

pub use remote::Remote;

/// A run to start, as `start` and `run` ask for it.
#[derive(Debug, Clone, Copy)]
pub struct Start<'a> {
    /// The workflow: a file here; the name of a workflow the server loaded there.
    pub workflow: &'a Path,
    /// The environment.
    pub env: &'a str,
    /// The values given for the workflow's vars.
    pub vars: &'a BTreeMap<String, String>,
}

/// A break-glass override as `override` asks for it; a server takes it as the body of its
/// `override`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct GuardOverride<'a> {
    /// The guard to mark passed.
    pub guard: &'a str,
    /// Why; required, never blank.
    pub reason: &'a str,
}

/// An approval as `approve` gives it; a server takes it as the body of its `approve`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Approval {
    /// The approval guard.
    pub guard: String,
    /// Why the caller approves (or withdraws); kept in the audit trail.
    pub comment: Option<String>,
    /// Withdraws the caller's approval of the guard instead.
    pub withdraw: bool,
}

use crate::app::App;
use crate::cli::{Format, Global};
use crate::exit::CliError;
use crate::progress::Sink;
use crate::signals;
use crate::workflow;

/// Where the run commands act.
#[derive(Debug)]
pub struct Ops {
    side: Side,
    /// The operator's signals, once a command asked to stop cleanly on them.
    shutdown: OnceLock<Shutdown>,
}

#[derive(Debug)]
enum Side {
    /// On the store here.
    Local(App),
    /// Through a server.
    Remote(Remote),
}

impl Ops {
    /// The operations the global flags ask for: a server when `--server` (or
    /// `WAYGATE_SERVER`) names one, else the store (created only when `create`).
    pub fn open(global: &Global, create: bool) -> Result<Ops, CliError> {
        let side = match &global.server {
            Some(url) => Side::Remote(Remote::new(global, url)?),
            None => Side::Local(App::open(global, create)?),
        };
        Ok(Ops {
            side,
            shutdown: OnceLock::new(),
        })
    }

    /// The store here, for the commands that only work on one (`store salvage`).
    pub fn local(&self) -> Option<&App> {
        match &self.side {
            Side::Local(app) => Some(app),
            Side::Remote(_) => None,
        }
    }

    /// From now on, SIGINT, SIGTERM and SIGHUP stop the command cleanly (`docs/cli.md`,
    /// Signals), also while it waits for a store another process holds. Against a server
    /// they end only this process: what the server does goes on.
    pub fn stop_on_signals(&self) {
        if let Side::Local(app) = &self.side {
            self.shutdown(app);
        }
    }

    fn shutdown(&self, app: &App) -> Shutdown {
        self.shutdown
            .get_or_init(|| signals::listen(&app.stop_waiting))
            .clone()
    }

    /// The output format.
    pub fn format(&self) -> Format {
        match &self.side {
            Side::Local(app) => app.format,
            Side::Remote(r) => r.format,
        }
    }

    /// `waygate ARGS` as a command line that works when pasted into a shell.
    pub fn command_line(&self, args: &[&str]) -> String {
        match &self.side {
            Side::Local(app) => app.command_line(args),
            Side::Remote(r) => r.command_line(args),
        }
    }

    /// Starts a run.
    pub async fn start(&self, start: Start<'_>) -> Result<Run, CliError> {
        match &self.side {
            Side::Local(app) => {
                let loaded = workflow::load(start.workflow)?;
                let started = app
                    .engine()?
                    .start(
                        &loaded.workflow,
                        &loaded.file,
                        &loaded.text,
                        start.env,
                        start.vars,
                    )
                    .await?;
                Ok(started.run)
            }
            Side::Remote(r) => r.start(start).await,
        }
    }

    /// The run with its pinned workflow and events.
    pub async fn load(&self, id: &RunId) -> Result<Loaded, CliError> {
        Ok(self.status(id).await?.0)
    }

    /// The run, and whether some process runs its entry actions right now.
    pub async fn status(&self, id: &RunId) -> Result<(Loaded, bool), CliError> {
        match &self.side {
            Side::Local(app) => {
                let engine = app.reader();
                let loaded = engine.load(id).await?;
                let running = engine.actions_running(id)?;
                Ok((loaded, running))
            }
            Side::Remote(r) => r.status(id).await,
        }
    }

    /// What guards see of the run, for rendering its approval prompts as they do.
    pub fn context(&self, loaded: &Loaded) -> waygate_executor::GuardContext {
        match &self.side {
            Side::Local(app) => app.reader().context(loaded),
            Side::Remote(r) => r.context(loaded),
        }
    }

    /// Why the run's recorded directory cannot be used, when this side can tell: a server's
    /// runs live in directories of the server's host.
    pub fn workdir_problem(&self, loaded: &Loaded) -> Option<String> {
        match (&self.side, loaded.ensure_workdir()) {
            (Side::Local(_), Err(waygate_executor::EngineError::Workdir { problem, .. })) => {
                Some(problem)
            }
            _ => None,
        }
    }

    /// `check`: the guards evaluated, nothing recorded.
    pub async fn dry_run(&self, id: &RunId, to: Option<&str>) -> Result<DryRun, CliError> {
        match &self.side {
            Side::Local(app) => {
                let engine = app.reader().with_shutdown(self.shutdown(app));
                Ok(engine.dry_run(id, to).await?)
            }
            Side::Remote(r) => r.dry_run(id, to).await,
        }
    }

    /// `advance`: one step.
    pub async fn advance(
        &self,
        id: &RunId,
        to: Option<&str>,
    ) -> Result<(StepOutcome, Vec<TransitionReport>), CliError> {
        match &self.side {
            Side::Local(app) => {
                let engine = app.engine()?.with_shutdown(self.shutdown(app));
                Ok(engine.advance(id, to).await?)
            }
            Side::Remote(r) => r.advance(id, to).await,
        }
    }

    /// `approve` (or `--withdraw`); returns where the guard stands and who acted.
    pub async fn approve(
        &self,
        id: &RunId,
        approval: Approval,
    ) -> Result<(ApproveOutcome, String), CliError> {
        match &self.side {
            Side::Local(app) => {
                let engine = app.engine()?;
                let Approval {
                    guard,
                    comment,
                    withdraw,
                } = approval;
                let outcome = if withdraw {
                    engine.withdraw(id, &guard, comment).await?
                } else {
                    engine.approve(id, &guard, comment).await?
                };
                Ok((outcome, engine.actor().to_owned()))
            }
            Side::Remote(r) => r.approve(id, &approval).await,
        }
    }

    /// `rollback`.
    pub async fn rollback(&self, id: &RunId, reason: &str) -> Result<StepOutcome, CliError> {
        match &self.side {
            Side::Local(app) => {
                let engine = app.engine()?.with_shutdown(self.shutdown(app));
                Ok(engine.rollback(id, reason).await?)
            }
            Side::Remote(r) => r.rollback(id, reason).await,
        }
    }

    /// `override`: marks `guard` passed for this visit of the run's state; returns what it
    /// marked and who acted.
    pub async fn override_guard(
        &self,
        id: &RunId,
        wanted: GuardOverride<'_>,
    ) -> Result<(OverrideTarget, String), CliError> {
        match &self.side {
            Side::Local(app) => {
                let engine = app.engine()?;
                let target = engine
                    .override_guard(id, wanted.guard, wanted.reason)
                    .await?;
                Ok((target, engine.actor().to_owned()))
            }
            Side::Remote(r) => r.override_guard(id, wanted).await,
        }
    }

    /// `abort`.
    pub async fn abort(&self, id: &RunId, reason: &str) -> Result<Run, CliError> {
        match &self.side {
            Side::Local(app) => Ok(app.engine()?.abort(id, reason).await?),
            Side::Remote(r) => r.abort(id, reason).await,
        }
    }

    /// `drive`: until the run ends (or waits, with `no_wait`), progress on stderr. Here the
    /// drive runs in this process, with `vars` (secrets given to `run` are not stored); on a
    /// server, the server drives and goes on if this process stops.
    pub async fn drive(
        &self,
        id: &RunId,
        no_wait: bool,
        vars: BTreeMap<String, String>,
    ) -> Result<DriveEnd, CliError> {
        match &self.side {
            Side::Local(app) => {
                let engine = app
                    .engine()?
                    .with_overrides(vars)
                    .with_shutdown(self.shutdown(app));
                let mut sink = Sink::new();
                let options = DriveOptions {
                    no_wait,
                    ..DriveOptions::default()
                };
                let end = engine.drive(id, options, &mut sink).await?;
                sink.finish();
                Ok(end)
            }
            Side::Remote(r) => r.drive(id, no_wait).await,
        }
    }

    /// Calls `on_event` with each event of the run after `after` as it is recorded, until the
    /// run ends (here by looking every second; a server streams them).
    pub async fn follow(
        &self,
        id: &RunId,
        mut after: Option<u64>,
        on_event: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), CliError> {
        match &self.side {
            Side::Local(app) => loop {
                let engine = app.reader();
                let owned = id.clone();
                let (run, events) = engine
                    .blocking(move |s| s.load_run_with_events(&owned))
                    .await?;
                let seen = after;
                for e in events.iter().filter(|e| seen.is_none_or(|a| e.seq > a)) {
                    on_event(e);
                    after = Some(e.seq);
                }
                if run.status.is_ended() {
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            },
            Side::Remote(r) => r.follow(id, after, on_event).await,
        }
    }

    /// [`Ops::list_runs`] for commands on the async runtime.
    pub async fn list_runs_now(&self, filter: &RunFilter) -> Result<Vec<Run>, CliError> {
        match &self.side {
            Side::Local(app) => {
                let filter = filter.clone();
                Ok(app.reader().blocking(move |s| s.list_runs(&filter)).await?)
            }
            Side::Remote(r) => r.list_runs_now(filter).await,
        }
    }

    /// `runs`.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, CliError> {
        match &self.side {
            Side::Local(app) => Ok(app.store.list_runs(filter)?),
            Side::Remote(r) => r.list_runs(filter),
        }
    }

    /// One run and its events in one read (one snapshot), for the commands that run off any
    /// async runtime (`audit report`).
    pub fn run_with_events(&self, id: &RunId) -> Result<(Run, Vec<Event>), CliError> {
        match &self.side {
            Side::Local(app) => Ok(app.store.load_run_with_events(id)?),
            Side::Remote(r) => r.run_with_events(id),
        }
    }

    /// Where the runs are, for people: the store (a directory made absolute, or a URL) or the
    /// server's URL. A password in a URL is the caller's to redact.
    pub fn store_name(&self) -> String {
        match &self.side {
            Side::Local(app) => std::fs::canonicalize(&app.dir)
                .unwrap_or_else(|_| app.dir.clone())
                .to_string_lossy()
                .into_owned(),
            Side::Remote(r) => r.base().to_owned(),
        }
    }

    /// Whether `path` is one of the store's own files (a server's store is on its host: no
    /// file here is).
    pub fn store_holds(&self, path: &Path) -> Result<bool, CliError> {
        match &self.side {
            Side::Local(app) => Ok(app.store.holds_path(path)?),
            Side::Remote(_) => Ok(false),
        }
    }

    /// `text` with the server token, wherever it appears in it, as `***`: for what is written
    /// down for others (the audit report's command line).
    pub fn without_token(&self, text: &str) -> String {
        match &self.side {
            Side::Remote(r) => r.without_token(text),
            Side::Local(_) => text.to_owned(),
        }
    }

    /// `history`.
    pub fn run_events(&self, id: &RunId) -> Result<Vec<Event>, CliError> {
        match &self.side {
            Side::Local(app) => Ok(app.store.run_events(id)?),
            Side::Remote(r) => r.run_events(id),
        }
    }

    /// `audit`.
    pub fn scan_events(&self, filter: &EventFilter) -> Result<Vec<Event>, CliError> {
        match &self.side {
            Side::Local(app) => Ok(app.store.scan_events(filter)?),
            Side::Remote(r) => r.scan_events(filter),
        }
    }

    /// `audit verify [--expect-head HASH]`.
    pub fn verify(&self, expect_head: Option<&str>) -> Result<VerifyReport, CliError> {
        match &self.side {
            Side::Local(app) => Ok(match expect_head {
                Some(hash) => app.store.verify_reaching(hash)?,
                None => app.store.verify()?,
            }),
            Side::Remote(r) => r.verify(expect_head),
        }
    }
}
