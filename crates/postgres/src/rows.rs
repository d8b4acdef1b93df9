//! Rows to runs and events, and back. A run is kept as its JSON (what the embedded store
//! keeps), with the pinned definition in a column of its own written once; an event as the
//! fields its hash covers, each as the hash encodes it.

use postgres::Row;
use waygate_core::event::{Event, EventKind};
use waygate_core::run::{Run, RunId};
use waygate_core::store::StoreError;

/// The columns [`event_from`] reads, in its order.
pub(crate) const EVENT_COLUMNS: &str = "seq, run_id, at, actor, kind, prev_hash, hash";

/// A run's row: its JSON without the definition, and the definition.
pub(crate) fn run_json(run: &Run, location: &str) -> Result<String, StoreError> {
    let mut value = serde_json::to_value(run).map_err(|e| bad_row(location, &run.id, e))?;
    if let Some(map) = value.as_object_mut() {
        map.remove("definition");
    }
    Ok(value.to_string())
}

/// The run of a row's `run` and `definition` columns.
pub(crate) fn run_from(json: &str, definition: String, location: &str) -> Result<Run, StoreError> {
    let mut value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| StoreError::Backend {
            location: location.to_owned(),
            why: format!("a run's row is not readable: {e}"),
        })?;
    if let Some(map) = value.as_object_mut() {
        map.insert("definition".into(), serde_json::Value::String(definition));
    }
    serde_json::from_value(value).map_err(|e| StoreError::Backend {
        location: location.to_owned(),
        why: format!("a run's row is not readable: {e}"),
    })
}

fn bad_row(location: &str, id: &RunId, e: serde_json::Error) -> StoreError {
    StoreError::Backend {
        location: location.to_owned(),
        why: format!("run {id} cannot be written as JSON: {e}"),
    }
}

/// The event of a row read with [`EVENT_COLUMNS`] first; what is wrong with it otherwise.
pub(crate) fn event_from(row: &Row) -> Result<Event, String> {
    let seq: i64 = row.try_get(0).map_err(|e| e.to_string())?;
    let at: String = row.try_get(2).map_err(|e| e.to_string())?;
    let kind: String = row.try_get(4).map_err(|e| e.to_string())?;
    Ok(Event {
        seq: u64::try_from(seq).map_err(|_| format!("seq {seq} is negative"))?,
        run_id: RunId(row.try_get(1).map_err(|e| e.to_string())?),
        at: at
            .parse()
            .map_err(|e| format!("`at` is not a time ({at:?}): {e}"))?,
        actor: row.try_get(3).map_err(|e| e.to_string())?,
        kind: serde_json::from_str::<EventKind>(&kind)
            .map_err(|e| format!("`kind` is not an event kind: {e}"))?,
        prev_hash: row.try_get(5).map_err(|e| e.to_string())?,
        hash: row.try_get(6).map_err(|e| e.to_string())?,
    })
}

/// The events of rows read with [`EVENT_COLUMNS`]; an unreadable row is an error naming it.
pub(crate) fn events_from(rows: &[Row], location: &str) -> Result<Vec<Event>, StoreError> {
    rows.iter()
        .map(|row| {
            event_from(row).map_err(|why| StoreError::Backend {
                location: location.to_owned(),
                why: format!(
                    "an event's row is not readable: {why} (`waygate audit verify` names it)"
                ),
            })
        })
        .collect()
}

/// An event's time in whole microseconds: what the time index holds. Any rounding will do
/// that never puts a later time before an earlier one; exact times are compared after the
/// index narrowed the rows.
pub(crate) fn micros(at: jiff::Timestamp) -> i64 {
    at.as_microsecond()
}

/// The kind's compact JSON, as the hash covers it.
pub(crate) fn kind_json(kind: &EventKind) -> String {
    serde_json::to_string(kind).unwrap_or_default()
}
