//! A group of writes in one transaction (`docs/storage.md`, "PostgreSQL", Writing).
//!
//! 1. Creates take a transaction-scoped advisory lock on each lock key they need (sorted),
//!    so two creates for one environment queue up and the second sees the first's run; the
//!    unique index over the active runs' keys is what enforces one active run per key.
//! 2. The runs the group touches are read `FOR UPDATE` (sorted): a commit's compare-and-set on
//!    `version` is judged on a row no one else can change until this transaction ends.
//! 3. The head row is read `FOR UPDATE`: from here until `COMMIT`, other writers wait. The
//!    commit time is read, each write is checked by core's rules on its own (a refused one
//!    changes nothing) and sealed after the previous one, all in memory.
//! 4. One statement inserts the events and the new runs, updates the moved runs and the head;
//!    then `COMMIT`. The head row is held for these two round trips, for the whole group.
//!
//! A transaction that fails only because another got in its way (a deadlock, a key taken
//! meanwhile) is tried again from step 1 with fresh reads.

use std::collections::{BTreeSet, HashMap, HashSet};

use postgres::types::ToSql;
use postgres::{Client, Statement, Transaction};
use waygate_core::event::Event;
use waygate_core::run::{Run, RunId};
use waygate_core::store::group::{Ticket, Write, Written};
use waygate_core::store::rules::{
    apply_change, check_append, check_commit, check_create, commit_time, lock_key, seal_all,
    stamp_new_run,
};
use waygate_core::store::StoreError;

use crate::connect::{failed, is_transient, Write as Stage};
use crate::rows::{kind_json, micros, run_from, run_json};

const LOCK_KEYS: &str =
    "SELECT count(pg_advisory_xact_lock(hashtextextended(current_schema() || ' ' || k, 0))) \
     FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) AS sorted";
const RUNS: &str =
    "SELECT id, run, definition FROM waygate_runs WHERE id = ANY($1) ORDER BY id FOR UPDATE";
const HOLDERS: &str = "SELECT lock_key, id FROM waygate_runs WHERE active AND lock_key = ANY($1)";
const HEAD: &str = "SELECT seq, hash, at FROM waygate_head FOR UPDATE";
const INSERT: &str = "WITH ev AS (INSERT INTO waygate_events \
         (seq, run_id, at, at_us, actor, kind_name, kind, prev_hash, hash) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], \
                              $6::text[], $7::text[], $8::text[], $9::text[])), \
     nr AS (INSERT INTO waygate_runs \
         (id, workflow, env, status, lock_key, active, version, run, definition) \
         SELECT * FROM unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::text[], \
                              $15::bool[], $16::bigint[], $17::text[], $18::text[])), \
     ur AS (UPDATE waygate_runs r \
         SET status = u.status, active = u.active, version = u.version, run = u.run \
         FROM unnest($19::text[], $20::text[], $21::bool[], $22::bigint[], $23::text[]) \
              AS u(id, status, active, version, run) \
         WHERE r.id = u.id) \
     UPDATE waygate_head SET seq = $24, hash = $25, at = $26";

/// The writing connection, with its statements prepared once: each is then one round trip
/// instead of two (parse, then execute).
pub(crate) struct Writer {
    pub(crate) client: Client,
    lock_keys: Statement,
    runs: Statement,
    holders: Statement,
    head: Statement,
    insert: Statement,
}

impl Writer {
    pub(crate) fn new(mut client: Client, location: &str) -> Result<Writer, StoreError> {
        let mut prepare = |sql: &str| {
            client
                .prepare(sql)
                .map_err(|e| failed(location, &e, Stage::None))
        };
        let (lock_keys, runs, holders, head, insert) = (
            prepare(LOCK_KEYS)?,
            prepare(RUNS)?,
            prepare(HOLDERS)?,
            prepare(HEAD)?,
            prepare(INSERT)?,
        );
        Ok(Writer {
            client,
            lock_keys,
            runs,
            holders,
            head,
            insert,
        })
    }
}

/// How often a group is tried again after another transaction got in its way.
const ATTEMPTS: usize = 20;

type Results = Vec<(Ticket, Result<Written, StoreError>)>;

/// Writes `batch` in one transaction; each write's own refusal is its result, a failure of
/// the database the whole group's error.
pub(crate) fn write_group(
    writer: &mut Writer,
    location: &str,
    batch: Vec<(Ticket, Write)>,
    now: &dyn Fn() -> jiff::Timestamp,
) -> Result<Results, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_group(writer, location, batch.clone(), now) {
            Ok(results) => return Ok(results),
            Err(Failure::Transient(_)) if attempt < ATTEMPTS => continue,
            Err(Failure::Transient(e)) => return Err(failed(location, &e, Stage::Before)),
            Err(Failure::Store(e)) => return Err(e),
        }
    }
}

enum Failure {
    /// Another transaction got in the way: try again.
    Transient(postgres::Error),
    Store(StoreError),
}

fn before(location: &str) -> impl Fn(postgres::Error) -> Failure + '_ {
    move |e| {
        if is_transient(&e) {
            Failure::Transient(e)
        } else {
            Failure::Store(failed(location, &e, Stage::Before))
        }
    }
}

/// The runs a group touches, as it leaves them.
#[derive(Default)]
struct View {
    runs: HashMap<RunId, Run>,
    holders: HashMap<String, RunId>,
    created: BTreeSet<RunId>,
    changed: BTreeSet<RunId>,
}

fn try_group(
    writer: &mut Writer,
    location: &str,
    batch: Vec<(Ticket, Write)>,
    now: &dyn Fn() -> jiff::Timestamp,
) -> Result<Results, Failure> {
    let fail = before(location);
    let statements = (
        writer.lock_keys.clone(),
        writer.runs.clone(),
        writer.holders.clone(),
    );
    let (head, insert_statement) = (writer.head.clone(), writer.insert.clone());
    let mut tx = writer.client.transaction().map_err(&fail)?;
    let mut view = read_view(&mut tx, location, &batch, &statements)?;

    // From here to COMMIT, the head row is ours.
    let head = tx.query_one(&head, &[]).map_err(&fail)?;
    let last_seq: i64 = head.get(0);
    let mut prev_hash: String = head.get(1);
    let last_at: Option<String> = head.get(2);
    let last_at = last_at.and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let at = commit_time(now(), last_at);
    let mut next_seq = u64::try_from(last_seq).unwrap_or(0) + 1;

    let mut results = Vec::with_capacity(batch.len());
    let mut sealed_all: Vec<Event> = Vec::new();
    for (ticket, write) in batch {
        let result = apply(&mut view, write, at, next_seq, &prev_hash);
        if let Ok((_, events)) = &result {
            if let Some(last) = events.last() {
                next_seq = last.seq + 1;
                prev_hash.clone_from(&last.hash);
            }
            sealed_all.extend(events.iter().cloned());
        }
        results.push((ticket, result));
    }
    if sealed_all.is_empty() {
        tx.rollback().map_err(&fail)?;
        return Ok(results);
    }
    insert(&mut tx, &insert_statement, location, &view, &sealed_all, at).map_err(|e| match e {
        InsertError::Db(e) => fail(e),
        InsertError::Store(e) => Failure::Store(e),
    })?;
    tx.commit()
        .map_err(|e| Failure::Store(failed(location, &e, Stage::Committing)))?;
    Ok(results)
}

/// Steps 1 and 2: the lock keys of creates, the runs touched, and who holds the keys.
fn read_view(
    tx: &mut Transaction<'_>,
    location: &str,
    batch: &[(Ticket, Write)],
    (lock_keys, runs, holders): &(Statement, Statement, Statement),
) -> Result<View, Failure> {
    let fail = before(location);
    let mut ids = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for (_, write) in batch {
        match write {
            Write::Create { run, .. } => {
                ids.insert(run.id.as_str().to_owned());
                keys.insert(lock_key(run));
            }
            Write::Commit { id, .. } | Write::Append { id, .. } => {
                ids.insert(id.as_str().to_owned());
            }
        }
    }
    let keys: Vec<String> = keys.into_iter().collect();
    let ids: Vec<String> = ids.into_iter().collect();
    if !keys.is_empty() {
        tx.execute(lock_keys, &[&keys]).map_err(&fail)?;
    }
    let mut view = View::default();
    for row in tx.query(runs, &[&ids]).map_err(&fail)? {
        let run = run_from(row.get(1), row.get(2), location).map_err(Failure::Store)?;
        view.runs.insert(run.id.clone(), run);
    }
    if !keys.is_empty() {
        for row in tx.query(holders, &[&keys]).map_err(&fail)? {
            view.holders.insert(row.get(0), RunId(row.get(1)));
        }
    }
    Ok(view)
}

/// Step 3 for one write: core's rules on the group's view, then the write applied to it.
fn apply(
    view: &mut View,
    write: Write,
    at: jiff::Timestamp,
    next_seq: u64,
    prev_hash: &str,
) -> Result<Written, StoreError> {
    match write {
        Write::Create { run, events } => {
            let mut run = *run;
            let key = lock_key(&run);
            check_create(
                &run,
                view.runs.contains_key(&run.id),
                view.holders.get(&key).cloned(),
                &events,
            )?;
            stamp_new_run(&mut run, at);
            let sealed = seal_all(events, &run.id, at, next_seq, prev_hash);
            if !run.status.is_ended() {
                view.holders.insert(key, run.id.clone());
            }
            view.created.insert(run.id.clone());
            view.runs.insert(run.id.clone(), run.clone());
            Ok((Some(run), sealed))
        }
        Write::Commit {
            id,
            expected,
            change,
            events,
        } => {
            let mut run = check_commit(&id, view.runs.get(&id).cloned(), expected, &events)?;
            apply_change(&mut run, &change, at);
            if run.status.is_ended() {
                view.holders.remove(&lock_key(&run));
            }
            let sealed = seal_all(events, &id, at, next_seq, prev_hash);
            if !view.created.contains(&id) {
                view.changed.insert(id.clone());
            }
            view.runs.insert(id, run.clone());
            Ok((Some(run), sealed))
        }
        Write::Append { id, events } => {
            check_append(&id, view.runs.get(&id), &events)?;
            Ok((None, seal_all(events, &id, at, next_seq, prev_hash)))
        }
    }
}

enum InsertError {
    Db(postgres::Error),
    Store(StoreError),
}

/// Step 4: the events, the new and moved runs, and the head, in one statement.
fn insert(
    tx: &mut Transaction<'_>,
    statement: &Statement,
    location: &str,
    view: &View,
    events: &[Event],
    at: jiff::Timestamp,
) -> Result<(), InsertError> {
    let ev = EventColumns::of(events);
    let mut new = RunColumns::default();
    for id in &view.created {
        if let Some(run) = view.runs.get(id) {
            new.push(run, location).map_err(InsertError::Store)?;
        }
    }
    let mut moved = RunColumns::default();
    for id in &view.changed {
        if let Some(run) = view.runs.get(id) {
            moved.push(run, location).map_err(InsertError::Store)?;
        }
    }
    let last = events
        .last()
        .map_or((0, String::new()), |e| (e.seq as i64, e.hash.clone()));
    let at = at.to_string();
    let params: Vec<&(dyn ToSql + Sync)> = vec![
        &ev.seq,
        &ev.run_id,
        &ev.at,
        &ev.at_us,
        &ev.actor,
        &ev.kind_name,
        &ev.kind,
        &ev.prev_hash,
        &ev.hash,
        &new.id,
        &new.workflow,
        &new.env,
        &new.status,
        &new.lock_key,
        &new.active,
        &new.version,
        &new.run,
        &new.definition,
        &moved.id,
        &moved.status,
        &moved.active,
        &moved.version,
        &moved.run,
        &last.0,
        &last.1,
        &at,
    ];
    tx.execute(statement, &params).map_err(InsertError::Db)?;
    Ok(())
}

/// Events as columns, for `unnest`.
#[derive(Default)]
struct EventColumns {
    seq: Vec<i64>,
    run_id: Vec<String>,
    at: Vec<String>,
    at_us: Vec<i64>,
    actor: Vec<String>,
    kind_name: Vec<&'static str>,
    kind: Vec<String>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
}

impl EventColumns {
    fn of(events: &[Event]) -> EventColumns {
        let mut c = EventColumns::default();
        for e in events {
            c.seq.push(e.seq as i64);
            c.run_id.push(e.run_id.0.clone());
            c.at.push(e.at.to_string());
            c.at_us.push(micros(e.at));
            c.actor.push(e.actor.clone());
            c.kind_name.push(e.kind_name());
            c.kind.push(kind_json(&e.kind));
            c.prev_hash.push(e.prev_hash.clone());
            c.hash.push(e.hash.clone());
        }
        c
    }
}

/// Runs as columns, for `unnest`.
#[derive(Default)]
struct RunColumns {
    id: Vec<String>,
    workflow: Vec<String>,
    env: Vec<String>,
    status: Vec<&'static str>,
    lock_key: Vec<String>,
    active: Vec<bool>,
    version: Vec<i64>,
    run: Vec<String>,
    definition: Vec<String>,
}

impl RunColumns {
    fn push(&mut self, run: &Run, location: &str) -> Result<(), StoreError> {
        self.id.push(run.id.0.clone());
        self.workflow.push(run.workflow.clone());
        self.env.push(run.env.clone());
        self.status.push(run.status.as_str());
        self.lock_key.push(lock_key(run));
        self.active.push(!run.status.is_ended());
        self.version.push(run.version as i64);
        self.run.push(run_json(run, location)?);
        self.definition.push(run.definition.clone());
        Ok(())
    }
}

/// Copies a whole chain and its runs into an empty store, as they are (`store copy`): one
/// transaction, the head set to the last event.
pub(crate) fn import(
    client: &mut Client,
    location: &str,
    runs: &[Run],
    events: &[Event],
) -> Result<(), StoreError> {
    let fail = |e: postgres::Error| failed(location, &e, Stage::Before);
    let mut tx = client.transaction().map_err(fail)?;
    let head = tx
        .query_one(
            "SELECT seq, (SELECT count(*) FROM waygate_runs) FROM waygate_head FOR UPDATE",
            &[],
        )
        .map_err(fail)?;
    let (seq, count): (i64, i64) = (head.get(0), head.get(1));
    if seq != 0 || count != 0 {
        return Err(StoreError::NotAStore {
            location: location.to_owned(),
            why: format!(
                "is not empty ({count} runs, {seq} events): a copy goes only into an empty store"
            ),
        });
    }
    let mut seen = HashSet::new();
    for chunk in runs.chunks(1000) {
        let mut cols = RunColumns::default();
        for run in chunk {
            if seen.insert(run.id.clone()) {
                cols.push(run, location)?;
            }
        }
        tx.execute(
            "INSERT INTO waygate_runs \
                 (id, workflow, env, status, lock_key, active, version, run, definition) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                                  $6::bool[], $7::bigint[], $8::text[], $9::text[])",
            &[
                &cols.id,
                &cols.workflow,
                &cols.env,
                &cols.status,
                &cols.lock_key,
                &cols.active,
                &cols.version,
                &cols.run,
                &cols.definition,
            ],
        )
        .map_err(fail)?;
    }
    for chunk in events.chunks(5000) {
        let ev = EventColumns::of(chunk);
        tx.execute(
            "INSERT INTO waygate_events \
                 (seq, run_id, at, at_us, actor, kind_name, kind, prev_hash, hash) \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], \
                                  $6::text[], $7::text[], $8::text[], $9::text[])",
            &[
                &ev.seq,
                &ev.run_id,
                &ev.at,
                &ev.at_us,
                &ev.actor,
                &ev.kind_name,
                &ev.kind,
                &ev.prev_hash,
                &ev.hash,
            ],
        )
        .map_err(fail)?;
    }
    if let Some(last) = events.last() {
        tx.execute(
            "UPDATE waygate_head SET seq = $1, hash = $2, at = $3",
            &[&(last.seq as i64), &last.hash, &last.at.to_string()],
        )
        .map_err(fail)?;
    }
    tx.commit()
        .map_err(|e| failed(location, &e, Stage::Committing))?;
    Ok(())
}
