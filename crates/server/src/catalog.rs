//! The workflows a server can start: the valid files of its `--workflows` directory.
//!
//! Only these can be started, by name, so a client never names a file on the server's disk
//! (a name is looked up here, never joined to a path). Each file is read and validated as
//! `waygate validate` would; an invalid one is reported and left out, the others load. A
//! reload (SIGHUP, `POST /v1/workflows/reload`) reads the directory again and replaces the
//! catalog only as a whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use waygate_core::model::Workflow;
use waygate_core::validate::{read_file, validate};

/// A loaded workflow and the text a run pins.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file it came from.
    pub file: PathBuf,
    /// Its text, exactly as read.
    pub text: String,
    /// The model.
    pub workflow: Workflow,
}

/// A file that was not loaded, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    /// The file.
    pub file: String,
    /// Its problems, one line each.
    pub problems: Vec<String>,
}

/// The workflows of one directory.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// By workflow name.
    pub loaded: BTreeMap<String, Loaded>,
    /// Files left out.
    pub rejected: Vec<Rejected>,
}

impl Catalog {
    /// Reads every `*.ron` file directly in `dir` (in name order). An error only when the
    /// directory itself cannot be read.
    pub fn read(dir: &Path) -> std::io::Result<Catalog> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ron") && p.is_file())
            .collect();
        files.sort();
        let mut catalog = Catalog::default();
        for path in files {
            let shown = path.display().to_string();
            let reject = |problems| Rejected {
                file: shown.clone(),
                problems,
            };
            let text = match read_file(&path) {
                Ok(text) => text,
                Err(d) => {
                    catalog.rejected.push(reject(vec![d.message.clone()]));
                    continue;
                }
            };
            let workflow = match checked(&shown, &text) {
                Ok(w) => w,
                Err(errors) => {
                    catalog.rejected.push(reject(errors));
                    continue;
                }
            };
            if let Some(first) = catalog.loaded.get(&workflow.name) {
                catalog.rejected.push(reject(vec![format!(
                    "workflow `{}` is loaded from {} already",
                    workflow.name,
                    first.file.display()
                )]));
                continue;
            }
            catalog.loaded.insert(
                workflow.name.clone(),
                Loaded {
                    file: path,
                    text,
                    workflow,
                },
            );
        }
        Ok(catalog)
    }
}

/// `text` (of `file`) as a workflow, or its errors, one line each (`LINE:COLUMN: message`).
pub fn checked(file: &str, text: &str) -> Result<Workflow, Vec<String>> {
    let validated = validate(file, text);
    let errors: Vec<String> = validated
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect();
    match validated.workflow {
        Some(w) if errors.is_empty() => Ok(w),
        _ => Err(errors),
    }
}
