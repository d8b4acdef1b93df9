//! What every store command needs: the store, who is acting, and how to print.

use std::path::PathBuf;
use std::sync::Arc;

use std::time::Duration;
use waygate_core::run::RunId;

use waygate_core::store::{EmbeddedStore, LockWait, Options, StopWaiting, Store, WaitNotice};
use waygate_executor::lock::RunLocks;
use waygate_executor::Engine;

use crate::cli::{Format, Global};
use crate::exit::CliError;
use crate::live;

/// The store and the actor, from the global flags.
#[derive(Clone)]
pub struct App {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Who is acting.
    pub actor: String,
    /// Output format.
    pub format: Format,
    /// The store directory: run locks live in its `locks/`.
    pub dir: PathBuf,
    /// `--quiet`: no live output of commands.
    pub quiet: bool,
    /// Stops waiting for a store another process holds (`drive` sets it on Ctrl-C).
    pub stop_waiting: StopWaiting,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("actor", &self.actor)
            .field("format", &self.format)
            .finish()
    }
}

impl App {
    /// Opens the store in `--store DIR`. Only commands that start runs pass `create`: they
    /// create a store in a missing or empty directory; every other command needs one to exist
    /// (a mistyped path is "no store at PATH", and nothing is written there).
    pub fn open(global: &Global, create: bool) -> Result<App, CliError> {
        let stop_waiting = StopWaiting::default();
        let options = store_options(&stop_waiting);
        let store = if create {
            EmbeddedStore::open_with(&global.store, options)?
        } else {
            EmbeddedStore::open_existing_with(&global.store, options)?
        };
        let actor = match &global.actor {
            Some(a) if !a.trim().is_empty() => a.trim().to_owned(),
            Some(_) => return Err(CliError::BadInput("--as needs a name".into())),
            None => os_user(),
        };
        Ok(App {
            store: Arc::new(store),
            actor,
            format: global.format,
            dir: global.store.clone(),
            quiet: global.quiet,
            stop_waiting,
        })
    }

    /// An engine acting as this app's actor. Every command that runs workflow commands gets
    /// it here, so all of them show live output alike, unless `--quiet`.
    pub fn engine(&self) -> Engine {
        let engine = Engine::new(self.store.clone(), self.actor.clone())
            .with_run_locks(RunLocks::new(self.dir.join("locks")));
        let output = if self.quiet { None } else { live::start() };
        match output {
            Some(sender) => engine.with_output(sender),
            None => engine,
        }
    }
}

/// How the CLI uses the store: a command whose store is held by another process waits for
/// it as long as it takes (a `drive` watching for an hour must not die because a neighbour
/// held the store for a while), saying on stderr who holds it, until `stop` is set.
pub fn store_options(stop: &StopWaiting) -> Options {
    Options {
        lock_timeout: Duration::MAX,
        on_wait: Some(WaitNotice(Arc::new(|wait: &LockWait| {
            eprintln!("{}", waiting_line(wait));
        }))),
        stop_waiting: Some(stop.clone()),
        ..Options::default()
    }
}

/// "waiting for the store at DIR: held by pid 4242 (waygate audit verify) (waited 3s) ...".
fn waiting_line(wait: &LockWait) -> String {
    let holders: Vec<String> = wait
        .holders
        .iter()
        .map(|h| {
            let who = match h.pid {
                Some(pid) => format!("pid {pid}"),
                None => "a process".to_owned(),
            };
            let what = h
                .command
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let how = if h.shared { ", reading" } else { "" };
            format!("{who}{what}{how}")
        })
        .collect();
    let by = if holders.is_empty() {
        "another process".to_owned()
    } else {
        holders.join(" and ")
    };
    format!(
        "waiting for the store at {}: held by {by} for at least {}s; going on when it is free",
        wait.dir.display(),
        wait.waited.as_secs()
    )
}

/// A run id as typed by the user.
pub fn run_id(text: &str) -> RunId {
    RunId(text.trim().to_owned())
}

/// The OS user: `$USER`, `$LOGNAME`, else the passwd entry of the uid, else the uid.
fn os_user() -> String {
    if let Some(name) = ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    {
        return name;
    }
    // SAFETY: getuid cannot fail. getpwuid returns null or a pointer to a static record that
    // stays valid until the next getpw* call; we copy the name out at once, single-threaded.
    unsafe {
        let uid = libc::getuid();
        let pw = libc::getpwuid(uid);
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            if let Ok(name) = std::ffi::CStr::from_ptr((*pw).pw_name).to_str() {
                if !name.is_empty() {
                    return name.to_owned();
                }
            }
        }
        format!("uid-{uid}")
    }
}
