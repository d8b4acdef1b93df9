//! Test support (the `testing` feature): a fresh, empty schema of the test database per test,
//! so tests run in parallel, each on a store of its own.
//!
//! The database is named by `WAYGATE_TEST_POSTGRES` (`.ci/postgres` starts one). Without it a
//! test is skipped with a printed reason, unless `WAYGATE_REQUIRE_POSTGRES` is set (CI), when
//! it fails.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};

/// A schema of its own in the test database, dropped when this is.
#[derive(Debug)]
pub struct TestSchema {
    base: String,
    name: String,
    url: String,
}

impl TestSchema {
    /// A new, empty schema; `None` (with the reason printed) when no test database is named
    /// and none is required.
    pub fn new() -> Option<TestSchema> {
        let base = match std::env::var("WAYGATE_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                assert!(
                    std::env::var_os("WAYGATE_REQUIRE_POSTGRES").is_none(),
                    "WAYGATE_REQUIRE_POSTGRES is set but WAYGATE_TEST_POSTGRES names no database"
                );
                eprintln!(
                    "skipped: WAYGATE_TEST_POSTGRES is not set (`eval \"$(.ci/postgres start)\"` \
                     starts a throwaway PostgreSQL and sets it)"
                );
                return None;
            }
        };
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "t{}_{}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed),
            jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
        );
        let mut admin = postgres::Client::connect(&base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot reach the test database {base}: {e}"));
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{name}");
        Some(TestSchema { base, name, url })
    }

    /// The URL of a store in this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `sql` in this schema as the test database's owner, triggers and all (what
    /// someone with `psql` and the owner's rights can do), through the real `psql`.
    pub fn psql(&self, sql: &str) -> std::process::Output {
        std::process::Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url,
                "-c",
                sql,
            ])
            .output()
            .unwrap()
    }
}

impl TestSchema {
    /// Waits up to `within` until the server has no session named `application_name` left:
    /// whether they all ended. A session whose client was killed ends only once the server
    /// has finished what the client last sent (a statement under way still commits), and
    /// `pg_terminate_backend` only signals.
    pub fn sessions_ended(&self, application_name: &str, within: std::time::Duration) -> bool {
        let Ok(mut admin) = postgres::Client::connect(&self.base, postgres::NoTls) else {
            return false;
        };
        let deadline = std::time::Instant::now() + within;
        loop {
            let left: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    &[&application_name],
                )
                .map_or(1, |row| row.get(0));
            if left == 0 {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
        }
    }
}
