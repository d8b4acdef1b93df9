//! `verify` on PostgreSQL: every event recomputed in seq order, and the head row compared with
//! the chain's end, so an event changed, deleted or inserted behind the store's back is named.
//!
//! Each event's own hash is checked on as many threads as there are cores (decoding and
//! hashing are the cost), while another thread reads the next rows; the links between events
//! are then checked in order by core's `ChainCheck`, the one rule for every backend.

use std::sync::mpsc::sync_channel;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{IsolationLevel, Row};
use waygate_core::event::Event;
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
        let head = tx.query_one("SELECT seq, hash FROM waygate_head", &[])?;
        let (head_seq, head_hash): (i64, String) = (head.get(0), head.get(1));
        let mut rows = tx.query_raw(
            "SELECT seq, run_id, at, actor, kind, prev_hash, hash, kind_name, at_us \
             FROM waygate_events ORDER BY seq",
            std::iter::empty::<i64>(),
        )?;
        let mut chain = Chain::new(head_seq);
        let (send, batches) = sync_channel::<Vec<Row>>(2);
        let read = std::thread::scope(|scope| {
            let reader = scope.spawn(move || -> Result<(), postgres::Error> {
                let mut batch = Vec::with_capacity(BATCH);
                while let Some(row) = rows.next()? {
                    batch.push(row);
                    if batch.len() == BATCH
                        && send
                            .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                            .is_err()
                    {
                        return Ok(());
                    }
                }
                if !batch.is_empty() {
                    let _ = send.send(batch);
                }
                Ok(())
            });
            for batch in batches.iter() {
                if chain.bad.is_some() {
                    break;
                }
                for checked in check_all(&batch) {
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
        Ok(chain.report(&head_hash))
    })
}

/// One row, decoded and its own hash checked; or the row's seq and what is wrong with it.
type Checked = Result<(Event, bool), (u64, String)>;

/// Decodes and hash-checks `rows` on every core, in order.
fn check_all(rows: &[Row]) -> Vec<Checked> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = rows.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = rows
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(check_row).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

fn check_row(row: &Row) -> Checked {
    let event = event_from(row).map_err(|why| {
        let seq: i64 = row.try_get(0).unwrap_or(0);
        (
            u64::try_from(seq).unwrap_or(0),
            format!("unreadable row: {why}"),
        )
    })?;
    // The columns the indexes use must say what the event says.
    let kind_name: String = row.get(7);
    let at_us: i64 = row.get(8);
    if kind_name != event.kind_name() || at_us != micros(event.at) {
        return Err((
            event.seq,
            "its kind_name or at_us column was altered: it no longer matches the event".into(),
        ));
    }
    let hash_ok = event.hash_is_right();
    Ok((event, hash_ok))
}

/// The chain so far: its links, its last intact event, the first bad one.
struct Chain {
    check: ChainCheck,
    head_seq: i64,
    count: u64,
    last: Option<ChainHead>,
    /// The intact event before `last`.
    before_last: Option<ChainHead>,
    bad: Option<BadEvent>,
}

impl Chain {
    fn new(head_seq: i64) -> Chain {
        Chain {
            check: ChainCheck::new(),
            head_seq,
            count: 0,
            last: None,
            before_last: None,
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

    fn take(&mut self, checked: Checked) {
        self.count += 1;
        let (event, hash_ok) = match checked {
            Ok(checked) => checked,
            Err((seq, problem)) => {
                let seq = if seq == 0 { self.check.next_seq() } else { seq };
                return self.fail(seq, problem);
            }
        };
        if let Err(problem) = self.check.check_link(&event, hash_ok) {
            return self.fail(event.seq, problem);
        }
        if event.seq as i64 > self.head_seq {
            let problem = format!(
                "inserted behind the store's back: the head row records events up to {}",
                self.head_seq
            );
            return self.fail(event.seq, problem);
        }
        self.before_last = self.last.replace(ChainHead {
            seq: event.seq,
            hash: event.hash,
        });
    }

    fn report(mut self, head_hash: &str) -> VerifyReport {
        if self.bad.is_none() {
            let end = self.last.as_ref().map_or(0, |h| h.seq as i64);
            if end < self.head_seq {
                let problem = format!(
                    "missing: the chain ends after event {end}, but the head row records \
                     events up to {}",
                    self.head_seq
                );
                self.fail(end as u64 + 1, problem);
            } else if let Some(h) = self.last.clone().filter(|h| h.hash != head_hash) {
                // The head row disagrees with the last event: the chain is intact before it.
                self.last = self.before_last.take();
                self.fail(
                    h.seq,
                    "the head row's hash is not this event's: the head or the event was altered"
                        .into(),
                );
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
