//! Rows to runs and events, and back. A run is kept as its JSON (what the embedded store
//! keeps), with the pinned definition in a table of its own, once per text; an event as the
//! fields its hash covers, each as the hash encodes it.

use postgres::Row;
use waygate_core::event::{Event, EventKind};
use waygate_core::run::{Run, RunId};
use waygate_core::store::StoreError;

/// The columns [`event_from`] reads, in its order.
pub(crate) const EVENT_COLUMNS: &str = "seq, run_id, at, actor, kind, prev_hash, hash";

/// The fields of a run a commit changes (core's `store::rules::apply_change`), put first in
/// its row's JSON so that an update logs little besides them (`schema.rs` says why). Only
/// the layout depends on this list: a field missing from it is still kept, after these.
const CHANGING: [&str; 6] = [
    "version",
    "state",
    "status",
    "state_entered_at",
    "updated_at",
    "ended_at",
];

/// A run's row: its JSON without the definition (kept once, in `waygate_definitions`), the
/// fields a commit changes first.
pub(crate) fn run_json(run: &Run, location: &str) -> Result<String, StoreError> {
    let value = serde_json::to_value(run).map_err(|e| bad_row(location, &run.id, e))?;
    let serde_json::Value::Object(mut fields) = value else {
        return Ok(value.to_string());
    };
    fields.remove("definition");
    let mut ordered = serde_json::Map::with_capacity(fields.len());
    for key in CHANGING {
        if let Some(v) = fields.remove(key) {
            ordered.insert(key.to_owned(), v);
        }
    }
    ordered.extend(fields);
    Ok(serde_json::Value::Object(ordered).to_string())
}

/// The key of a run's definition in `waygate_definitions`: the SHA-256 of its text, computed
/// here rather than taken from the run, so a row can never name another text.
pub(crate) fn definition_key(run: &Run) -> String {
    waygate_core::run::sha256_hex(run.definition.as_bytes())
}

/// The run of a row's `run` column and its definition's text.
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
