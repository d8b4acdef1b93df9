//! `verify` on PostgreSQL: every event recomputed in seq order, and the chain's end compared
//! with what the runs' rows record (each the seq of its run's last event), so an event
//! changed, deleted or inserted behind the store's back is named.
//!
//! Each event's own hash is checked on as many threads as there are cores, while another
//! thread reads the next rows: recomputed from the columns as they are (they hold the bytes
//! the hash covers), and only where that fails from the decoded event, for the exact verdict.
//! The links between events are then checked in order by core's `ChainCheck`, the one rule
//! for every backend.

use std::collections::HashSet;
use std::sync::mpsc::sync_channel;

use postgres::{IsolationLevel, Row};
use waygate_core::event::StoredEvent;
use waygate_core::store::{BadEvent, ChainCheck, ChainHead, StoreError, VerifyReport};

use crate::rows::{event_from, micros};
use crate::store::PgStore;

/// Rows read and checked at a time.
const BATCH: usize = 4096;

pub(crate) fn verify(store: &PgStore) -> Result<VerifyReport, StoreError> {
    store.read(|client| {
        // One snapshot: commits made meanwhile are neither half seen nor waited for.
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        // The runs' rows: every event's run must have one, and the chain ends where the last
        // event of the run written last does.
        let mut runs = HashSet::new();
        let mut end = 0;
        for row in tx.query("SELECT id, last_seq FROM waygate_runs", &[])? {
            end = end.max(row.try_get::<_, i64>(1)?);
            runs.insert(row.try_get::<_, String>(0)?);
        }
        // A cursor read a batch at a time: each batch arrives in one wait for the connection
        // (a row at a time costs a wait per row, a good part of the whole on a million).
        tx.batch_execute(
            "DECLARE waygate_verify NO SCROLL CURSOR FOR \
             SELECT seq, run_id, at, actor, kind, prev_hash, hash, kind_name, at_us \
             FROM waygate_events ORDER BY seq",
        )?;
        let fetch = tx.prepare(&format!("FETCH {BATCH} FROM waygate_verify"))?;
        let mut chain = Chain::new(end);
        let (send, batches) = sync_channel::<Vec<Row>>(2);
        let cursor = &mut tx;
        let read = std::thread::scope(|scope| {
            let reader = scope.spawn(move || -> Result<(), postgres::Error> {
                loop {
                    let batch = cursor.query(&fetch, &[])?;
                    if batch.is_empty() || send.send(batch).is_err() {
                        return Ok(());
                    }
                }
            });
            for batch in batches.iter() {
                if chain.bad.is_some() {
                    break;
                }
                for checked in check_all(&batch, &runs) {
                    chain.take(checked);
                    if chain.bad.is_some() {
                        break;
                    }
                }
            }
            // Dropping the receiver ends the reader at its next batch.
            drop(batches);
            reader
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        });
        read?;
        tx.commit()?;
        Ok(chain.report())
    })
}

/// What the links between events need of one row, borrowed from it, and whether its own
/// hash is right; or the row's seq and what is wrong with it.
type Checked<'a> = Result<Link<'a>, (u64, String)>;

struct Link<'a> {
    seq: u64,
    prev_hash: &'a str,
    hash: &'a str,
    hash_ok: bool,
}

/// Checks `rows` on every core, in order: each event on its own, and that its run has a row
/// among `runs`.
fn check_all<'a>(rows: &'a [Row], runs: &HashSet<String>) -> Vec<Checked<'a>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = rows.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = rows
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut seq = String::new();
                    part.iter()
                        .map(|row| {
                            let checked =
                                check_stored(row, &mut seq).unwrap_or_else(|| check_row(row));
                            match (checked, row.try_get::<_, &str>(1)) {
                                (Ok(link), Ok(run)) if !runs.contains(run) => Err((
                                    link.seq,
                                    format!(
                                        "its run {run} has no row in waygate_runs: the run's \
                                         row was deleted behind the store's back"
                                    ),
                                )),
                                (checked, _) => checked,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// The common case, without decoding the event: the hash recomputed from the columns as
/// they are (they hold the bytes the hash covers, `rows.rs`), and the index columns compared
/// with them. `None` for anything else (a wrong hash, a value not as expected), which
/// [`check_row`] then judges exactly; so this only ever speeds up rows that are right.
fn check_stored<'a>(row: &'a Row, seq_text: &mut String) -> Option<Checked<'a>> {
    use std::fmt::Write as _;
    let seq: i64 = row.try_get(0).ok()?;
    seq_text.clear();
    let _ = write!(seq_text, "{seq}");
    let (prev_hash, hash): (&'a str, &'a str) = (row.try_get(5).ok()?, row.try_get(6).ok()?);
    let stored = StoredEvent {
        seq: seq_text,
        run_id: row.try_get(1).ok()?,
        at: row.try_get(2).ok()?,
        actor: row.try_get(3).ok()?,
        kind: row.try_get(4).ok()?,
        prev_hash,
        hash,
    };
    if !stored.hash_matches() {
        return None;
    }
    // The columns the indexes use must say what the event says.
    let kind_name: &str = row.try_get(7).ok()?;
    let at_us: i64 = row.try_get(8).ok()?;
    let at: jiff::Timestamp = stored.at.parse().ok()?;
    if stored.kind_name() != Some(kind_name) || at_us != micros(at) {
        return None;
    }
    Some(Ok(Link {
        seq: u64::try_from(seq).ok()?,
        prev_hash,
        hash,
        hash_ok: true,
    }))
}

/// One row decoded into its event and its hash recomputed from that: the exact verdict.
fn check_row(row: &Row) -> Checked<'_> {
    let seq_of = || u64::try_from(row.try_get::<_, i64>(0).unwrap_or(0)).unwrap_or(0);
    let event = event_from(row).map_err(|why| (seq_of(), format!("unreadable row: {why}")))?;
    // The columns the indexes use must say what the event says.
    let kind_name: String = row.get(7);
    let at_us: i64 = row.get(8);
    if kind_name != event.kind_name() || at_us != micros(event.at) {
        return Err((
            event.seq,
            "its kind_name or at_us column was altered: it no longer matches the event".into(),
        ));
    }
    let (Ok(prev_hash), Ok(hash)) = (row.try_get(5), row.try_get(6)) else {
        return Err((event.seq, "unreadable row: its hashes are not text".into()));
    };
    Ok(Link {
        seq: event.seq,
        prev_hash,
        hash,
        hash_ok: event.hash_is_right(),
    })
}

/// The chain so far: its links, its last intact event, the first bad one.
struct Chain {
    check: ChainCheck,
    /// Where the runs' rows say the chain ends.
    end: i64,
    count: u64,
    last: Option<ChainHead>,
    bad: Option<BadEvent>,
}

impl Chain {
    fn new(end: i64) -> Chain {
        Chain {
            check: ChainCheck::new(),
            end,
            count: 0,
            last: None,
            bad: None,
        }
    }

    fn fail(&mut self, seq: u64, problem: String) {
        self.bad = Some(BadEvent {
            seq,
            problem,
            location: None,
        });
    }

    fn take(&mut self, checked: Checked<'_>) {
        self.count += 1;
        let link = match checked {
            Ok(link) => link,
            Err((seq, problem)) => {
                let seq = if seq == 0 { self.check.next_seq() } else { seq };
                return self.fail(seq, problem);
            }
        };
        if let Err(problem) =
            self.check
                .check_fields(link.seq, link.prev_hash, link.hash, link.hash_ok)
        {
            return self.fail(link.seq, problem);
        }
        if link.seq as i64 > self.end {
            let problem = format!(
                "inserted behind the store's back: the runs' rows record events up to {}",
                self.end
            );
            return self.fail(link.seq, problem);
        }
        // The last intact event, its buffer reused.
        match &mut self.last {
            Some(last) => {
                last.seq = link.seq;
                last.hash.clear();
                last.hash.push_str(link.hash);
            }
            None => {
                self.last = Some(ChainHead {
                    seq: link.seq,
                    hash: link.hash.to_owned(),
                })
            }
        }
    }

    fn report(mut self) -> VerifyReport {
        if self.bad.is_none() {
            let end = self.last.as_ref().map_or(0, |h| h.seq as i64);
            if end < self.end {
                let problem = format!(
                    "missing: the chain ends after event {end}, but the runs' rows record \
                     events up to {}",
                    self.end
                );
                self.fail(end as u64 + 1, problem);
            }
        }
        VerifyReport {
            events: self.count,
            first_bad: self.bad,
            head: self.last,
            ..VerifyReport::default()
        }
    }
}
