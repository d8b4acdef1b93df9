//! [`PgLeases`]: which `waygate serve` replica drives which run, as a lease per run in the
//! `waygate_leases` table (`docs/storage.md`, "PostgreSQL", Leases).
//!
//! A lease is taken, renewed and given up by one conditional statement each, and every
//! expiry is computed by the database's clock (`now()`), never a replica's: replicas whose
//! clocks disagree still agree on who holds a run. A replica takes a run only when nobody
//! holds it or its lease has lapsed; it renews only leases that have not lapsed (a lapsed one
//! may be another replica's already), and stops driving a run whose lease it could not renew.
//! Each operation opens a connection of its own, so an unreachable database is an error of
//! that one call, and the next one tries again.

use std::io;
use std::time::Duration;

use waygate_core::run::RunId;

use crate::connect::connect;
use crate::run_locks::off_runtime;

/// The leases of one replica (`holder`) in the database at a URL.
#[derive(Clone)]
pub struct PgLeases {
    url: String,
    holder: String,
    ttl: Duration,
}

impl std::fmt::Debug for PgLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLeases")
            .field("location", &crate::redact(&self.url))
            .field("holder", &self.holder)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl PgLeases {
    /// The leases replica `holder` takes in the database at `url`, each lasting `ttl` from
    /// its last renewal. The tables must exist (`PgStore::open` made sure).
    pub fn new(url: impl Into<String>, holder: impl Into<String>, ttl: Duration) -> PgLeases {
        PgLeases {
            url: url.into(),
            holder: holder.into(),
            ttl,
        }
    }

    /// This replica's name in the table.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn interval(&self) -> String {
        format!("{} milliseconds", self.ttl.as_millis())
    }

    fn with_client<T: Send>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send,
    ) -> io::Result<T> {
        off_runtime(|| {
            let mut client = connect(&self.url).map_err(io::Error::other)?;
            f(&mut client).map_err(|e| {
                io::Error::other(crate::connect::failed(
                    &crate::redact(&self.url),
                    &e,
                    crate::connect::Write::Before,
                ))
            })
        })
    }

    /// Takes (or renews) the lease of `run` for this replica, driving as `actor`: `Ok(None)`
    /// when taken, `Ok(Some(holder))` when another replica holds it and its lease has not
    /// lapsed.
    pub fn take(&self, run: &RunId, actor: &str) -> io::Result<Option<String>> {
        let interval = self.interval();
        self.with_client(|client| {
            let taken = client.execute(
                "INSERT INTO waygate_leases AS l (run_id, holder, actor, expires_at) \
                 VALUES ($1, $2, $3, now() + $4::text::interval) \
                 ON CONFLICT (run_id) DO UPDATE \
                 SET holder = EXCLUDED.holder, actor = EXCLUDED.actor, \
                     expires_at = EXCLUDED.expires_at \
                 WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()",
                &[&run.as_str(), &self.holder, &actor, &interval],
            )?;
            if taken == 1 {
                return Ok(None);
            }
            let holder = client
                .query_opt(
                    "SELECT holder FROM waygate_leases WHERE run_id = $1",
                    &[&run.as_str()],
                )?
                .map(|row| row.get::<_, String>(0))
                .unwrap_or_default();
            Ok(Some(holder))
        })
    }

    /// Renews this replica's leases of `runs` that have not lapsed; returns the runs renewed
    /// (a run missing from the answer is no longer this replica's to drive).
    pub fn renew(&self, runs: &[RunId]) -> io::Result<Vec<RunId>> {
        let ids: Vec<&str> = runs.iter().map(RunId::as_str).collect();
        let interval = self.interval();
        self.with_client(|client| {
            let rows = client.query(
                "UPDATE waygate_leases SET expires_at = now() + $3::text::interval \
                 WHERE holder = $1 AND run_id = ANY($2) AND expires_at >= now() \
                 RETURNING run_id",
                &[&self.holder, &ids, &interval],
            )?;
            let mut renewed: Vec<RunId> = rows.iter().map(|r| RunId(r.get(0))).collect();
            renewed.sort();
            Ok(renewed)
        })
    }

    /// Gives the lease of `run` up at once, keeping the run listed for the next replica (a
    /// drive stopped by this replica's shutdown).
    pub fn release(&self, run: &RunId) -> io::Result<()> {
        self.with_client(|client| {
            client.execute(
                "UPDATE waygate_leases SET expires_at = now() - interval '1 millisecond' \
                 WHERE run_id = $1 AND holder = $2",
                &[&run.as_str(), &self.holder],
            )?;
            Ok(())
        })
    }

    /// Removes the lease of `run`, if this replica holds it (the drive ended).
    pub fn forget(&self, run: &RunId) -> io::Result<()> {
        self.with_client(|client| {
            client.execute(
                "DELETE FROM waygate_leases WHERE run_id = $1 AND holder = $2",
                &[&run.as_str(), &self.holder],
            )?;
            Ok(())
        })
    }

    /// The runs free to take (no lease, or a lapsed one), with the actor they are driven as.
    pub fn lapsed(&self) -> io::Result<Vec<(RunId, String)>> {
        self.with_client(|client| {
            let rows = client.query(
                "SELECT run_id, actor FROM waygate_leases WHERE expires_at < now() \
                 ORDER BY run_id",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|r| (RunId(r.get(0)), r.get::<_, String>(1)))
                .collect())
        })
    }
}
