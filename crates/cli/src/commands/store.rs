//! `store salvage`: the way out of a damaged store (see `docs/storage.md`, "Salvage");
//! `store copy`: a whole store into an empty one, either backend to either.

use std::path::Path;

use serde_json::json;
use waygate_core::store::{EmbeddedStore, EventFilter, RunFilter, StopWaiting, Store};
use waygate_executor::Clock;
use waygate_postgres::PgStore;

use crate::app::App;
use crate::cli::Format;
use crate::exit::{CliError, Exit};
use crate::output::{self, lost_events};

/// `store salvage --to DIR`: everything readable of the store in `from` into a new store in
/// `to`, the loss recorded there.
pub fn salvage(app: &App, from: &Path, to: &Path) -> Result<Exit, CliError> {
    let report = EmbeddedStore::open_existing_with(
        crate::app::embedded_dir(from)?,
        crate::app::store_options(&app.stop_waiting),
    )?
    .salvage(crate::app::embedded_dir(to)?, app.actor()?)?;
    match app.format {
        Format::Human | Format::Csv => {
            let mut text = format!(
                "salvaged {} into {}: {} events of {} runs carried (renumbered and chained anew; \
                 {} is unchanged)\n",
                from.display(),
                report.to.display(),
                report.carried,
                report.runs,
                from.display(),
            );
            if report.lost.is_empty() {
                text.push_str("lost: nothing\n");
            }
            for lost in &report.lost {
                text.push_str(&format!("lost: {}\n", lost_events(lost)));
            }
            if report.unfinished > 0 {
                text.push_str(
                    "left out: the journal's end, which is no whole commit: a write that never \
                     finished (never acknowledged), unless its last commit was damaged after it \
                     was written\n",
                );
            }
            text.push_str(&format!(
                "recorded as event {} (StoreSalvaged); head: event {} {}\n",
                report.head.seq, report.head.seq, report.head.hash
            ));
            output::print(&text)?;
        }
        _ => output::json(&json!({
            "from": from.display().to_string(),
            "to": report.to.display().to_string(),
            "carried": report.carried,
            "runs": report.runs,
            "lost": report.lost,
            "unfinished": report.unfinished,
            "head": { "seq": report.head.seq, "hash": report.head.hash },
        }))?,
    }
    Ok(Exit::Ok)
}

/// `store copy --from SRC --to DST`: every run and every event of `from`, as they are, into
/// the empty store `to`; then the copy is verified and its head compared with the last event
/// copied. A source that does not verify is not copied.
pub fn copy(from: &Path, to: &Path, format: Format) -> Result<Exit, CliError> {
    let options = crate::app::store_options(&StopWaiting::default());
    let clock = crate::app::process_clock();
    let source = crate::app::open_store(
        from,
        false,
        options.clone(),
        std::sync::Arc::new(move || clock.now()),
    )?
    .store;
    let checked = source.verify()?;
    if let Some(bad) = &checked.first_bad {
        return Err(CliError::BadInput(format!(
            "{} does not verify (event {}: {}); nothing was copied: `waygate audit verify` \
             says more",
            shown(from),
            bad.seq,
            bad.problem
        )));
    }
    let runs = source.list_runs(&RunFilter::default())?;
    let events = source.scan_events(&EventFilter::default())?;
    let copy: Box<dyn Store> = match to.to_str().filter(|t| waygate_postgres::is_postgres_url(t)) {
        Some(url) => {
            let (store, _) = PgStore::open(url, true)?;
            store.import(&runs, &events)?;
            Box::new(store)
        }
        None => Box::new(EmbeddedStore::import(to, options, &runs, &events)?),
    };
    let report = copy.verify()?;
    let head = report.head.clone();
    let expected = events.last().map(|e| (e.seq, e.hash.clone()));
    let same = head.as_ref().map(|h| (h.seq, h.hash.clone())) == expected;
    if !report.is_ok() || !same {
        return Err(CliError::BadInput(format!(
            "the copy in {} does not verify as its source: {}",
            shown(to),
            report
                .first_bad
                .map_or("its head differs".to_owned(), |b| format!(
                    "event {}: {}",
                    b.seq, b.problem
                ))
        )));
    }
    match format {
        Format::Human | Format::Csv | Format::Jsonl | Format::Svg => {
            let mut text = format!(
                "copied {} runs and {} events from {} to {}; the copy verifies\n",
                runs.len(),
                events.len(),
                shown(from),
                shown(to)
            );
            match &head {
                Some(h) => text.push_str(&format!(
                    "head: event {} {} (the source's)\n",
                    h.seq, h.hash
                )),
                None => text.push_str("head: none (no events)\n"),
            }
            output::print(&text)?;
        }
        Format::Json => output::json(&json!({
            "from": shown(from),
            "to": shown(to),
            "runs": runs.len(),
            "events": events.len(),
            "ok": true,
            "head": head.map(|h| json!({ "seq": h.seq, "hash": h.hash })),
        }))?,
    }
    Ok(Exit::Ok)
}

/// A store's location for people: a URL without its password.
fn shown(location: &Path) -> String {
    waygate_postgres::redact(&location.to_string_lossy())
}
