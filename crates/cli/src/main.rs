//! The `waygate` binary: parse the command line, run the command, map the result to the
//! contract's exit codes in one place.

mod cli;
mod commands;
mod exit;
mod render;
mod workflow;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::{CliError, Exit};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Usage as u8 } else { 0 });
        }
    };
    init_tracing(cli.global.verbose);
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok.into(),
        Err(e) => {
            if !matches!(e, CliError::Invalid(_)) {
                eprintln!("error: {e}");
            }
            e.exit().into()
        }
    }
}

fn run(cli: Cli) -> Result<Exit, CliError> {
    let g = &cli.global;
    match &cli.command {
        Command::Validate { files } => commands::validate::run(files, g.format),
        Command::Graph { file, mermaid } => commands::graph::run(file, *mermaid),
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}
