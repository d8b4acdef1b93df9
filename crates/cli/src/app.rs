//! What every store command needs: the store, who is acting, and how to print.

use std::path::PathBuf;
use std::sync::Arc;

use waygate_core::run::RunId;
use waygate_core::store::{EmbeddedStore, Store};
use waygate_executor::lock::RunLocks;
use waygate_executor::Engine;

use crate::cli::{Format, Global};
use crate::exit::CliError;

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
        let store = if create {
            EmbeddedStore::open(&global.store)?
        } else {
            EmbeddedStore::open_existing(&global.store)?
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
        })
    }

    /// An engine acting as this app's actor.
    pub fn engine(&self) -> Engine {
        Engine::new(self.store.clone(), self.actor.clone())
            .with_run_locks(RunLocks::new(self.dir.join("locks")))
    }
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
