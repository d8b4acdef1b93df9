//! `waygate validate FILE..`: every diagnostic of every file; exit 1 if any is an error.

use std::io::Write;
use std::path::PathBuf;

use waygate_core::diagnostic::{Diagnostic, Severity};
use waygate_core::text::escape_control;
use waygate_core::validate::validate;

use crate::cli::Format;
use crate::exit::{CliError, Exit};
use crate::{diagnostics, workflow};

/// Runs the command.
pub fn run(files: &[PathBuf], format: Format) -> Result<Exit, CliError> {
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut human = String::new();
    let human_wanted = matches!(format, Format::Human | Format::Csv);
    for path in files {
        let name = path.display().to_string();
        let shown = escape_control(&name);
        let text = match workflow::read(path) {
            Ok(text) => text,
            Err(CliError::File(d)) => {
                // Said once: on stderr for people, as a finding of its own in JSON.
                if human_wanted {
                    eprintln!("error: {}", escape_control(&d.to_string()));
                    if let Some(help) = &d.help {
                        eprintln!("  help: {help}");
                    }
                }
                all.push(*d);
                continue;
            }
            Err(e) => return Err(e),
        };
        let validated = validate(&name, &text);
        let errors = validated
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .count();
        let warnings = validated.diagnostics.len() - errors;
        if human_wanted {
            human.push_str(&diagnostics::render(&name, &text, &validated.diagnostics));
            human.push_str(&match (errors, warnings) {
                (0, 0) => format!("{shown}: ok\n"),
                (0, w) => format!("{shown}: ok, {w} warning{}\n", plural(w)),
                (e, w) => format!(
                    "{shown}: {e} error{}, {w} warning{}\n",
                    plural(e),
                    plural(w)
                ),
            });
        }
        all.extend(validated.diagnostics);
    }
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&all).map_err(std::io::Error::from)?
        )?,
        Format::Jsonl => {
            for d in &all {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(d).map_err(std::io::Error::from)?
                )?;
            }
        }
        Format::Human | Format::Csv | Format::Svg => out.write_all(human.as_bytes())?,
    }
    if all.iter().any(|d| d.severity == Severity::Error) {
        return Ok(Exit::Error);
    }
    Ok(Exit::Ok)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
