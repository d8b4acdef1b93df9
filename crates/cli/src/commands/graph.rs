//! `waygate graph FILE [--mermaid] [--format svg]`: the state graph for people to look at,
//! drawn by `waygate_view` (DOT, Mermaid, or an SVG picture made here without Graphviz).

use std::path::Path;

use waygate_view::svg::{graph_svg, Embed};
use waygate_view::{dot, mermaid};

use crate::cli::Format;
use crate::exit::{CliError, Exit};
use crate::workflow;

/// Runs the command.
pub fn run(file: &Path, mermaid: bool, format: Format) -> Result<Exit, CliError> {
    if mermaid && format == Format::Svg {
        return Err(CliError::Usage(
            "--mermaid prints Mermaid text and --format svg a picture: choose one".into(),
        ));
    }
    let loaded = workflow::load(file)?;
    let text = if mermaid {
        mermaid::to_mermaid(&loaded.workflow)
    } else if format == Format::Svg {
        graph_svg(&loaded.workflow, None, Embed::Standalone)
    } else {
        dot::to_dot(&loaded.workflow)
    };
    use std::io::Write;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(Exit::Ok)
}
