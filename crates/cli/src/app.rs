//! What every store command needs: the store, who is acting, and how to print.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;

use waygate_core::run::RunId;
use waygate_core::store::{EmbeddedStore, Store};
use waygate_executor::lock::RunLocks;
use waygate_executor::{Clock, Engine, ProcessClock};

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
    /// Opens the store in `--store DIR` (created if missing).
    pub fn open(global: &Global) -> Result<App, CliError> {
        let clock = process_clock();
        let store = EmbeddedStore::open(&global.store)?.with_clock(Arc::new(move || clock.now()));
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
        })
    }

    /// An engine acting as this app's actor. Every command that runs workflow commands gets
    /// it here, so all of them show live output alike, unless `--quiet`.
    pub fn engine(&self) -> Engine {
        let engine = Engine::new(self.store.clone(), self.actor.clone())
            .with_clock(Arc::new(process_clock()))
            .with_run_locks(RunLocks::new(self.dir.join("locks")));
        let output = if self.quiet { None } else { live::start() };
        match output {
            Some(sender) => engine.with_output(sender),
            None => engine,
        }
    }
}

/// This process's one clock, for its waits, the times its writes are stamped with and the
/// countdowns it prints (docs/storage.md, Times and clocks): the wall clock read once, then
/// the monotonic clock, so setting the wall clock while `drive` waits neither stretches nor
/// skips a bake.
pub fn process_clock() -> ProcessClock {
    static CLOCK: OnceLock<ProcessClock> = OnceLock::new();
    *CLOCK.get_or_init(|| ProcessClock::starting_at(wall_clock()))
}

/// The wall clock. Debug builds (the ones the tests run) add `WAYGATE_TEST_CLOCK_OFFSET`
/// seconds, so that an end-to-end test can play a process whose clock is wrong; release builds
/// ignore the variable (docs/cli.md, Environment).
fn wall_clock() -> Timestamp {
    let now = Timestamp::now();
    #[cfg(debug_assertions)]
    if let Some(secs) = std::env::var("WAYGATE_TEST_CLOCK_OFFSET")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
    {
        return now
            .saturating_add(jiff::SignedDuration::from_secs(secs))
            .unwrap_or(now);
    }
    now
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
