//! What every store command needs: the store, who is acting, and how to print.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use std::time::Duration;

use jiff::Timestamp;

use waygate_core::actor::check_actor_name;
use waygate_core::run::RunId;

use waygate_core::store::{
    EmbeddedStore, LockWait, Options, StopWaiting, Store, TimeSource, WaitNotice,
};
use waygate_executor::lock::{FileRunLocks, RunLocks};
use waygate_executor::{Clock, Engine, ProcessClock};
use waygate_postgres::{PgRunLocks, PgStore, Tables};

use crate::cli::{Format, Global};
use crate::exit::CliError;
use crate::live;

/// The store and the actor, from the global flags.
#[derive(Clone)]
pub struct App {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Who is acting, or why the OS user cannot be named as acting (then commands that record
    /// refuse, and commands that only read work).
    actor: Result<String, String>,
    /// Output format.
    pub format: Format,
    /// Who runs a run's entry actions: the kind of lock that goes with the store.
    run_locks: Arc<dyn RunLocks>,
    /// `--store` as given (a directory), for command lines printed back to the user.
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
    /// (a mistyped path is "no store at PATH", and nothing is written there). An `--as` (or
    /// `WAYGATE_ACTOR`) outside the actor-name set is a usage error here, whatever the command.
    pub fn open(global: &Global, create: bool) -> Result<App, CliError> {
        let actor = match &global.actor {
            Some(a) => {
                let a = a.trim();
                check_actor_name(a).map_err(|e| {
                    CliError::Usage(format!("--as (or WAYGATE_ACTOR) {:?}: {e}", a))
                })?;
                Ok(a.to_owned())
            }
            None => {
                let (name, source) = os_user();
                check_actor_name(&name).map(|()| name.clone()).map_err(|e| {
                    format!(
                        "the OS user {name:?} (from {source}) cannot be recorded as the actor: {e}; \
                         name yourself with --as NAME or WAYGATE_ACTOR"
                    )
                })
            }
        };
        let clock = process_clock();
        let stop_waiting = StopWaiting::default();
        let options = store_options(&stop_waiting);
        let opened = open_store(
            &global.store,
            create,
            options,
            Arc::new(move || clock.now()),
        )?;
        Ok(App {
            store: opened.store,
            run_locks: opened.run_locks,
            actor,
            format: global.format,
            dir: global.store.clone(),
            quiet: global.quiet,
            stop_waiting,
        })
    }

    /// `waygate ARGS` as a command line that works when pasted into a shell anywhere: with
    /// `--store` (absolute) unless the store is the default one, every word shell-quoted. A
    /// database URL is given without its password.
    pub fn command_line(&self, args: &[&str]) -> String {
        command_line_in(&self.dir, args)
    }

    /// Who is acting; a usage error when the OS user is not a valid actor name and no `--as`
    /// was given.
    pub fn actor(&self) -> Result<&str, CliError> {
        self.actor
            .as_deref()
            .map_err(|why| CliError::Usage(why.clone()))
    }

    /// An engine acting as this app's actor, for commands that record events.
    pub fn engine(&self) -> Result<Engine, CliError> {
        Ok(self.engine_as(self.actor()?.to_owned()))
    }

    /// An engine for commands that record nothing (`status`, `check`): they work whoever the
    /// OS user is.
    pub fn reader(&self) -> Engine {
        self.engine_as(self.actor.clone().unwrap_or_default())
    }

    /// Every command that runs workflow commands gets its engine here, so all of them show
    /// live output alike, unless `--quiet`.
    fn engine_as(&self, actor: String) -> Engine {
        let dir = self.dir.clone();
        let engine = Engine::new(self.store.clone(), actor)
            .with_clock(Arc::new(process_clock()))
            .with_run_locks(self.run_locks.clone())
            .with_approve_command(Arc::new(move |run, guard| {
                command_line_in(&dir, &["approve", run, guard])
            }));
        let output = if self.quiet { None } else { live::start() };
        match output {
            Some(sender) => engine.with_output(sender),
            None => engine,
        }
    }
}

/// `waygate ARGS` for the store in `dir`, as [`App::command_line`] words it.
fn command_line_in(dir: &std::path::Path, args: &[&str]) -> String {
    let mut words = vec!["waygate".to_owned()];
    if let Some(url) = postgres_url(dir) {
        words.push("--store".into());
        words.push(shell_word(&waygate_postgres::redact(url)));
    } else if dir != std::path::Path::new(crate::cli::DEFAULT_STORE) {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        words.push("--store".into());
        words.push(shell_word(&dir.to_string_lossy()));
    }
    words.extend(args.iter().map(|a| shell_word(a)));
    words.join(" ")
}

/// A store and the run locks that go with it (see `waygate_executor::lock`).
pub struct Opened {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Who runs a run's entry actions.
    pub run_locks: Arc<dyn RunLocks>,
    /// The embedded store itself, which a server holds open while it serves.
    pub embedded: Option<Arc<EmbeddedStore>>,
}

/// Opens the store `--store` names: the one place that chooses the backend. A `postgres://`
/// (or `postgresql://`) URL is the PostgreSQL store, its run locks advisory locks in the same
/// database; anything else is the directory of an embedded store. Either is created only when
/// `create`, by the commands that start runs (a database's tables, said on stderr). The URL is
/// not echoed: it may hold a password.
pub fn open_store(
    location: &Path,
    create: bool,
    options: Options,
    clock: TimeSource,
) -> Result<Opened, CliError> {
    if let Some(url) = postgres_url(location) {
        let (store, tables) = PgStore::open(url, create)?;
        match tables {
            Tables::Created => eprintln!(
                "created the waygate tables (schema {}) in {}",
                waygate_postgres::SCHEMA_VERSION,
                store.location()
            ),
            Tables::Migrated(from) => eprintln!(
                "migrated the waygate tables in {} from schema {from} to schema {} (docs/storage.md, \
                 PostgreSQL, Schema)",
                store.location(),
                waygate_postgres::SCHEMA_VERSION
            ),
            Tables::Existing => {}
        }
        let run_locks = PgRunLocks::new(store.url());
        return Ok(Opened {
            store: Arc::new(store.with_clock(clock)),
            run_locks: Arc::new(run_locks),
            embedded: None,
        });
    }
    // A server holds its store for as long as it serves: say which, not "waiting".
    if let Some(server) = crate::commands::serve::holder(location) {
        return Err(CliError::HeldByServer {
            dir: location.display().to_string(),
            server,
        });
    }
    let store = if create {
        EmbeddedStore::open_with(location, options)?
    } else {
        EmbeddedStore::open_existing_with(location, options)?
    };
    let store = Arc::new(store.with_clock(clock));
    Ok(Opened {
        store: store.clone(),
        run_locks: Arc::new(FileRunLocks::new(location.join("locks"))),
        embedded: Some(store),
    })
}

/// `location` as a PostgreSQL URL, when it is one.
fn postgres_url(location: &Path) -> Option<&str> {
    location
        .to_str()
        .filter(|text| waygate_postgres::is_postgres_url(text))
}

/// `location` as the directory of an embedded store, for what only the embedded store does
/// (`store salvage`); an error for a database URL.
pub fn embedded_dir(location: &Path) -> Result<&Path, CliError> {
    match postgres_url(location) {
        Some(_) => Err(CliError::BadInput(
            "`store salvage` works on a store directory, and --store or --to names a \
             PostgreSQL database: a database is repaired with PostgreSQL's own tools \
             (docs/storage.md, PostgreSQL)"
                .into(),
        )),
        None => Ok(location),
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
    // A holder's command line is another process's choice: printed escaped.
    waygate_core::text::escape_control(&format!(
        "waiting for the store at {}: held by {by} for at least {}s; going on when it is free",
        wait.dir.display(),
        wait.waited.as_secs()
    ))
    .into_owned()
}

/// `words` as one shell command line, each word quoted as [`shell_word`] does.
pub fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as one word of a command line pasted into a shell.
pub fn shell_word(word: &str) -> String {
    waygate_core::text::shell_word(word, waygate_core::text::ShellReader::Shell)
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

/// The OS user and where it came from: `$USER`, `$LOGNAME`, else the passwd entry of the
/// uid, else the uid. A name that does not fit the actor-name set is refused, never replaced
/// by another: the audit trail names people as they are known.
fn os_user() -> (String, &'static str) {
    for key in ["USER", "LOGNAME"] {
        if let Some(name) = std::env::var_os(key).filter(|v| !v.is_empty()) {
            return (
                name.to_string_lossy().into_owned(),
                if key == "USER" { "$USER" } else { "$LOGNAME" },
            );
        }
    }
    // SAFETY: getuid cannot fail. getpwuid returns null or a pointer to a static record that
    // stays valid until the next getpw* call; we copy the name out at once, single-threaded.
    unsafe {
        let uid = libc::getuid();
        let pw = libc::getpwuid(uid);
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            if let Ok(name) = std::ffi::CStr::from_ptr((*pw).pw_name).to_str() {
                if !name.is_empty() {
                    return (name.to_owned(), "the passwd entry");
                }
            }
        }
        (format!("uid-{uid}"), "the user id")
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        let cases = [
            ("/tmp/store", "/tmp/store"),
            ("sign-off", "sign-off"),
            ("my store", "'my store'"),
            ("it's", r"'it'\''s'"),
            ("$(rm -rf ~)", "'$(rm -rf ~)'"),
            ("", "''"),
        ];
        for (word, quoted) in cases {
            assert_eq!(shell_word(word), quoted, "{word}");
        }
    }
}
