//! `waygate completions SHELL` and `waygate man`: generated from the clap definitions in
//! `cli.rs`, so they always list exactly the commands and flags the binary has.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::{CliError, Exit};

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<Exit, CliError> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "waygate", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(Exit::Ok)
}

/// Prints `waygate.1`, or writes every page into `out`.
pub fn man(out: Option<&Path>) -> Result<Exit, CliError> {
    let cmd = Cli::command();
    match out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            std::io::stdout().lock().write_all(&page)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            // One page per command, named `waygate-validate.1` and so on.
            clap_mangen::generate_to(cmd, dir)?;
            println!("manual pages written to {}", dir.display());
        }
    }
    Ok(Exit::Ok)
}
