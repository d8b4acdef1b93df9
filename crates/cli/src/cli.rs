//! The command line, as clap types: the contract's section 3, flag for flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declarative state-machine workflows for software deployments.
#[derive(Debug, Parser)]
#[command(name = "waygate", version, about, propagate_version = true)]
pub struct Cli {
    /// Options every command takes, before or after the subcommand.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted by every command.
#[derive(Debug, Args)]
pub struct Global {
    /// The store directory.
    #[arg(long, global = true, env = "WAYGATE_STORE", default_value = ".waygate")]
    pub store: PathBuf,
    /// Output format; `jsonl` and `csv` apply to `runs`, `history` and `audit`.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Who is acting; recorded on every event. Defaults to the OS user.
    #[arg(
        long = "as",
        global = true,
        env = "WAYGATE_ACTOR",
        value_name = "ACTOR"
    )]
    pub actor: Option<String>,
    /// More log output (-v info, -vv debug, -vvv trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables and rendered diagnostics for people.
    Human,
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check workflow files for mistakes before they run.
    Validate {
        /// Workflow files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the state graph as Graphviz DOT (or Mermaid), guards on the edges.
    Graph {
        /// The workflow file.
        file: PathBuf,
        /// Mermaid `stateDiagram-v2` instead of DOT.
        #[arg(long)]
        mermaid: bool,
    },
}
