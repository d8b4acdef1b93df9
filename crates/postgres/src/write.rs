//! A group of writes in one transaction (`docs/storage.md`, "PostgreSQL", Writing).
//!
//! 1. Creates take a transaction-scoped advisory lock on each lock key they need (sorted),
//!    so two creates for one environment queue up and the second sees the first's run; the
//!    unique indexes over the active runs' keys and (workflow, env) pairs are what enforce one
//!    active run per key.
//! 2. The runs the group touches are read `FOR UPDATE` (sorted): a commit's compare-and-set on
//!    `version` is judged on a row no one else can change until this transaction ends.
//! 3. The chain's lock is taken (a transaction-scoped advisory lock, [`CHAIN_KEY`]): from
//!    here until `COMMIT`, other writers that read wait. Then the chain's end is read: its
//!    last event, found by the primary key. The commit time is read, each write is checked
//!    by core's rules on its own (a refused one changes nothing) and sealed after the
//!    previous one, all in memory.
//! 4. One statement inserts the events and the new runs and updates the runs the group
//!    touched (each run's row records the seq of its last event); then `COMMIT`. The chain's
//!    lock is held for these two round trips, for the whole group.
//!
//! `BEGIN` and steps 1 to 3 go in one round trip (one simple query of several statements,
//! run in order, each seeing what committed before it began, their few values quoted as
//! literals); step 4's statement is prepared once per connection. Three round trips per
//! group in all.
//!
//! Why `seq` is gap-free and in commit order: `waygate_events.seq` is the primary key, and
//! every write numbers its events from the chain's end as it read it, plus one. Two writers
//! that read the same end both take that seq: the second to insert waits for the first to
//! end and then fails with a unique violation, having changed nothing. A writer reads an end
//! only once it is committed, so it never numbers after an event that is not. The chain's
//! lock keeps writers from colliding in this way: step 4's statement takes it too before it
//! inserts an event (a one-round-trip guess below holds no transaction that took it), so a
//! writer that read the end under the lock is never beaten to the seq it took. Without that,
//! a process guessing right in a loop beat another's transaction to it on each attempt.
//!
//! A transaction that fails only because another got in its way (a deadlock, a key taken
//! meanwhile) is tried again from step 1 with fresh reads.
//!
//! **One round trip when nobody else wrote.** The writer remembers the chain's end it left
//! and the runs as it left them ([`Known`]). While the end is still where it left it, nobody
//! else has written since (every write adds events), so those runs are exactly as
//! remembered: a group of commits and appends to remembered runs is checked and sealed
//! against them in memory, and step 4's statement is sent alone, outside a transaction (a
//! single statement commits on its own). It waits for the chain's lock before it inserts an
//! event. Its first event takes the seq after the remembered end: if anyone wrote meanwhile,
//! that seq is taken and the whole statement fails with a unique violation, having changed
//! nothing. Then the writer forgets the runs and takes the group through steps 1 to 4, and
//! keeps doing so until a read finds the end where it left it again (others are writing:
//! guessing would cost a wasted round trip each time). Creates always take steps 1 to 4
//! (they need the lock keys' holders).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use postgres::types::ToSql;
use waygate_core::event::{Event, GENESIS_HASH};
use waygate_core::run::{LockKeys, PairHeldTwice, Run, RunId};
use waygate_core::store::group::{Commit, Ticket, Write, Written};
use waygate_core::store::rules::{
    check_append, check_create, commit_time, seal_all, stamp_new_run,
};
use waygate_core::store::StoreError;

use crate::connect::{connect_writer, failed, is_transient, Write as Stage};
use crate::rows::{definition_key, kind_json, micros, run_from, run_json};
use crate::wire::{Prepared, Row, Wire, WireError};

/// The key of the chain's lock (step 3), a transaction-scoped advisory lock: one per schema,
/// as the lock keys of creates are (a lock key of a run is a name with no line break in it,
/// so it never hashes the same text). Computed once per writing connection
/// ([`Statements::chain_key`]), and passed to the statements as a number: hashing the schema's
/// name in every statement cost more than the lock itself (docs/performance.md).
const CHAIN_KEY: &str =
    "SELECT hashtextextended(coalesce(current_schema(), '') || E'\\nthe chain', 0)";

/// The events (parameters 1 to 9), inserted once the statement holds the chain's lock
/// (parameter `$key`, the chain's key). The lock is taken before the first event is written,
/// and after the runs' rows (the statement's `UPDATE` runs first), the order steps 2 and 3
/// take them in. So a one-round-trip guess, a statement on its own, waits for a writer that
/// holds the lock rather than taking the seq that writer read as next: without it a writer
/// guessing right in a loop kept every other process's transaction failing on the seq it
/// took, until they gave up (`duplicate key value violates unique constraint
/// "waygate_events_pkey"`). In a transaction that holds the lock already, taking it again
/// waits for nothing.
macro_rules! events {
    ($key:literal) => {
        concat!(
            "WITH ev AS (INSERT INTO waygate_events \
                 (seq, run_id, at, at_us, actor, kind_name, kind, prev_hash, hash) \
                 SELECT u.* FROM (SELECT pg_advisory_xact_lock(",
            $key,
            "::bigint)) AS l, \
                     unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], \
                            $6::text[], $7::text[], $8::text[], $9::text[]) AS u) "
        )
    };
}

/// The moved runs' new rows (parameters 10 to 15).
macro_rules! moved_runs {
    () => {
        "UPDATE waygate_runs r \
         SET last_seq = u.last_seq, status = u.status, active = u.active, version = u.version, \
             run = u.run \
         FROM unnest($10::text[], $11::bigint[], $12::text[], $13::bool[], $14::bigint[], \
                     $15::text[]) AS u(id, last_seq, status, active, version, run) \
         WHERE r.id = u.id"
    };
}

/// A group that moves runs only: the events and the runs' new rows; the chain's key is $16.
const MOVE: &str = concat!(events!("$16"), moved_runs!());

/// [`MOVE`] for the commonest group, one commit of one event, with its values as they are
/// rather than in arrays: the server then parses no array and joins no `unnest`, which was
/// most of its work per commit besides the rows themselves (docs/performance.md).
const ONE: &str = "WITH ev AS (INSERT INTO waygate_events \
         (seq, run_id, at, at_us, actor, kind_name, kind, prev_hash, hash) \
         SELECT $1::bigint, $2::text, $3::text, $4::bigint, $5::text, $6::text, $7::text, \
                $8::text, $9::text FROM (SELECT pg_advisory_xact_lock($16::bigint)) AS l) \
     UPDATE waygate_runs \
     SET last_seq = $11::bigint, status = $12::text, active = $13::bool, version = $14::bigint, \
         run = $15::text \
     WHERE id = $10::text";

/// A group that also creates runs: their definitions (a text already there is not written
/// again) and rows besides; the chain's key is $28.
const INSERT: &str = concat!(
    events!("$28"),
    ", ur AS (",
    moved_runs!(),
    "), df AS (INSERT INTO waygate_definitions (hash, definition) \
         SELECT * FROM unnest($16::text[], $17::text[]) ON CONFLICT (hash) DO NOTHING) \
     INSERT INTO waygate_runs \
         (id, workflow, env, lock_key, definition_hash, last_seq, status, active, version, run) \
     SELECT * FROM unnest($18::text[], $19::text[], $20::text[], $21::text[], $22::text[], \
                          $23::bigint[], $24::text[], $25::bool[], $26::bigint[], $27::text[])"
);

/// The writing connection (its own client: `wire.rs`), with its statements prepared once.
pub(crate) struct Writer {
    pub(crate) wire: Wire,
    statements: Statements,
    known: Known,
    /// When the server last answered a write.
    answered: Option<Instant>,
}

/// How long the writing connection sits idle before a write first looks whether the server
/// ended the session meanwhile ([`Writer::ended`]).
const IDLE_LOOK: Duration = Duration::from_millis(10);

/// Step 4's statements: [`ONE`] for one commit of one event, [`MOVE`] for any other group
/// that creates no run, [`INSERT`] for one that does.
struct Statements {
    one: Prepared,
    moves: Prepared,
    inserts: Prepared,
    /// The key of the chain's lock in this connection's schema ([`CHAIN_KEY`]).
    chain_key: i64,
}

/// What the writer knows the database held after its last write (module docs).
#[derive(Default)]
struct Known {
    /// The head as this writer left it.
    head: Option<Head>,
    /// Runs as they were when the head was `head`.
    runs: HashMap<RunId, Run>,
    /// The last guess found the head where it was left (or none was made since a read did).
    hopeful: bool,
}

/// How many runs a writer remembers; past this it forgets them all and starts again.
const KNOWN_RUNS: usize = 1024;

impl Known {
    /// After a committed group that began at `read` (steps 1 to 3; `None` for a guess) and
    /// left the head at `head`, with `runs` as they now are.
    fn committed(&mut self, read: Option<&Head>, head: Head, runs: HashMap<RunId, Run>) {
        let unchanged = match (read, &self.head) {
            (None, _) => true,
            (Some(read), Some(left)) => read.seq == left.seq && read.hash == left.hash,
            (Some(_), None) => false,
        };
        if !unchanged || self.runs.len() + runs.len() > KNOWN_RUNS {
            self.runs.clear();
        }
        self.hopeful = unchanged || self.head.is_none();
        self.runs.extend(runs);
        self.head = Some(head);
    }

    /// A guess found the head moved: others are writing.
    fn stale(&mut self) {
        self.runs.clear();
        self.hopeful = false;
    }
}

impl Writer {
    /// Connects the writing connection to `url` and readies it.
    pub(crate) fn connect(url: &str, location: &str) -> Result<Writer, StoreError> {
        let mut wire = connect_writer(url)?;
        let fail = |e: WireError| failed(location, &e, Stage::None);
        // In one round trip:
        // - The reads of step 1 to 3 quote their few values as SQL literals (`literal`): with
        //   standard strings a backslash is an ordinary character, and only `'` needs doubling.
        // - The server process behind this connection runs the same statement over and over.
        //   Each run allocates a little over glibc's default trim threshold (128 KiB) and
        //   frees it, so glibc gave the memory back to the kernel and took it again on every
        //   commit (four `brk` calls a commit, with their page faults and TLB shootdowns:
        //   measured, docs/performance.md). A large block allocated and freed once raises
        //   glibc's thresholds for the process (its dynamic mmap threshold), so it keeps that
        //   memory. One 8 MiB string, once per writing connection; harmless on any other
        //   allocator. Built from 1 KiB pieces and measured in bytes, it costs the server
        //   ~10 ms, the page faults of 8 MiB; `length(repeat('x', 8388608))`, a byte at a
        //   time and counted in characters, cost ~50 ms on every command's first write.
        // - The chain's key in this connection's schema.
        // - Whether the server acknowledges commits before they are on disk.
        let setup = wire
            .simple_query(&format!(
                "SET standard_conforming_strings = on; \
                 SELECT octet_length(repeat(repeat('x', 1024), 8192)); \
                 {CHAIN_KEY}; \
                 SHOW synchronous_commit"
            ))
            .map_err(fail)?;
        let value = |i: usize| {
            let cell = setup
                .get(i)
                .and_then(|rows| rows.first())
                .and_then(|r| r.first());
            cell.cloned().flatten().ok_or_else(|| StoreError::Backend {
                location: location.to_owned(),
                why: format!("unexpected answer to the writing connection's setup ({i})"),
            })
        };
        let chain_key = value(2)?.parse().map_err(|_| StoreError::Backend {
            location: location.to_owned(),
            why: "unexpected answer to the writing connection's setup: the chain's key".into(),
        })?;
        // Commits durable before they are acknowledged: `synchronous_commit` `on` when the
        // server's default is `off` (any other value already waits for the local flush, or
        // more).
        if value(3)? == "off" {
            wire.batch_execute("SET synchronous_commit TO on")
                .map_err(fail)?;
        }
        let statements = Statements {
            one: wire.prepare("waygate_one", ONE).map_err(fail)?,
            moves: wire.prepare("waygate_move", MOVE).map_err(fail)?,
            inserts: wire.prepare("waygate_insert", INSERT).map_err(fail)?,
            chain_key,
        };
        Ok(Writer {
            wire,
            statements,
            known: Known::default(),
            answered: None,
        })
    }
}

impl Writer {
    /// Whether this connection's session is over: lost before, or ended by the server while
    /// the connection sat idle (a restart, an idle timeout, `pg_terminate_backend`, a firewall
    /// dropping idle connections). The server says so when it ends a session, and reading
    /// what is waiting costs no round trip, only three system calls; still, a connection that
    /// answered less than [`IDLE_LOOK`] ago is taken as it is: a session ended within that
    /// moment is a loss during the next commit, said as such ("may or may not have been
    /// recorded"; the next command tells which).
    pub(crate) fn ended(&mut self) -> bool {
        self.wire.is_closed()
            || (self.answered.is_none_or(|at| at.elapsed() >= IDLE_LOOK)
                && self.wire.ended_while_idle())
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
    if let Some(results) = try_known(writer, location, &batch, now)? {
        return Ok(results);
    }
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
    Transient(WireError),
    Store(StoreError),
}

fn before(location: &str) -> impl Fn(WireError) -> Failure + '_ {
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
    /// A guess on what the writer remembers (`try_known`): a refusal ends it, so a commit
    /// takes its run out of the view to apply rather than applying a copy (a refused one
    /// leaves it out, and the group is read and judged again by steps 1 to 4).
    guess: bool,
}

fn try_group(
    writer: &mut Writer,
    location: &str,
    batch: Vec<(Ticket, Write)>,
    now: &dyn Fn() -> jiff::Timestamp,
) -> Result<Results, Failure> {
    let fail = before(location);
    let key = writer.statements.chain_key;
    let (mut view, head) = match read_view(&mut writer.wire, location, &batch, key) {
        Ok(read) => read,
        Err(e) => {
            rollback(&mut writer.wire);
            return Err(e);
        }
    };
    // From here to COMMIT, the chain's lock is ours.
    let at = commit_time(now(), head.at);
    let results = seal_group(&mut view, batch, at, &head);
    let sealed_all = sealed(&results);
    if sealed_all.is_empty() {
        writer.wire.batch_execute("ROLLBACK").map_err(&fail)?;
        return Ok(results);
    }
    let inserted = insert(writer, location, &view, &sealed_all);
    let left = left_at(&sealed_all, at);
    if let Err(e) = inserted {
        rollback(&mut writer.wire);
        return Err(match e {
            InsertError::Db(e) => fail(e),
            InsertError::Store(e) => Failure::Store(e),
        });
    }
    writer
        .wire
        .batch_execute("COMMIT")
        .map_err(|e| Failure::Store(failed(location, &e, Stage::Committing)))?;
    writer.answered = Some(Instant::now());
    writer.known.committed(Some(&head), left, view.runs);
    Ok(results)
}

/// The events `results` sealed, in order.
fn sealed(results: &Results) -> Vec<&Event> {
    let written = results.iter().filter_map(|(_, r)| r.as_ref().ok());
    written.flat_map(|(_, events)| events).collect()
}

/// The head after `sealed` (not empty), stamped `at`.
fn left_at(sealed: &[&Event], at: jiff::Timestamp) -> Head {
    let last = sealed.last();
    Head {
        seq: last.map_or(0, |e| e.seq),
        hash: last.map(|e| e.hash.clone()).unwrap_or_default(),
        at: Some(at),
    }
}

/// Checks and seals each write of `batch` in turn on `view`, chained after `head`: each
/// write's result (its events sealed: [`sealed`]).
fn seal_group(
    view: &mut View,
    batch: Vec<(Ticket, Write)>,
    at: jiff::Timestamp,
    head: &Head,
) -> Results {
    let mut next_seq = head.seq + 1;
    let mut prev_hash = head.hash.clone();
    let mut results = Vec::with_capacity(batch.len());
    for (ticket, write) in batch {
        let result = apply(view, write, at, next_seq, &prev_hash);
        if let Ok((_, events)) = &result {
            if let Some(last) = events.last() {
                next_seq = last.seq + 1;
                prev_hash.clone_from(&last.hash);
            }
        }
        results.push((ticket, result));
    }
    results
}

/// The group in one round trip, on what the writer knows (module docs): `None` when it
/// cannot be (a create, a run not remembered, a write the remembered runs refuse, others
/// writing), and then nothing was written.
fn try_known(
    writer: &mut Writer,
    location: &str,
    batch: &[(Ticket, Write)],
    now: &dyn Fn() -> jiff::Timestamp,
) -> Result<Option<Results>, StoreError> {
    let known = &mut writer.known;
    let Some(head) = known.head.clone().filter(|_| known.hopeful) else {
        return Ok(None);
    };
    let remembered = |(_, write): &(Ticket, Write)| match write {
        Write::Commit(Commit { id, .. }) | Write::Append { id, .. } => known.runs.contains_key(id),
        Write::Create { .. } => false,
    };
    if !batch.iter().all(remembered) {
        return Ok(None);
    }
    // The runs move from what is remembered into the group's view rather than being copied:
    // whatever happens next, the writer remembers them as the group leaves them or forgets
    // them (a run it no longer remembers is read by steps 1 to 3).
    let mut view = View {
        guess: true,
        ..View::default()
    };
    for (_, write) in batch {
        if let Write::Commit(Commit { id, .. }) | Write::Append { id, .. } = write {
            if let Some(run) = known.runs.remove(id) {
                view.runs.insert(id.clone(), run);
            }
        }
    }
    let at = commit_time(now(), head.at);
    let results = seal_group(&mut view, batch.to_vec(), at, &head);
    let sealed_all = sealed(&results);
    if sealed_all.is_empty() || results.iter().any(|(_, r)| r.is_err()) {
        // Refused on what was remembered: the database may know better; read it.
        return Ok(None);
    }
    // One statement outside a transaction: it commits on its own when it succeeds.
    let inserted = insert(writer, location, &view, &sealed_all);
    let left = left_at(&sealed_all, at);
    drop(sealed_all);
    match inserted {
        Ok(()) => {
            writer.answered = Some(Instant::now());
            writer.known.committed(None, left, view.runs);
            Ok(Some(results))
        }
        Err(InsertError::Db(e)) if is_transient(&e) => {
            writer.known.stale();
            Ok(None)
        }
        Err(InsertError::Db(e)) => {
            writer.known = Known::default();
            Err(failed(location, &e, Stage::Committing))
        }
        Err(InsertError::Store(e)) => Err(e),
    }
}

/// Ends a transaction that failed; a connection that is gone has ended it already.
fn rollback(wire: &mut Wire) {
    if !wire.is_closed() {
        let _ = wire.batch_execute("ROLLBACK");
    }
}

/// The chain's end (its last event's seq, hash and time) as step 3 read it, or as a write
/// left it.
#[derive(Clone)]
struct Head {
    seq: u64,
    hash: String,
    at: Option<jiff::Timestamp>,
}

/// Steps 1 to 3 in one round trip (one simple query of several statements, run in order):
/// `BEGIN`, the lock keys of creates, the runs touched, who holds the keys, the chain's lock
/// and its end.
fn read_view(
    wire: &mut Wire,
    location: &str,
    batch: &[(Ticket, Write)],
    chain_key: i64,
) -> Result<(View, Head), Failure> {
    let fail = before(location);
    let mut ids = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut pairs = BTreeSet::new();
    for (_, write) in batch {
        match write {
            Write::Create { run, .. } => {
                ids.insert(literal(run.id.as_str()));
                for (key, _) in run.lock_keys().iter() {
                    keys.insert(literal(key));
                }
                pairs.insert(format!(
                    "({}, {})",
                    literal(&run.workflow),
                    literal(&run.env)
                ));
            }
            Write::Commit(Commit { id, .. }) | Write::Append { id, .. } => {
                ids.insert(literal(id.as_str()));
            }
        }
    }
    let ids = ids.into_iter().collect::<Vec<_>>().join(", ");
    let keys = keys.into_iter().collect::<Vec<_>>().join(", ");
    let pairs = pairs.into_iter().collect::<Vec<_>>().join(", ");
    let mut sql = String::from("BEGIN; ");
    if !keys.is_empty() {
        // A run holds its lock key's lock and its (workflow, env) pair's (core's
        // `run::LockKeys`): the active runs holding either.
        sql.push_str(&format!(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(current_schema() || ' ' || k, 0))) \
             FROM (SELECT k FROM unnest(ARRAY[{keys}]::text[]) AS k ORDER BY k) AS sorted; \
             SELECT lock_key, id, workflow, env FROM waygate_runs \
             WHERE active AND (lock_key IN ({keys}) OR (workflow, env) IN ({pairs})); "
        ));
    }
    sql.push_str(&format!(
        "SELECT r.id, r.run, d.definition FROM waygate_runs r \
         JOIN waygate_definitions d ON d.hash = r.definition_hash \
         WHERE r.id IN ({ids}) ORDER BY r.id FOR UPDATE OF r; \
         SELECT pg_advisory_xact_lock({chain_key}); \
         SELECT seq, hash, at FROM waygate_events ORDER BY seq DESC LIMIT 1"
    ));
    // The results, statement by statement (BEGIN's has no rows).
    let results = wire.simple_query(&sql).map_err(&fail)?;
    let bad = |what: &str| {
        Failure::Store(StoreError::Backend {
            location: location.to_owned(),
            why: format!("unexpected answer to the reads of a commit: {what}"),
        })
    };
    // BEGIN, [lock keys, holders,] runs, the chain's lock, its end.
    let mut view = View::default();
    let (holders, runs, end) = match results.len() {
        4 => (None, &results[1], &results[3]),
        6 => (Some(&results[2]), &results[3], &results[5]),
        n => return Err(bad(&format!("{n} results"))),
    };
    for row in holders.into_iter().flatten() {
        let (Some(key), Some(id), Some(workflow), Some(env)) =
            (cell(row, 0), cell(row, 1), cell(row, 2), cell(row, 3))
        else {
            return Err(bad("a holder without its key"));
        };
        view.holders.insert(key.to_owned(), RunId(id.to_owned()));
        let pair = LockKeys::of(workflow, env, None).pair;
        view.holders.insert(pair, RunId(id.to_owned()));
    }
    for row in runs {
        let (Some(json), Some(definition)) = (cell(row, 1), cell(row, 2)) else {
            return Err(bad("a run without its record"));
        };
        let run = run_from(json, definition.to_owned(), location).map_err(Failure::Store)?;
        view.runs.insert(run.id.clone(), run);
    }
    // No event yet: the chain begins at the genesis hash.
    let head = match end.first() {
        None => Head {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
            at: None,
        },
        Some(row) => Head {
            seq: cell(row, 0)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("the last event's seq"))?,
            hash: cell(row, 1)
                .ok_or_else(|| bad("the last event's hash"))?
                .to_owned(),
            at: cell(row, 2).and_then(|t| t.parse().ok()),
        },
    };
    Ok((view, head))
}

/// Column `i` of a simple query's `row`, as text (`None` for NULL).
fn cell(row: &Row, i: usize) -> Option<&str> {
    row.get(i).and_then(Option::as_deref)
}

/// `text` as an SQL string literal (standard strings: `'` doubled, nothing else special).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
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
            let holder = |key: &str| Ok(view.holders.get(key).cloned());
            check_create(&run, view.runs.contains_key(&run.id), holder, &events)?;
            stamp_new_run(&mut run, at);
            let sealed = seal_all(events, &run.id, at, next_seq, prev_hash);
            if !run.status.is_ended() {
                for (key, _) in run.lock_keys().iter() {
                    view.holders.insert(key.to_owned(), run.id.clone());
                }
            }
            view.created.insert(run.id.clone());
            view.runs.insert(run.id.clone(), run.clone());
            Ok((Some(run), sealed))
        }
        Write::Commit(commit) => {
            let id = commit.id.clone();
            let current = match view.guess {
                true => view.runs.remove(&id),
                false => view.runs.get(&id).cloned(),
            };
            let (run, events) = commit.apply(current, at)?;
            if run.status.is_ended() {
                for (key, _) in run.lock_keys().iter() {
                    if view.holders.get(key) == Some(&id) {
                        view.holders.remove(key);
                    }
                }
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
            let sealed = seal_all(events, &id, at, next_seq, prev_hash);
            // The run's row records its last event's seq.
            if !view.created.contains(&id) {
                view.changed.insert(id);
            }
            Ok((None, sealed))
        }
    }
}

enum InsertError {
    Db(WireError),
    Store(StoreError),
}

/// Step 4: the events, the new runs (with their definitions) and the moved ones, in one
/// statement.
fn insert(
    writer: &mut Writer,
    location: &str,
    view: &View,
    events: &[&Event],
) -> Result<(), InsertError> {
    // A group has few runs and events: the last event of each is found by looking back.
    let last_of = |id: &RunId| {
        let last = events.iter().rev().find(|e| e.run_id == *id);
        last.map(|e| e.seq as i64).ok_or_else(|| {
            InsertError::Store(StoreError::Backend {
                location: location.to_owned(),
                why: format!(
                    "run {id} has a new row but no event in its write: nothing was written"
                ),
            })
        })
    };
    let mut new = RunColumns::default();
    for id in &view.created {
        if let Some(run) = view.runs.get(id) {
            new.push(run, last_of(id)?, location)
                .map_err(InsertError::Store)?;
        }
    }
    let mut moved = RunColumns::default();
    for id in &view.changed {
        if let Some(run) = view.runs.get(id) {
            moved
                .push_moved(run, last_of(id)?, location)
                .map_err(InsertError::Store)?;
        }
    }
    let (wire, statements) = (&mut writer.wire, &writer.statements);
    write_rows(wire, statements, events, &new, &moved).map_err(InsertError::Db)
}

/// The seq of each run's last event among `events`.
fn last_seqs(events: &[Event]) -> HashMap<&str, i64> {
    let mut last = HashMap::new();
    for e in events {
        last.insert(e.run_id.as_str(), e.seq as i64);
    }
    last
}

/// The one statement that writes rows: `events`, the `new` runs (with their definitions) and
/// the `moved` runs.
fn write_rows(
    wire: &mut Wire,
    statements: &Statements,
    events: &[&Event],
    new: &RunColumns,
    moved: &RunColumns,
) -> Result<(), WireError> {
    let ev = EventColumns::of(events);
    if let (true, [seq], [id]) = (new.id.is_empty(), &ev.seq[..], &moved.id[..]) {
        let one: [&(dyn ToSql + Sync); 16] = [
            seq,
            &ev.run_id[0],
            &ev.at[0],
            &ev.at_us[0],
            &ev.actor[0],
            &ev.kind_name[0],
            &ev.kind[0],
            &ev.prev_hash[0],
            &ev.hash[0],
            id,
            &moved.last_seq[0],
            &moved.status[0],
            &moved.active[0],
            &moved.version[0],
            &moved.run[0],
            &statements.chain_key,
        ];
        wire.execute(&statements.one, &one)?;
        return Ok(());
    }
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &ev.seq,
        &ev.run_id,
        &ev.at,
        &ev.at_us,
        &ev.actor,
        &ev.kind_name,
        &ev.kind,
        &ev.prev_hash,
        &ev.hash,
        &moved.id,
        &moved.last_seq,
        &moved.status,
        &moved.active,
        &moved.version,
        &moved.run,
    ];
    if new.id.is_empty() {
        params.push(&statements.chain_key);
        wire.execute(&statements.moves, &params)?;
        return Ok(());
    }
    let definitions = new.definitions();
    params.extend::<[&(dyn ToSql + Sync); 13]>([
        &definitions.0,
        &definitions.1,
        &new.id,
        &new.workflow,
        &new.env,
        &new.lock_key,
        &new.definition_hash,
        &new.last_seq,
        &new.status,
        &new.active,
        &new.version,
        &new.run,
        &statements.chain_key,
    ]);
    wire.execute(&statements.inserts, &params)?;
    Ok(())
}

/// Events as columns, for `unnest`.
#[derive(Default)]
struct EventColumns<'a> {
    seq: Vec<i64>,
    run_id: Vec<&'a str>,
    at: Vec<String>,
    at_us: Vec<i64>,
    actor: Vec<&'a str>,
    kind_name: Vec<&'static str>,
    kind: Vec<String>,
    prev_hash: Vec<&'a str>,
    hash: Vec<&'a str>,
}

impl<'a> EventColumns<'a> {
    fn of(events: &[&'a Event]) -> EventColumns<'a> {
        let mut c = EventColumns::default();
        for e in events {
            c.seq.push(e.seq as i64);
            c.run_id.push(e.run_id.as_str());
            c.at.push(e.at.to_string());
            c.at_us.push(micros(e.at));
            c.actor.push(&e.actor);
            c.kind_name.push(e.kind_name());
            c.kind.push(kind_json(&e.kind));
            c.prev_hash.push(&e.prev_hash);
            c.hash.push(&e.hash);
        }
        c
    }
}

/// Runs as columns, for `unnest`.
#[derive(Default)]
struct RunColumns<'a> {
    id: Vec<&'a str>,
    workflow: Vec<&'a str>,
    env: Vec<&'a str>,
    lock_key: Vec<String>,
    definition_hash: Vec<String>,
    last_seq: Vec<i64>,
    status: Vec<&'static str>,
    active: Vec<bool>,
    version: Vec<i64>,
    run: Vec<String>,
    /// Each run's definition, beside `definition_hash`.
    definition: Vec<&'a str>,
}

impl<'a> RunColumns<'a> {
    /// A new run, whose last event is `last_seq`: every column.
    fn push(&mut self, run: &'a Run, last_seq: i64, location: &str) -> Result<(), StoreError> {
        self.push_moved(run, last_seq, location)?;
        self.workflow.push(&run.workflow);
        self.env.push(&run.env);
        self.lock_key.push(run.lock_key());
        self.definition_hash.push(definition_key(run));
        self.definition.push(&run.definition);
        Ok(())
    }

    /// A moved run, whose last event is now `last_seq`: the columns a write changes, by id.
    fn push_moved(
        &mut self,
        run: &'a Run,
        last_seq: i64,
        location: &str,
    ) -> Result<(), StoreError> {
        self.id.push(run.id.as_str());
        self.last_seq.push(last_seq);
        self.status.push(run.status.as_str());
        self.active.push(!run.status.is_ended());
        self.version.push(run.version as i64);
        self.run.push(run_json(run, location)?);
        Ok(())
    }

    /// The distinct definitions of these runs: hashes and texts, for `unnest`.
    fn definitions(&self) -> (Vec<&str>, Vec<&'a str>) {
        let mut seen = HashSet::new();
        self.definition_hash
            .iter()
            .zip(&self.definition)
            .filter(|(hash, _)| seen.insert(hash.as_str()))
            .map(|(hash, text)| (hash.as_str(), *text))
            .unzip()
    }
}

/// Copies a whole chain and its runs into an empty store, as they are (`store copy`): one
/// transaction, holding the chain's lock.
pub(crate) fn import(
    writer: &mut Writer,
    location: &str,
    runs: &[Run],
    events: &[Event],
) -> Result<(), StoreError> {
    let fail = |e: WireError| failed(location, &e, Stage::Before);
    writer.known = Known::default();
    let wire = &mut writer.wire;
    wire.batch_execute("BEGIN").map_err(fail)?;
    let result = import_rows(wire, &writer.statements, location, runs, events);
    if result.is_err() {
        rollback(wire);
        return result;
    }
    wire.batch_execute("COMMIT")
        .map_err(|e| failed(location, &e, Stage::Committing))
}

fn import_rows(
    wire: &mut Wire,
    statements: &Statements,
    location: &str,
    runs: &[Run],
    events: &[Event],
) -> Result<(), StoreError> {
    let fail = |e: WireError| failed(location, &e, Stage::Before);
    let found = wire
        .simple_query(&format!(
            "SELECT pg_advisory_xact_lock({}); \
             SELECT coalesce((SELECT max(seq) FROM waygate_events), 0), \
                    (SELECT count(*) FROM waygate_runs)",
            statements.chain_key
        ))
        .map_err(fail)?;
    let number = |i: usize| {
        let row = found.get(1).and_then(|rows| rows.first());
        row.and_then(|r| cell(r, i))
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(|| StoreError::Backend {
                location: location.to_owned(),
                why: "unexpected answer to the reads of a copy: nothing was written".into(),
            })
    };
    let (seq, count) = (number(0)?, number(1)?);
    if seq != 0 || count != 0 {
        return Err(StoreError::NotAStore {
            location: location.to_owned(),
            why: format!(
                "is not empty ({count} runs, {seq} events): a copy goes only into an empty store"
            ),
        });
    }
    if events.is_empty() {
        // Nothing to copy: every run has at least its first event.
        return Ok(());
    }
    let shared = PairHeldTwice::among(runs);
    if !shared.is_empty() {
        let pairs: Vec<String> = shared.iter().map(ToString::to_string).collect();
        return Err(StoreError::Backend {
            location: location.to_owned(),
            why: format!(
                "it holds one active run per (workflow, env), and the copy has more, which a \
                 waygate from before every run held its pair's lock let in: {}; end all but one \
                 of each in the source (`waygate abort RUN --reason ..`), then copy again; \
                 nothing was written",
                pairs.join("; ")
            ),
        });
    }
    let last = last_seqs(events);
    let mut new = RunColumns::default();
    let mut seen = HashSet::new();
    for run in runs {
        if seen.insert(run.id.clone()) {
            let Some(&last_seq) = last.get(run.id.as_str()) else {
                return Err(StoreError::Backend {
                    location: location.to_owned(),
                    why: format!(
                        "run {} has no event in the copy (every run has at least its first): \
                         nothing was written",
                        run.id
                    ),
                });
            };
            new.push(run, last_seq, location)?;
        }
    }
    let none = RunColumns::default();
    let mut chunks = events.chunks(5000);
    // The runs with the first events.
    let first = chunks.next().unwrap_or(&[]);
    let first: Vec<&Event> = first.iter().collect();
    write_rows(wire, statements, &first, &new, &none).map_err(fail)?;
    for chunk in chunks {
        let chunk: Vec<&Event> = chunk.iter().collect();
        write_rows(wire, statements, &chunk, &none, &none).map_err(fail)?;
    }
    // The time index's block ranges are summarised by autovacuum as they fill; a copy fills
    // many at once, so they are summarised now, before the first `audit --since` reads them.
    wire.batch_execute("SELECT brin_summarize_new_values('waygate_events_at')")
        .map_err(fail)?;
    Ok(())
}
