//! Reading a workflow file for a command: validate it, print its warnings, refuse it on errors.

use std::path::Path;

use waygate_core::model::Workflow;
use waygate_core::validate::validate;

use crate::diagnostics;
use crate::exit::CliError;

/// A workflow file that validated: its model and the exact text it came from (a run pins
/// that text; docs/storage.md, "Pinned definitions").
#[derive(Debug)]
pub struct WorkflowFile {
    /// The file as named by the user.
    pub file: String,
    /// Its text.
    pub text: String,
    /// The model.
    pub workflow: Workflow,
}

/// Reads the file, refusing one too large to be a workflow (core's `read_file` owns the limit).
pub fn read(path: &Path) -> Result<String, CliError> {
    waygate_core::validate::read_file(path).map_err(CliError::File)
}

/// Reads and validates `path`; errors are rendered to stderr and refuse the file.
pub fn load(path: &Path) -> Result<WorkflowFile, CliError> {
    let file = path.display().to_string();
    let text = read(path)?;
    let validated = validate(&file, &text);
    if validated.has_errors() {
        eprint!(
            "{}",
            diagnostics::render(&file, &text, &validated.diagnostics)
        );
        return Err(CliError::Invalid(file));
    }
    let workflow = validated
        .workflow
        .ok_or_else(|| CliError::Invalid(file.clone()))?;
    Ok(WorkflowFile {
        file,
        text,
        workflow,
    })
}
