//! [`PgStore`]: the `Store` trait on PostgreSQL.

use std::sync::{Mutex, MutexGuard};

use postgres::types::{ToSql, Type};
use postgres::{Client, GenericClient, IsolationLevel};
use waygate_core::event::Event;
use waygate_core::run::{Run, RunId};
use waygate_core::store::group::{GroupQueue, Write, Written};
use waygate_core::store::rules::sort_by_creation;
use waygate_core::store::{EventFilter, RunFilter, Store, StoreError, TimeSource, VerifyReport};

use crate::connect::{connect, failed, is_lost, redact, Write as Stage};
use crate::rows::{event_from, events_from, micros, run_from, EVENT_COLUMNS};
use crate::schema::{prepare, warn_if_not_durable, Found};
use crate::write::Writer;

/// The PostgreSQL store at one database URL. One handle serves many threads: writes that
/// arrive together share one transaction (group commit, `write.rs`); reads take a connection
/// of their own from a small pool.
pub struct PgStore {
    url: String,
    location: String,
    clock: Option<TimeSource>,
    /// The writing connection, used by the group's leader only.
    writer: Mutex<Option<Writer>>,
    /// Idle reading connections.
    readers: Mutex<Vec<Client>>,
    queue: GroupQueue,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// What [`PgStore::open`] did besides opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    /// The tables were there.
    Existing,
    /// They were created now, in an empty database.
    Created,
    /// They were at this older schema (1, 2 or 3) and were migrated to
    /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION) now (`docs/storage.md`, Schema).
    Migrated(i32),
}

/// At most this many idle reading connections are kept.
const IDLE_READERS: usize = 4;

impl PgStore {
    /// Opens the store in the database at `url`, creating its tables there when there are none
    /// and `create` (the CLI's `start` and `run`); without `create`, a database without them is
    /// [`StoreError::NoStore`]. Tables of another schema version are
    /// [`StoreError::UnsupportedVersion`], naming both.
    pub fn open(url: &str, create: bool) -> Result<(PgStore, Tables), StoreError> {
        let location = redact(url);
        let mut client = connect(url)?;
        let found = prepare(&mut client, &location, create)?;
        warn_if_not_durable(&mut client, &location)?;
        // This connection serves the first reads; the writing connection is opened by the
        // first write, so a command that only reads (or a role that may only read) opens one.
        let store = PgStore {
            url: url.to_owned(),
            location,
            clock: None,
            writer: Mutex::new(None),
            readers: Mutex::new(vec![client]),
            queue: GroupQueue::default(),
        };
        let opened = match found {
            Found::Existing => Tables::Existing,
            Found::Created => Tables::Created,
            Found::Migrated(from) => Tables::Migrated(from),
        };
        Ok((store, opened))
    }

    /// Stamps writes with `clock` instead of the system time (the CLI's process clock).
    pub fn with_clock(mut self, clock: TimeSource) -> PgStore {
        self.clock = Some(clock);
        self
    }

    /// The database, password left out.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The URL this store was opened with (password included): for a second connection of
    /// the same process, such as the run locks'.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Writes `writes` in order as one group (more may join it): each is checked and
    /// all-or-nothing on its own, exactly as if made one by one, in one transaction. For
    /// bulk imports (`store copy`) and benchmarks.
    pub fn write_all(&self, writes: Vec<Write>) -> Vec<Result<Written, StoreError>> {
        self.queue.submit(writes, |batch| {
            let tickets: Vec<_> = batch.iter().map(|(t, _)| *t).collect();
            let mut writer = lock(&self.writer);
            let result = self
                .writer(&mut writer)
                .and_then(|w| crate::write::write_group(w, &self.location, batch, &|| self.now()));
            match result {
                Ok(results) => results,
                Err(e) => {
                    // A lost connection is opened anew by the next write.
                    if writer.as_ref().is_some_and(|w| w.wire.is_closed()) {
                        *writer = None;
                    }
                    tickets
                        .into_iter()
                        .map(|t| (t, Err(e.duplicate())))
                        .collect()
                }
            }
        })
    }

    /// Copies `events` (a whole chain from seq 1, with their runs as they end up: `store
    /// copy`) into this empty store as they are: seq, time, actor, kind and hashes kept.
    /// Refused unless the store is empty.
    pub fn import(&self, runs: &[Run], events: &[Event]) -> Result<(), StoreError> {
        let mut writer = lock(&self.writer);
        let writer = self.writer(&mut writer)?;
        crate::write::import(writer, &self.location, runs, events)
    }

    fn now(&self) -> jiff::Timestamp {
        self.clock
            .as_ref()
            .map_or_else(jiff::Timestamp::now, |c| c())
    }

    fn writer<'a>(
        &self,
        writer: &'a mut MutexGuard<'_, Option<Writer>>,
    ) -> Result<&'a mut Writer, StoreError> {
        // A session that is over has nothing under way (the group that found it lost ended
        // with it), so a new connection takes its place before anything is sent: a session
        // the server ended while the connection sat idle costs the next write nothing.
        if writer.as_mut().is_some_and(Writer::ended) {
            **writer = None;
        }
        if writer.is_none() {
            **writer = Some(Writer::connect(&self.url, &self.location)?);
        }
        writer.as_mut().ok_or_else(|| StoreError::Backend {
            location: self.location.clone(),
            why: "no connection".into(),
        })
    }

    /// Runs `read` on a reading connection (from the pool, or a new one), returning the
    /// connection to the pool unless it was lost.
    ///
    /// An idle pooled connection does not know the server ended its session (a restart,
    /// `pg_terminate_backend`) until it is used. A read that finds its pooled connection lost
    /// drops the whole pool, since its other sessions ended with it, and is run once more on
    /// a new connection: a read changes nothing, so running it again is safe.
    pub(crate) fn read<T>(
        &self,
        mut read: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let pooled = lock(&self.readers).pop();
        let mut client = match pooled {
            Some(mut client) if !client.is_closed() => match read(&mut client) {
                Err(e) if is_lost(&e) => {
                    lock(&self.readers).clear();
                    connect(&self.url)?
                }
                done => return self.keep(client, done),
            },
            _ => connect(&self.url)?,
        };
        let result = read(&mut client);
        self.keep(client, result)
    }

    /// Returns `client` to the pool unless it was lost, and `result` as a store's answer.
    fn keep<T>(&self, client: Client, result: Result<T, postgres::Error>) -> Result<T, StoreError> {
        let result = result.map_err(|e| failed(&self.location, &e, Stage::None));
        if !client.is_closed() {
            let mut readers = lock(&self.readers);
            if readers.len() < IDLE_READERS {
                readers.push(client);
            }
        }
        result
    }

    fn run_row(
        client: &mut impl GenericClient,
        id: &RunId,
    ) -> Result<Option<(String, String)>, postgres::Error> {
        Ok(client
            .query_opt(
                "SELECT r.run, d.definition FROM waygate_runs r \
                 JOIN waygate_definitions d ON d.hash = r.definition_hash WHERE r.id = $1",
                &[&id.as_str()],
            )?
            .map(|row| (row.get(0), row.get(1))))
    }

    fn event_rows(
        client: &mut impl GenericClient,
        id: &RunId,
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        client.query_typed(
            &format!("SELECT {EVENT_COLUMNS} FROM waygate_events WHERE run_id = $1 ORDER BY seq"),
            &[(&id.as_str(), Type::TEXT)],
        )
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is one step: a poisoned lock holds consistent data.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store for PgStore {
    fn write(&self, op: Write) -> Result<Written, StoreError> {
        self.write_all(vec![op]).pop().unwrap_or_else(|| {
            Err(StoreError::Backend {
                location: self.location.clone(),
                why: "a write got no answer".into(),
            })
        })
    }

    fn load_run(&self, id: &RunId) -> Result<Run, StoreError> {
        let row = self.read(|client| Self::run_row(client, id))?;
        let (json, definition) = row.ok_or_else(|| StoreError::NotFound(id.clone()))?;
        run_from(&json, definition, &self.location)
    }

    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
        let rows = self.read(|client| {
            client.query_typed(
                "SELECT r.run, d.definition FROM waygate_runs r \
                 JOIN waygate_definitions d ON d.hash = r.definition_hash \
                 WHERE ($1::text IS NULL OR r.workflow = $1) AND ($2::text IS NULL OR r.env = $2)",
                &[(&filter.workflow, Type::TEXT), (&filter.env, Type::TEXT)],
            )
        })?;
        let mut runs = Vec::with_capacity(rows.len());
        for row in rows {
            let run = run_from(row.get(0), row.get(1), &self.location)?;
            if filter.matches(&run) {
                runs.push(run);
            }
        }
        sort_by_creation(&mut runs);
        Ok(runs)
    }

    fn run_events(&self, id: &RunId) -> Result<Vec<Event>, StoreError> {
        Ok(self.load_run_with_events(id)?.1)
    }

    fn load_run_with_events(&self, id: &RunId) -> Result<(Run, Vec<Event>), StoreError> {
        // One snapshot, so the run and its events agree.
        let (row, rows) = self.read(|client| {
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let row = Self::run_row(&mut tx, id)?;
            let rows = match row {
                Some(_) => Self::event_rows(&mut tx, id)?,
                None => Vec::new(),
            };
            tx.commit()?;
            Ok((row, rows))
        })?;
        let (json, definition) = row.ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let run = run_from(&json, definition, &self.location)?;
        Ok((run, events_from(&rows, &self.location)?))
    }

    fn scan_events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        // The query narrows; `EventFilter::matches` decides (the actor in any case, as
        // `actor::same_actor` compares names: `lower` keeps every row it would keep).
        let run = filter.run.as_ref().map(RunId::as_str);
        let since = filter.since.map(micros);
        let until = filter.until.map(micros);
        let params: [(&(dyn ToSql + Sync), Type); 7] = [
            (&run, Type::TEXT),
            (&filter.actor, Type::TEXT),
            (&filter.kind, Type::TEXT),
            (&since, Type::INT8),
            (&until, Type::INT8),
            (&filter.workflow, Type::TEXT),
            (&filter.env, Type::TEXT),
        ];
        let rows = self.read(|client| {
            client.query_typed(
                "SELECT e.seq, e.run_id, e.at, e.actor, e.kind, e.prev_hash, e.hash, \
                        r.workflow, r.env \
                 FROM waygate_events e LEFT JOIN waygate_runs r ON r.id = e.run_id \
                 WHERE ($1::text IS NULL OR e.run_id = $1) \
                   AND ($2::text IS NULL OR lower(e.actor) = lower($2)) \
                   AND ($3::text IS NULL OR e.kind_name = $3) \
                   AND ($4::bigint IS NULL OR e.at_us >= $4) \
                   AND ($5::bigint IS NULL OR e.at_us <= $5) \
                   AND ($6::text IS NULL OR r.workflow = $6) \
                   AND ($7::text IS NULL OR r.env = $7) \
                 ORDER BY e.seq",
                &params,
            )
        })?;
        let mut out = Vec::new();
        for row in &rows {
            let event = event_from(row).map_err(|why| StoreError::Backend {
                location: self.location.clone(),
                why: format!(
                    "an event's row is not readable: {why} (`waygate audit verify` names it)"
                ),
            })?;
            let workflow: Option<String> = row.get(7);
            let env: Option<String> = row.get(8);
            let (workflow, env) = match (workflow, env) {
                (Some(w), Some(e)) => (w, e),
                // An event of the store itself (`StoreSalvaged`), of no run.
                _ if event.run_id.as_str().is_empty() => (String::new(), String::new()),
                _ => continue,
            };
            if filter.matches(&event, &workflow, &env) {
                out.push(event);
            }
        }
        Ok(out)
    }

    fn verify(&self) -> Result<VerifyReport, StoreError> {
        crate::verify::verify(self)
    }
}
