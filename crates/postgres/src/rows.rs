//! Rows to runs and events, and back. A run is kept as its JSON (what the embedded store
//! keeps), with the pinned definition in a table of its own, once per text; an event as the
//! fields its hash covers, each as the hash encodes it.

use postgres::Row;
use std::collections::BTreeMap;
use waygate_core::event::{Event, EventKind};

use waygate_core::run::{Run, RunId, RunStatus};
use waygate_core::store::StoreError;

/// The columns [`event_from`] reads, in its order.
pub(crate) const EVENT_COLUMNS: &str = "seq, run_id, at, actor, kind, prev_hash, hash";

/// A run's row: its JSON without the definition (kept once, in `waygate_definitions`), the
/// fields a commit changes (core's `store::rules::apply_change`) first, so that an update logs
/// little besides them (`schema.rs` says why).
pub(crate) fn run_json(run: &Run, location: &str) -> Result<String, StoreError> {
    serde_json::to_string(&RunRow::of(run)).map_err(|e| bad_row(location, &run.id, e))
}

/// A run as its row's JSON holds it, borrowed: serialized straight to text, without a tree of
/// values in between (every commit writes one: docs/performance.md). Each field is the run's,
/// serialized by its own type as `Run`'s derive does, with the same attributes.
#[derive(serde::Serialize)]
struct RunRow<'a> {
    version: u64,
    state: &'a str,
    status: &'a RunStatus,
    state_entered_at: &'a jiff::Timestamp,
    updated_at: &'a jiff::Timestamp,
    ended_at: &'a Option<jiff::Timestamp>,
    id: &'a RunId,
    workflow: &'a str,
    env: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    lock: &'a Option<String>,
    initiator: &'a str,
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    workdir: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_path: &'a Option<String>,
    vars: &'a BTreeMap<String, String>,
    definition_hash: &'a str,
    started_at: &'a jiff::Timestamp,
}

impl<'a> RunRow<'a> {
    fn of(run: &'a Run) -> RunRow<'a> {
        // Every field named, none by `..`: a field added to `Run` does not compile here until
        // the row keeps it too.
        let Run {
            id,
            workflow,
            env,
            lock,
            state,
            status,
            version,
            initiator,
            file,
            workdir,
            file_path,
            vars,
            definition: _,
            definition_hash,
            started_at,
            state_entered_at,
            updated_at,
            ended_at,
        } = run;
        RunRow {
            version: *version,
            state,
            status,
            state_entered_at,
            updated_at,
            ended_at,
            id,
            workflow,
            env,
            lock,
            initiator,
            file,
            workdir,
            file_path,
            vars,
            definition_hash,
            started_at,
        }
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The run's own JSON without its definition, and the row's, as values (the order of
    /// their fields aside).
    fn both(run: &Run) -> (serde_json::Value, serde_json::Value) {
        let mut own = serde_json::to_value(run).unwrap();
        own.as_object_mut().unwrap().remove("definition");
        let row = serde_json::from_str(&run_json(run, "here").unwrap()).unwrap();
        (own, row)
    }

    #[test]
    fn a_runs_row_is_its_json_without_the_definition_changing_fields_first() {
        let mut run = Run::new(
            RunId::from("r1"),
            "web",
            "prod",
            "build",
            "alice",
            "web.ron",
            "(name: \"web\")",
        );
        let (own, row) = both(&run);
        assert_eq!(own, row);
        run.lock = Some("db \"main\"".into());
        run.workdir = Some("/srv/web".into());
        run.file_path = Some("/srv/web/web.ron".into());
        run.vars.insert("tag".into(), "v1\n".into());
        run.status = RunStatus::Succeeded;
        run.version = 7;
        run.ended_at = Some(run.updated_at);
        let (own, row) = both(&run);
        assert_eq!(own, row);
        let json = run_json(&run, "here").unwrap();
        let changing =
            "{\"version\":7,\"state\":\"build\",\"status\":\"succeeded\",\"state_entered_at\":";
        assert!(json.starts_with(changing), "{json}");
        assert!(json.contains(",\"ended_at\":\"") && !json.contains("\"definition\":"));
        let back = run_from(&json, run.definition.clone(), "here").unwrap();
        assert_eq!(back, run);
    }
}
