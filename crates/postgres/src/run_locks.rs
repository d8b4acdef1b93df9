//! [`PgRunLocks`]: who runs a run's entry actions, as a PostgreSQL session advisory lock.
//!
//! The lock lives as long as the connection that took it: dropping the [`RunLock`] closes
//! the connection, and a process that dies (`kill -9` included) loses its connection, so the
//! server lets go. Processes on different machines see the same locks. The key is the run id
//! in the store's schema (`hashtextextended`, 64 bits), computed by the server.

use std::io;

use waygate_core::run::RunId;
use waygate_executor::lock::{RunLock, RunLocks};

use crate::connect::{connect, db_message};

/// [`RunLocks`] for a [`PgStore`](crate::PgStore): one connection per held lock.
#[derive(Clone)]
pub struct PgRunLocks {
    url: String,
}

impl std::fmt::Debug for PgRunLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRunLocks")
            .field("location", &crate::redact(&self.url))
            .finish()
    }
}

const KEY: &str = "hashtextextended(current_schema() || ' run ' || $1, 0)";

impl PgRunLocks {
    /// Locks in the database at `url`.
    pub fn new(url: impl Into<String>) -> PgRunLocks {
        PgRunLocks { url: url.into() }
    }

    fn try_lock(&self, run: &RunId) -> io::Result<Option<RunLock>> {
        off_runtime(|| {
            let mut client = connect(&self.url).map_err(io::Error::other)?;
            // The lock's connection sits idle while its holder runs actions, and a server
            // that ends idle sessions (`idle_session_timeout`, PostgreSQL 14 and later) would
            // let go of the lock behind the holder's back: not for this session.
            client
                .batch_execute(
                    "SELECT set_config(name, '0', false) FROM pg_settings \
                     WHERE name = 'idle_session_timeout'",
                )
                .map_err(lock_error)?;
            let got: bool = client
                .query_one(
                    &format!("SELECT pg_try_advisory_lock({KEY})"),
                    &[&run.as_str()],
                )
                .map_err(lock_error)?
                .get(0);
            Ok(got.then(|| RunLock::new(Held(std::sync::Mutex::new(Some(client))))))
        })
    }
}

/// A failed statement of a lock's connection, in the server's words: the `postgres` crate
/// says only "db error" of an answer such as "terminating connection due to administrator
/// command", and that was all `drive` printed ("run lock: db error").
fn lock_error(e: postgres::Error) -> io::Error {
    io::Error::other(db_message(&e))
}

/// Runs `f` on a thread of its own: the blocking client runs a small runtime of its own,
/// which must not start (nor be dropped) on a thread of the caller's async runtime, and the
/// engine asks whether a lock is held from async code.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// The connection holding a lock; closing it lets go.
struct Held(std::sync::Mutex<Option<postgres::Client>>);

impl Drop for Held {
    fn drop(&mut self) {
        let client = self.0.get_mut().map_or(None, Option::take);
        off_runtime(move || drop(client));
    }
}

impl RunLocks for PgRunLocks {
    fn take(&self, run: &RunId) -> io::Result<Option<RunLock>> {
        for pause_ms in [5, 10, 20, 40, 40] {
            if let Some(lock) = self.try_lock(run)? {
                return Ok(Some(lock));
            }
            std::thread::sleep(std::time::Duration::from_millis(pause_ms));
        }
        self.try_lock(run)
    }

    fn is_held(&self, run: &RunId) -> io::Result<bool> {
        off_runtime(|| self.is_held_here(run))
    }
}

impl PgRunLocks {
    fn is_held_here(&self, run: &RunId) -> io::Result<bool> {
        let mut client = connect(&self.url).map_err(io::Error::other)?;
        let held: bool = client
            .query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                     AND granted AND database = (SELECT oid FROM pg_database \
                                                 WHERE datname = current_database()) \
                     AND ((classid::bigint << 32) | objid::bigint) = {KEY})"
                ),
                &[&run.as_str()],
            )
            .map_err(lock_error)?
            .get(0);
        Ok(held)
    }
}

#[cfg(all(test, feature = "testing"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::TestSchema;
    use std::time::{Duration, Instant};

    #[test]
    fn a_lock_statement_that_fails_says_what_the_server_said() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        let mut client = connect(schema.url()).unwrap();
        let e = client.batch_execute("SELECT 1/0").unwrap_err();
        assert_eq!(lock_error(e).to_string(), "division by zero");
    }

    #[test]
    fn a_lock_outlives_a_server_that_ends_idle_sessions_and_goes_with_its_holder() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        // Sessions idle for 300 ms are ended by the server (here asked for by the URL; a
        // role's or the server's setting does the same).
        let locks = PgRunLocks::new(format!("{}%20-cidle_session_timeout%3D300", schema.url()));
        let others = PgRunLocks::new(schema.url());
        let run = RunId("r1".into());
        let held = locks.take(&run).unwrap().expect("the lock is free");
        std::thread::sleep(Duration::from_millis(1000));
        assert!(
            others.is_held(&run).unwrap(),
            "the lock went with an idle session"
        );
        assert!(others.take(&run).unwrap().is_none());
        drop(held);
        // The server lets go once the holder's session has ended.
        let deadline = Instant::now() + Duration::from_secs(5);
        while others.is_held(&run).unwrap() {
            assert!(Instant::now() < deadline, "the lock outlived its holder");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
