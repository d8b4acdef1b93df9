//! The command line, as clap types, flag for flag as `docs/cli.md` describes it.

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

/// The store directory when neither `--store` nor `WAYGATE_STORE` names one.
pub const DEFAULT_STORE: &str = ".waygate";

/// Flags accepted by every command.
#[derive(Debug, Args)]
pub struct Global {
    /// The store directory.
    #[arg(long, global = true, env = "WAYGATE_STORE", default_value = DEFAULT_STORE)]
    pub store: PathBuf,
    /// Output format; `jsonl` and `csv` apply to `runs`, `history` and `audit` (and `jsonl`
    /// to `validate`), `svg` to `graph`; other commands refuse them.
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
    /// No live output of commands (by default what they print is shown on stderr as they
    /// run, marked with state and action).
    #[arg(long, global = true)]
    pub quiet: bool,
    /// A `waygate serve` to act through instead of a store here (`docs/cli.md`, Server
    /// mode); the actor is the one the token belongs to.
    #[arg(long, global = true, env = "WAYGATE_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// A file holding the token for `--server` (else the `WAYGATE_TOKEN` environment
    /// variable; never a flag, which every local user could read in the process list).
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Also trust the CA certificates in this PEM file for an `https://` `--server` (a
    /// private CA or a self-signed server certificate), besides the public roots.
    #[arg(long, global = true, env = "WAYGATE_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
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
    /// An SVG picture (`graph` only).
    Svg,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check workflow files for mistakes before they run.
    Validate {
        /// Workflow files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A policy file every workflow must obey (docs/policies.md); repeatable. A
        /// workflow's own `policies` are checked too.
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<PathBuf>,
    },
    /// Print the state graph as Graphviz DOT (or Mermaid, or with `--format svg` an SVG
    /// picture), guards on the edges.
    Graph {
        /// The workflow file.
        file: PathBuf,
        /// Mermaid `stateDiagram-v2` instead of DOT.
        #[arg(long)]
        mermaid: bool,
    },
    /// Every path from the initial state to each terminal state, with the guards each step
    /// needs and the least and most time it can take. Nothing runs.
    Simulate {
        /// The workflow file.
        file: PathBuf,
        /// The environment whose values the guards are shown with.
        #[arg(long, required = true)]
        env: String,
    },
    /// Run scenario files: scripted guard outcomes through the real engine, nothing run for
    /// real; reports pass or fail with the path each run took.
    Test {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Create a run; prints its id.
    Start(StartArgs),
    /// Start a run and drive it to the end: the main job, one command.
    Run {
        /// What to start.
        #[command(flatten)]
        start: StartArgs,
        /// Stop with exit 4 instead of waiting on approvals, timers, windows or watches.
        #[arg(long)]
        no_wait: bool,
    },
    /// A run's state, status, outgoing transitions with their guards' last results, and
    /// pending approvals.
    Status {
        /// The run id.
        run: String,
        /// Then print each new event of the run as it is recorded, until the run ends
        /// (against a server, from its live event stream).
        #[arg(long)]
        follow: bool,
    },
    /// List runs.
    Runs {
        /// Only this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only this environment.
        #[arg(long)]
        env: Option<String>,
        /// Only this status: succeeded, failed, aborted, waiting, or active (every run that
        /// has not ended: active and waiting).
        #[arg(long)]
        status: Option<String>,
    },
    /// Evaluate the guards now and record nothing (dry run).
    Check {
        /// The run id.
        run: String,
        /// Only the transition to this state.
        #[arg(long)]
        to: Option<String>,
    },
    /// Evaluate guards and take the first transition whose guards all pass.
    Advance {
        /// The run id.
        run: String,
        /// Only the transition to this state.
        #[arg(long)]
        to: Option<String>,
    },
    /// Record your approval of an Approval guard out of the run's current state (or take it
    /// back with `--withdraw`).
    Approve {
        /// The run id.
        run: String,
        /// The guard's name.
        guard: String,
        /// Why you approve (or withdraw); kept in the audit trail.
        #[arg(long)]
        comment: Option<String>,
        /// Withdraw your approval of GUARD, given in this visit of the run's state and not used
        /// yet.
        #[arg(long)]
        withdraw: bool,
    },
    /// Advance until a terminal state, waiting out timers, windows, approvals and watches.
    Drive {
        /// The run id.
        run: String,
        /// Stop with exit 4 instead of waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Send the run to the workflow's rollback state now.
    Rollback {
        /// The run id.
        run: String,
        /// Why; kept in the audit trail.
        #[arg(long, required = true)]
        reason: String,
    },
    /// Break-glass: mark a failing or waiting guard out of the run's state passed for this
    /// visit of the state (only for those in its `overridable_by`; recorded as `Overridden`).
    Override {
        /// The run id.
        run: String,
        /// The guard's name.
        guard: String,
        /// Why; required, kept in the audit trail and shown by `status` and `history`.
        #[arg(long, required = true)]
        reason: String,
    },
    /// End the run where it is; no further transitions.
    Abort {
        /// The run id.
        run: String,
        /// Why; kept in the audit trail.
        #[arg(long, required = true)]
        reason: String,
    },
    /// Every event of one run, oldest first.
    History {
        /// The run id.
        run: String,
    },
    /// Query the whole history, or verify the hash chain (`audit verify`).
    Audit(AuditArgs),
    /// Print a shell completion script: `waygate completions bash > /etc/bash_completion.d/waygate`.
    Completions {
        /// The shell: bash, zsh, fish (also elvish, powershell).
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `waygate man > waygate.1`, or one page per command with
    /// `--out DIR`.
    Man {
        /// Write `waygate.1` and a page per command (`waygate-validate.1`, ..) into this
        /// directory instead of printing `waygate.1`.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Work on the store as a whole (`store salvage`, `store copy`).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Manage a `waygate serve` tokens file (`token new`, `token revoke`).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Serve the JSON API over HTTP (`docs/api.md`): the store held here, workflows from
    /// `--workflows`, callers known by the tokens in `--tokens`.
    Serve(ServeArgs),
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on; port 0 picks a free port (printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7440")]
    pub listen: std::net::SocketAddr,
    /// The tokens file (`waygate token new` writes it).
    #[arg(long, value_name = "FILE")]
    pub tokens: PathBuf,
    /// The directory of workflow files the server can start (by workflow name).
    #[arg(long, value_name = "DIR")]
    pub workflows: PathBuf,
    /// TLS certificate chain (PEM), with `--tls-key`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM), with `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// On a PostgreSQL store: how long a replica's lease of a run it drives lasts unless
    /// renewed (another replica takes the run over once it lapses).
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_lease)]
    pub lease: std::time::Duration,
    /// On a PostgreSQL store: how often a replica renews its leases and looks for lapsed
    /// ones to take over; shorter than `--lease`.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_lease)]
    pub lease_renew: std::time::Duration,
    /// How many event streams (`GET /v1/runs/RUN/events`) may be open at once; one more is
    /// refused with 503, code `busy`.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_streams: usize,
}

/// A time flag's value (`--since`, `--until`), as typed and as the instant it names. Every flag
/// that takes a time is of this type, read by [`parse_time`]: one reading, and a value that
/// does not read is a usage error (exit 2) before anything is opened.
#[derive(Debug, Clone)]
pub struct Time {
    /// What was typed, for a report's scope.
    pub text: String,
    /// The instant.
    pub at: jiff::Timestamp,
}

/// A time as people write it (`waygate_core::summary::parse_time`, the one reading, shared
/// with the server's pages and API).
fn parse_time(text: &str) -> Result<Time, String> {
    match waygate_core::summary::parse_time(text) {
        Ok(at) => Ok(Time {
            text: text.to_owned(),
            at,
        }),
        Err(e) => Err(e.why().into()),
    }
}

fn parse_lease(text: &str) -> Result<std::time::Duration, String> {
    match waygate_core::duration::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("a lease of zero cannot be held".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Add a token for ACTOR to the tokens file (created private to its owner) and print the
    /// token, once, alone on stdout; the file keeps only its hash.
    New {
        /// Who the token's requests act as.
        #[arg(long, value_name = "NAME")]
        actor: String,
        /// What the token allows: auditor, approver, operator, admin; repeatable.
        #[arg(long = "role", value_name = "ROLE", required = true, value_parser = parse_role)]
        roles: Vec<waygate_server::role::Role>,
        /// The tokens file `waygate serve --tokens` reads.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Remove ACTOR's token from the tokens file: the server refuses it from the next request.
    Revoke {
        /// Whose token.
        #[arg(long, value_name = "NAME")]
        actor: String,
        /// The tokens file.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

/// `--role`: one of the four role names.
fn parse_role(text: &str) -> Result<waygate_server::role::Role, String> {
    text.parse()
        .map_err(|e: waygate_server::role::UnknownRole| e.to_string())
}

/// `store ...`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Carry everything readable of a damaged store (`--store`) into a new store in DIR,
    /// recording what was lost as an event there. The damaged store is not changed.
    Salvage {
        /// The new store: a missing or empty directory.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Copy a whole store (every run, every event with its seq, time, actor and hashes) into
    /// an empty one, either backend to either, then verify the copy: its chain head must be
    /// the source's. `--store` is not used.
    Copy {
        /// The store to copy: a directory or a `postgres://` URL.
        #[arg(long, value_name = "SRC")]
        from: PathBuf,
        /// The new store: a missing or empty directory, or a database without waygate
        /// tables (or with empty ones).
        #[arg(long, value_name = "DST")]
        to: PathBuf,
    },
}

impl Command {
    /// The command's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Validate { .. } => "validate",
            Command::Graph { .. } => "graph",
            Command::Simulate { .. } => "simulate",
            Command::Test { .. } => "test",
            Command::Start(_) => "start",
            Command::Run { .. } => "run",
            Command::Status { .. } => "status",
            Command::Runs { .. } => "runs",
            Command::Check { .. } => "check",
            Command::Advance { .. } => "advance",
            Command::Approve { .. } => "approve",
            Command::Drive { .. } => "drive",
            Command::Rollback { .. } => "rollback",
            Command::Abort { .. } => "abort",
            Command::Override { .. } => "override",
            Command::History { .. } => "history",
            Command::Audit(AuditArgs {
                verify: Some(AuditCommand::Verify { .. }),
                ..
            }) => "audit verify",
            Command::Audit(AuditArgs {
                verify: Some(AuditCommand::Report(_)),
                ..
            }) => "audit report",
            Command::Audit(_) => "audit",
            Command::Store(StoreCommand::Salvage { .. }) => "store salvage",
            Command::Store(StoreCommand::Copy { .. }) => "store copy",
            Command::Completions { .. } => "completions",
            Command::Man { .. } => "man",
            Command::Token(TokenCommand::New { .. }) => "token new",
            Command::Token(TokenCommand::Revoke { .. }) => "token revoke",
            Command::Serve(_) => "serve",
        }
    }

    /// The output formats the command prints. Lists (`runs`, `history`, `audit`) print all
    /// four; `validate` a list of diagnostics as JSON or JSON lines; `graph` DOT or Mermaid
    /// only; every other command one result, for people or as one JSON document. Any other
    /// `--format` is a usage error rather than output in a format that was not asked for.
    pub fn formats(&self) -> &'static [Format] {
        use Format::{Csv, Human, Json, Jsonl, Svg};
        match self {
            Command::Runs { .. } | Command::History { .. } => &[Human, Json, Jsonl, Csv],
            Command::Audit(a) if a.verify.is_none() => &[Human, Json, Jsonl, Csv],
            Command::Validate { .. } => &[Human, Json, Jsonl],
            Command::Graph { .. } => &[Human, Svg],
            Command::Audit(AuditArgs {
                verify: Some(AuditCommand::Report(_)),
                ..
            }) => &[Human],
            Command::Completions { .. } | Command::Man { .. } => &[Human],
            Command::Token(_) | Command::Serve(_) => &[Human],
            _ => &[Human, Json],
        }
    }

    /// The command's time window (`--since`, `--until`), checked before anything is opened: a
    /// window that ends before it starts selects nothing, for every command that takes one.
    pub fn check_time_window(&self) -> Result<(), String> {
        let (since, until) = match self {
            Command::Audit(AuditArgs {
                verify: Some(AuditCommand::Report(r)),
                ..
            }) => (&r.since, &r.until),
            Command::Audit(a) if a.verify.is_none() => (&a.since, &a.until),
            _ => return Ok(()),
        };
        match (since, until) {
            (Some(s), Some(u)) if s.at > u.at => Err(format!(
                "--since {} is after --until {}: nothing can be in scope",
                s.at, u.at
            )),
            _ => Ok(()),
        }
    }
}

impl Format {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Svg => "svg",
        }
    }
}

/// `start` and `run`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The workflow file.
    pub file: PathBuf,
    /// The environment to deploy to.
    #[arg(long, required = true)]
    pub env: String,
    /// A variable value, `NAME=VALUE`; repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
}

/// `audit` filters, or `audit verify`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    /// `verify`: recompute the hash chain; `report`: write the HTML audit report.
    #[command(subcommand)]
    pub verify: Option<AuditCommand>,
    /// Only this workflow.
    #[arg(long)]
    pub workflow: Option<String>,
    /// Only this environment.
    #[arg(long)]
    pub env: Option<String>,
    /// Only this run.
    #[arg(long)]
    pub run: Option<String>,
    /// Only events by this actor.
    // Its own id because the global `--as` is stored under the id `actor`: a shared id would let
    // `--as`/`WAYGATE_ACTOR` filter the audit.
    #[arg(long = "actor", id = "actor_filter", value_name = "ACTOR")]
    pub actor: Option<String>,
    /// Only this event kind (RunStarted, GuardsEvaluated, Approved, Transitioned, ...).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only events at or after this time (RFC 3339, e.g. 2026-11-26T09:00:00Z, or a date).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<Time>,
    /// Only events at or before this time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<Time>,
}

/// `audit verify` and `audit report`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every event's checksum and the hash chain; exit 1 naming the first bad one.
    /// Prints the chain's head (seq and hash) to keep outside the store. Changes nothing.
    Verify {
        /// A head printed by an earlier `audit verify`: exit 1 unless the chain still reaches
        /// the event with this hash (the history was not cut back or rewritten since).
        #[arg(long, value_name = "HASH", value_parser = parse_head)]
        expect_head: Option<String>,
    },
    /// Write one self-contained HTML file for auditors: the runs in scope with their graphs,
    /// timelines and approvals, the chain's verification and head, and this command. Works
    /// offline, needs no server. Refuses to replace an existing file.
    Report(Box<ReportArgs>),
}

/// `audit report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Only this run; repeatable.
    #[arg(long = "run", value_name = "RUN")]
    pub runs: Vec<String>,
    /// Only runs still going at or after this time (RFC 3339, e.g. 2026-11-26T09:00:00Z, or a
    /// date).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<Time>,
    /// Only runs started at or before this time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<Time>,
    /// Only this workflow.
    #[arg(long)]
    pub workflow: Option<String>,
    /// Only this environment.
    #[arg(long)]
    pub env: Option<String>,
    /// The HTML file to write; it must not exist yet. `-` writes to stdout.
    #[arg(long, value_name = "FILE.html")]
    pub out: PathBuf,
}

/// `--expect-head`: a head as `audit verify` prints it, 64 hexadecimal digits (any case,
/// blanks around ignored), in lower case. Anything else is a typo or a cut-short paste, refused
/// as usage rather than reported as a chain that no longer reaches it (a false tamper alarm).
fn parse_head(text: &str) -> Result<String, String> {
    let hash = text.trim().to_ascii_lowercase();
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hash)
    } else {
        Err(format!(
            "a head is the 64 hexadecimal digits `audit verify` prints after `head: event N`; \
             this has {} characters",
            text.trim().chars().count()
        ))
    }
}
