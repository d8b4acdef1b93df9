//! `store salvage`: the way out of a damaged store (see `docs/storage.md`, "Salvage").

use std::path::Path;

use serde_json::json;
use waygate_core::store::EmbeddedStore;

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
