//! The tables, created on first use, and the schema version a database carries
//! (`docs/storage.md`, "PostgreSQL", Schema).

use postgres::Client;
use waygate_core::event::GENESIS_HASH;
use waygate_core::run::{PairHeldTwice, RunId};
use waygate_core::store::StoreError;

use postgres::error::SqlState;

use crate::connect::{db_message, failed, Write};

/// The schema this waygate reads and writes. A database with another version is refused,
/// naming both.
pub const SCHEMA_VERSION: i32 = 4;

/// The tables of [`SCHEMA_VERSION`], in the connection's current schema (the first of its
/// `search_path`, normally `public`).
const CREATE: &str = r#"
CREATE TABLE waygate_schema (
    version integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Each pinned definition once, by the SHA-256 of its text (lowercase hex), written when a run
-- starts with it (a definition already there is not written again).
CREATE TABLE waygate_definitions (
    hash text PRIMARY KEY,
    definition text NOT NULL
);
-- Every commit rewrites its run's row. Half of each page is kept free for the new versions,
-- so the update stays on the page (a HOT update: no index entry, no new page) and the dead
-- versions are pruned as the page fills (docs/performance.md, PostgreSQL store). The columns
-- a commit never changes come first and the run's JSON begins with the fields a commit
-- changes: PostgreSQL logs an update on the page as the bytes between the old and new row's
-- common beginning and common end, so a commit logs little more than what it changed.
CREATE TABLE waygate_runs (
    id text PRIMARY KEY,
    workflow text NOT NULL,
    env text NOT NULL,
    -- core's Run::lock_key: its shared lock's key, else its (workflow, env) pair's. One
    -- active run per key, and per (workflow, env) (ONE_ACTIVE_PAIR): core's run::LockKeys.
    lock_key text NOT NULL,
    -- the key of its definition in waygate_definitions
    definition_hash text NOT NULL,
    -- the seq of the run's last event: the greatest of them all is where the chain ends,
    -- which verify holds the events to (an event deleted at the end, or one added past it)
    last_seq bigint NOT NULL,
    status text NOT NULL,
    active boolean NOT NULL,
    version bigint NOT NULL,
    -- the run as JSON, without its definition (rows.rs: run_json)
    run text NOT NULL
) WITH (fillfactor = 50);
CREATE UNIQUE INDEX waygate_runs_one_active ON waygate_runs (lock_key) WHERE active;
CREATE INDEX waygate_runs_workflow_env ON waygate_runs (workflow, env);
CREATE TABLE waygate_events (
    seq bigint PRIMARY KEY,
    run_id text NOT NULL,
    -- the time as the hash covers it (RFC 3339, nanoseconds), and in microseconds for the index
    at text NOT NULL,
    at_us bigint NOT NULL,
    actor text NOT NULL,
    kind_name text NOT NULL,
    -- the kind's compact JSON, as the hash covers it
    kind text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL
);
CREATE INDEX waygate_events_run ON waygate_events (run_id, seq);
-- Events are numbered in commit order and stamped no earlier than the one before
-- (docs/storage.md, Times and clocks), so time follows the table's order: a block-range index
-- finds a time window at a fraction of a b-tree's cost per insert.
CREATE INDEX waygate_events_at ON waygate_events USING brin (at_us) WITH (autosummarize = on);
CREATE FUNCTION waygate_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'waygate_events is append-only: % refused', TG_OP
        USING HINT = 'the audit chain is never changed; see docs/storage.md, PostgreSQL';
END
$$;
CREATE TRIGGER waygate_events_no_change BEFORE UPDATE OR DELETE ON waygate_events
    FOR EACH ROW EXECUTE FUNCTION waygate_events_append_only();
CREATE TRIGGER waygate_events_no_truncate BEFORE TRUNCATE ON waygate_events
    FOR EACH STATEMENT EXECUTE FUNCTION waygate_events_append_only();
"#;

/// A run holds its (workflow, env) pair's lock as well as its shared lock (core's
/// `run::LockKeys`): one active run per pair, whatever lock it names. Created with the tables,
/// and on a database whose tables were created without it (by [`migrate`]).
const ONE_ACTIVE_PAIR: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS waygate_runs_one_active_pair ON waygate_runs (workflow, env) WHERE active";

/// What schema 2 adds to schema 1: the leases of the runs servers drive (`lease.rs`). A
/// database of schema 1 gets it on first use ([`Found::Migrated`]), before [`TO_3`].
const LEASES: &str = r#"
-- Which server replica drives which run, until when (the database's clock). A row whose
-- expiry has passed is free for any replica to take.
CREATE TABLE IF NOT EXISTS waygate_leases (
    run_id text PRIMARY KEY,
    holder text NOT NULL,
    actor text NOT NULL,
    expires_at timestamptz NOT NULL
);
"#;

/// What a database of schema 1 gets besides the leases: the room on each page of
/// `waygate_runs` that keeps a commit's update of its run on the page (`CREATE` says why).
/// Pages written before keep their layout until they are rewritten.
const RUNS_FILLFACTOR: &str = "ALTER TABLE waygate_runs SET (fillfactor = 50)";

/// What schema 3 changes in schema 2: each definition once in `waygate_definitions`, keyed by
/// its hash (computed here from the text, as `rows::definition_key` does), out of the runs'
/// rows; and the time index as a block-range index. Runs and events are kept as they are.
const TO_3: &str = r#"
CREATE TABLE waygate_definitions (
    hash text PRIMARY KEY,
    definition text NOT NULL
);
ALTER TABLE waygate_runs ADD COLUMN definition_hash text;
UPDATE waygate_runs SET definition_hash = encode(sha256(convert_to(definition, 'UTF8')), 'hex');
INSERT INTO waygate_definitions (hash, definition)
    SELECT DISTINCT ON (definition_hash) definition_hash, definition FROM waygate_runs;
ALTER TABLE waygate_runs ALTER COLUMN definition_hash SET NOT NULL;
ALTER TABLE waygate_runs DROP COLUMN definition;
DROP INDEX waygate_events_at;
CREATE INDEX waygate_events_at ON waygate_events USING brin (at_us) WITH (autosummarize = on);
"#;

/// What schema 4 changes in schema 3: no head row. The chain's end is its last event (the
/// greatest `seq`), found by the primary key; each run's row records the seq of its last
/// event, which is what `verify` holds the end to. The column goes where `ALTER TABLE` puts
/// it, at the end of the row (a database created at schema 4 has it before `status`: only
/// how much an update logs differs, docs/storage.md).
const TO_4: &str = r#"
ALTER TABLE waygate_runs ADD COLUMN last_seq bigint;
UPDATE waygate_runs r SET last_seq =
    coalesce((SELECT max(seq) FROM waygate_events e WHERE e.run_id = r.id), 0);
ALTER TABLE waygate_runs ALTER COLUMN last_seq SET NOT NULL;
DROP TABLE waygate_head;
"#;

/// What [`prepare`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// The tables were there, at [`SCHEMA_VERSION`].
    Existing,
    /// They were created now.
    Created,
    /// They were at this older schema and were brought to [`SCHEMA_VERSION`] now.
    Migrated(i32),
}

/// Checks the tables' version, creating them first when `create` and there are none. Two
/// processes creating them at once serialise on an advisory lock; the second finds them.
pub(crate) fn prepare(
    client: &mut Client,
    location: &str,
    create: bool,
) -> Result<Found, StoreError> {
    if let Some(found) = version(client, location)? {
        if (1..SCHEMA_VERSION).contains(&found) {
            return match under_schema_lock(client, location, migrate)? {
                Some(from) => Ok(Found::Migrated(from)),
                // Another process migrated meanwhile: look again.
                None => prepare(client, location, false),
            };
        }
        return check(found, location).map(|()| Found::Existing);
    }
    if !create {
        return Err(StoreError::NoStore {
            location: location.to_owned(),
        });
    }
    match under_schema_lock(client, location, create_tables)? {
        true => Ok(Found::Created),
        false => prepare(client, location, false),
    }
}

/// Runs `f` holding the session lock every change of the tables takes. A session lock, taken
/// outside the transaction that looks: a transaction that began before the other process
/// committed its tables would not see them in the catalog.
fn under_schema_lock<T>(
    client: &mut Client,
    location: &str,
    f: impl FnOnce(&mut Client, &str) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let fail = |e: postgres::Error| failed(location, &e, Write::Before);
    client
        .execute(
            "SELECT pg_advisory_lock(hashtext('waygate: create the schema'))",
            &[],
        )
        .map_err(fail)?;
    let done = f(client, location);
    let unlocked = client
        .execute(
            "SELECT pg_advisory_unlock(hashtext('waygate: create the schema'))",
            &[],
        )
        .map_err(fail);
    let done = done?;
    unlocked?;
    Ok(done)
}

/// Brings schema 1, 2 or 3 to [`SCHEMA_VERSION`], in one transaction (unless another process did
/// meanwhile: then `None`): the version it found.
fn migrate(client: &mut Client, location: &str) -> Result<Option<i32>, StoreError> {
    let fail = |e: postgres::Error| failed(location, &e, Write::Before);
    let mut tx = client.transaction().map_err(fail)?;
    let found: Option<i32> = tx
        .query_one("SELECT max(version) FROM waygate_schema", &[])
        .map_err(fail)?
        .get(0);
    let found = found.unwrap_or(0);
    if found >= SCHEMA_VERSION {
        tx.rollback().map_err(fail)?;
        return Ok(None);
    }
    let refused = |why: String| StoreError::Backend {
        location: location.to_owned(),
        why: format!(
            "the waygate tables are at schema {found} and this waygate needs schema \
             {SCHEMA_VERSION}: {why}; nothing was written (docs/storage.md, PostgreSQL, Schema)"
        ),
    };
    if let Some(pairs) = shared_pairs(&mut tx, location)? {
        return Err(refused(pairs));
    }
    let who: (Option<String>, Option<String>) = tx
        .query_one(
            "SELECT current_user::text, (SELECT tableowner::text FROM pg_tables \
             WHERE schemaname = current_schema() AND tablename = 'waygate_runs')",
            &[],
        )
        .map(|row| (row.get(0), row.get(1)))
        .map_err(fail)?;
    // A role without the rights to change the tables (the grants docs/storage.md gives the
    // role waygate uses) is told who may, and what that role then grants it.
    let change = |e: postgres::Error| match e.code() {
        Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
            let (user, owner) = (
                who.0.as_deref().unwrap_or("this role"),
                who.1.as_deref().unwrap_or("?"),
            );
            // Only the migration to 3 adds a table the role needs a grant on; from 3 on,
            // the role keeps the grants it has (and an auditor is not told to take INSERT).
            let then = match found {
                ..3 => format!(
                    ", then, as `{owner}`, `GRANT SELECT, INSERT ON waygate_definitions TO \
                     {user}`"
                ),
                _ => format!(" ({user} needs no new grant after)"),
            };
            refused(format!(
                "{user} may not migrate them ({}): run one waygate command (`waygate runs`) \
                 with --store naming the database as the tables' owner `{owner}` first{then}",
                db_message(&e)
            ))
        }
        _ => fail(e),
    };
    if let Some(why) = head_disagrees(&mut tx, location)? {
        return Err(refused(why));
    }
    if found == 1 {
        tx.batch_execute(LEASES).map_err(change)?;
        tx.batch_execute(RUNS_FILLFACTOR).map_err(change)?;
    }
    if found < 3 {
        tx.batch_execute(TO_3).map_err(change)?;
    }
    // Also for schema 3: a database made by the waygate of schema 3 before the pair index
    // lacks it.
    tx.batch_execute(ONE_ACTIVE_PAIR).map_err(change)?;
    tx.batch_execute(TO_4).map_err(change)?;
    tx.execute(
        "INSERT INTO waygate_schema (version) SELECT $1 \
         WHERE (SELECT max(version) FROM waygate_schema) < $1",
        &[&SCHEMA_VERSION],
    )
    .map_err(fail)?;
    tx.commit().map_err(fail)?;
    Ok(Some(found))
}

/// Why [`ONE_ACTIVE_PAIR`] cannot be made: the (workflow, env) pairs with more than one
/// active run, which only a waygate before schema 3 could write (a run under a shared lock
/// did not hold its pair), and what to do; `None` when there are none.
fn shared_pairs(
    tx: &mut postgres::Transaction<'_>,
    location: &str,
) -> Result<Option<String>, StoreError> {
    let fail = |e: postgres::Error| failed(location, &e, Write::Before);
    let rows = tx
        .query(
            "SELECT workflow, env, array_agg(id ORDER BY id) FROM waygate_runs WHERE active \
             GROUP BY workflow, env HAVING count(*) > 1 ORDER BY workflow, env",
            &[],
        )
        .map_err(fail)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let pairs: Vec<String> = rows
        .iter()
        .map(|row| {
            let ids: Vec<String> = row.get(2);
            PairHeldTwice {
                workflow: row.get(0),
                env: row.get(1),
                runs: ids.into_iter().map(RunId).collect(),
            }
            .to_string()
        })
        .collect();
    Ok(Some(format!(
        "schema 3 and later hold one active run per (workflow, env), and a waygate before \
         schema 3 let a run under a shared lock share its pair: {}; end all but one of each \
         with the waygate that started them (`waygate abort RUN --reason ..`), then run this \
         command again",
        pairs.join("; ")
    )))
}

/// Why the head row of a schema before 4 cannot go: it is not the chain's last event (an
/// event deleted at the end, or added past it, behind the store's back), which the head row
/// is the only record of; `None` when it is.
fn head_disagrees(
    tx: &mut postgres::Transaction<'_>,
    location: &str,
) -> Result<Option<String>, StoreError> {
    let fail = |e: postgres::Error| failed(location, &e, Write::Before);
    let row = tx
        .query_one(
            "SELECT h.seq, h.hash, e.seq, e.hash FROM waygate_head h \
             LEFT JOIN (SELECT seq, hash FROM waygate_events ORDER BY seq DESC LIMIT 1) e ON true",
            &[],
        )
        .map_err(fail)?;
    let (head_seq, head_hash): (i64, String) = (row.get(0), row.get(1));
    let last: (Option<i64>, Option<String>) = (row.get(2), row.get(3));
    let (last_seq, last_hash) = (
        last.0.unwrap_or(0),
        last.1.unwrap_or_else(|| GENESIS_HASH.into()),
    );
    if head_seq == last_seq && head_hash == last_hash {
        return Ok(None);
    }
    Ok(Some(format!(
        "its head row records the chain up to event {head_seq} ({head_hash}), but the last \
         event is {last_seq} ({last_hash}): events were deleted or added behind the store's \
         back, and the head row, which the new schema drops, is the only record of that; run \
         `waygate audit verify` with the waygate that wrote them"
    )))
}

/// Creates the tables unless another process did meanwhile (then `false`).
fn create_tables(client: &mut Client, location: &str) -> Result<bool, StoreError> {
    let fail = |e: postgres::Error| failed(location, &e, Write::Before);
    let mut tx = client.transaction().map_err(fail)?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('waygate_schema') IS NOT NULL", &[])
        .map_err(fail)?
        .get(0);
    if exists {
        tx.rollback().map_err(fail)?;
        return Ok(false);
    }
    tx.batch_execute(CREATE).map_err(fail)?;
    tx.batch_execute(ONE_ACTIVE_PAIR).map_err(fail)?;
    tx.batch_execute(LEASES).map_err(fail)?;
    tx.execute(
        "INSERT INTO waygate_schema (version) VALUES ($1)",
        &[&SCHEMA_VERSION],
    )
    .map_err(fail)?;
    tx.commit().map_err(fail)?;
    Ok(true)
}

/// The version the database's tables carry, `None` when there are none.
fn version(client: &mut Client, location: &str) -> Result<Option<i32>, StoreError> {
    let fail = |e: postgres::Error| failed(location, &e, Write::None);
    let exists: bool = client
        .query_one("SELECT to_regclass('waygate_schema') IS NOT NULL", &[])
        .map_err(fail)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let found: Option<i32> = client
        .query_one("SELECT max(version) FROM waygate_schema", &[])
        .map_err(fail)?
        .get(0);
    Ok(Some(found.unwrap_or(0)))
}

fn check(found: i32, location: &str) -> Result<(), StoreError> {
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    Err(StoreError::UnsupportedVersion {
        location: location.to_owned(),
        found: format!("waygate schema {found}"),
        expected: format!("waygate schema {SCHEMA_VERSION}"),
    })
}

/// Warns when the server may lose commits it acknowledged: `fsync` off (a crash of the
/// server's machine loses them) or `synchronous_commit` off (the server acknowledges before
/// its log is on disk). The latter is per session, so the writing connection turns it on
/// (`Writer::connect`).
pub(crate) fn warn_if_not_durable(client: &mut Client, location: &str) -> Result<(), StoreError> {
    let fail = |e: postgres::Error| failed(location, &e, Write::None);
    let fsync: String = client.query_one("SHOW fsync", &[]).map_err(fail)?.get(0);
    if fsync != "on" {
        tracing::warn!(
            "the PostgreSQL server at {location} runs with fsync = {fsync}: a crash of its \
             machine can lose commits waygate has acknowledged (docs/storage.md, PostgreSQL)"
        );
    }
    Ok(())
}
