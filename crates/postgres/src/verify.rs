//! `verify` on PostgreSQL: every event recomputed in seq order (core's `ChainCheck`, the one
//! rule for every backend), and the head row compared with the chain's end, so an event
//! changed, deleted or inserted behind the store's back is named.

use postgres::IsolationLevel;
use waygate_core::store::{BadEvent, ChainCheck, ChainHead, StoreError, VerifyReport};

use crate::rows::{event_from, kind_json, micros};
use crate::store::PgStore;

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
        let rows = tx.query_raw(
            "SELECT seq, run_id, at, actor, kind, prev_hash, hash, kind_name, at_us \
             FROM waygate_events ORDER BY seq",
            std::iter::empty::<i64>(),
        )?;
        let report = check_rows(rows, head_seq, &head_hash)?;
        tx.commit()?;
        Ok(report)
    })
}

fn check_rows(
    mut rows: postgres::RowIter<'_>,
    head_seq: i64,
    head_hash: &str,
) -> Result<VerifyReport, postgres::Error> {
    use postgres::fallible_iterator::FallibleIterator;
    let mut check = ChainCheck::new();
    let mut count = 0u64;
    let mut last: Option<ChainHead> = None;
    let bad = |count: u64, last: Option<ChainHead>, seq: u64, problem: String| VerifyReport {
        events: count,
        first_bad: Some(BadEvent {
            seq,
            problem,
            location: None,
        }),
        head: last,
        ..VerifyReport::default()
    };
    while let Some(row) = rows.next()? {
        count += 1;
        let expected = check.next_seq();
        let event = match event_from(&row) {
            Ok(event) => event,
            Err(why) => {
                let seq: i64 = row.try_get(0).unwrap_or(0);
                let seq = u64::try_from(seq).unwrap_or(expected);
                return Ok(bad(count, last, seq, format!("unreadable row: {why}")));
            }
        };
        if let Err(problem) = check.check(&event) {
            return Ok(bad(count, last, event.seq, problem));
        }
        // The columns the indexes use must say what the event says.
        let kind_name: String = row.get(7);
        let at_us: i64 = row.get(8);
        if kind_name != event.kind_name() || at_us != micros(event.at) {
            return Ok(bad(
                count,
                last,
                event.seq,
                "its kind_name or at_us column was altered: it no longer matches the event".into(),
            ));
        }
        if kind_json(&event.kind) != row.get::<_, String>(4) {
            return Ok(bad(
                count,
                last,
                event.seq,
                "its kind is not written as the hash encodes it".into(),
            ));
        }
        if event.seq as i64 > head_seq {
            return Ok(bad(
                count,
                last,
                event.seq,
                format!(
                    "inserted behind the store's back: the head row records events up to \
                     {head_seq}"
                ),
            ));
        }
        last = Some(ChainHead {
            seq: event.seq,
            hash: event.hash,
        });
    }
    let end = last.as_ref().map_or(0, |h| h.seq as i64);
    if end < head_seq {
        return Ok(bad(
            count,
            last,
            end as u64 + 1,
            format!(
                "missing: the chain ends after event {end}, but the head row records events \
                 up to {head_seq}"
            ),
        ));
    }
    if let Some(h) = &last {
        if h.hash != head_hash {
            return Ok(bad(
                count,
                last.clone(),
                h.seq,
                "the head row's hash is not this event's: the head or the event was altered".into(),
            ));
        }
    }
    Ok(VerifyReport {
        events: count,
        head: last,
        ..VerifyReport::default()
    })
}
