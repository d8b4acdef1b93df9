//! Reading a workflow file for a command: validate it, print its warnings, refuse it on errors.

use std::path::Path;

use waygate_core::model::Workflow;
use waygate_core::validate::validate;

use crate::exit::CliError;
use crate::render;

/// A validated workflow with the exact text it came from (runs pin that text).
#[derive(Debug)]
pub struct Loaded {
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
pub fn load(path: &Path) -> Result<Loaded, CliError> {
    let file = path.display().to_string();
    let text = read(path)?;
    from_text(file, text)
}

/// Validates a workflow given as text (a run's pinned definition, say).
pub fn from_text(file: String, text: String) -> Result<Loaded, CliError> {
    let validated = validate(&file, &text);
    if validated.has_errors() {
        eprint!(
            "{}",
            render::diagnostics(&file, &text, &validated.diagnostics)
        );
        return Err(CliError::Invalid(file));
    }
    let workflow = validated
        .workflow
        .ok_or_else(|| CliError::Invalid(file.clone()))?;
    Ok(Loaded {
        file,
        text,
        workflow,
    })
}
