//! The `waygate` binary: parse the command line, run the command, map the result to the
//! exit codes of `docs/cli.md` in one place (`exit.rs`).

mod app;
mod cli;
mod commands;
mod diagnostics;
mod exit;
mod live;
mod ops;
mod output;
mod progress;
mod screen;
mod signals;
mod workflow;

use std::process::ExitCode;

use clap::Parser;
use waygate_core::text::{escape_control, is_unsafe_char};

use crate::cli::{Cli, Command};
use crate::exit::{CliError, Exit};
use crate::ops::{Approval, Ops};

fn main() -> ExitCode {
    return_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            if e.use_stderr() && args_need_escaping() {
                eprint!("{}", usage_error_escaped(&e));
            } else {
                let _ = e.print();
            }
            return ExitCode::from(if e.use_stderr() { Exit::Usage as u8 } else { 0 });
        }
    };
    // A server logs what it does (requests refused, workflows loaded) by default.
    let serving = matches!(cli.command, Command::Serve(_));
    init_tracing(cli.global.verbose.max(u8::from(serving)));
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok.into(),
        Err(e) => {
            if let Some(signal) = e.stopped_waiting() {
                // Not a failure: the operator stopped a wait for a store another process held.
                eprintln!(
                    "stopped by {signal} while waiting for the store (another process holds \
                     it); nothing was changed, and the same command can be run again"
                );
            } else if !matches!(e, CliError::Invalid(_)) {
                // Errors quote names, run ids and file contents: one escaped line.
                eprintln!("error: {}", escape_control(&e.to_string()));
                if let Some(hint) = e.hint() {
                    eprintln!("hint: {hint}");
                }
            }
            if let CliError::File(d) = &e {
                if let Some(help) = &d.help {
                    eprintln!("  help: {help}");
                }
            }
            e.exit().into()
        }
    }
}

/// Whether some argument holds a character that must not reach a terminal as it is.
fn args_need_escaping() -> bool {
    std::env::args_os().any(|a| a.to_string_lossy().chars().any(is_unsafe_char))
}

/// A usage error as clap words it, but with the arguments it quotes escaped like every other
/// message (`docs/cli.md`, "Untrusted text"): clap prints what it could not take as it is, so
/// a pasted run id could clear the screen or forge a line. The arguments are escaped and
/// parsed again, which yields the same error quoting the escaped text; should that parse
/// differ, the first error's plain text is shown with each line escaped.
fn usage_error_escaped(first: &clap::Error) -> String {
    let escaped = std::env::args_os().map(|a| escape_control(&a.to_string_lossy()).into_owned());
    let text = match Cli::try_parse_from(escaped) {
        Err(again) if again.kind() == first.kind() => again.render().to_string(),
        _ => first.render().to_string(),
    };
    let mut out: String = text
        .lines()
        .map(|line| escape_control(line).into_owned() + "\n")
        .collect();
    if text.is_empty() {
        out.push('\n');
    }
    out
}

/// Keeps `drive` small while it waits: every store operation opens sled, which allocates
/// multi-megabyte IO buffers and frees them when the operation ends. glibc raises its mmap
/// threshold after the first such free, so later buffers come from the heap and their pages
/// stay resident for the whole wait (24 MiB measured, against 9 MiB with this). A fixed
/// threshold keeps large buffers in their own mappings, returned to the system on free.
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn run(cli: Cli) -> Result<Exit, CliError> {
    let g = &cli.global;
    use commands::{act, query};
    let formats = cli.command.formats();
    if !formats.contains(&g.format) {
        let names: Vec<&str> = formats.iter().map(|f| f.name()).collect();
        return Err(CliError::Usage(format!(
            "`{}` does not print {}: --format takes {} here (csv and jsonl are for the lists: \
             runs, history, audit)",
            cli.command.name(),
            g.format.name(),
            names.join(" or ")
        )));
    }
    cli.command.check_time_window().map_err(CliError::Usage)?;
    match &cli.command {
        Command::Validate { files, policies } => {
            return commands::validate::run(files, policies, g.format)
        }
        Command::Graph { file, mermaid } => return commands::graph::run(file, *mermaid, g.format),
        Command::Simulate { file, env } => return commands::simulate::run(file, env, g.format),
        Command::Test { files } => return commands::test::run(files, g.format),
        Command::Completions { shell } => return commands::docs::completions(*shell),
        Command::Man { out } => return commands::docs::man(out.as_deref()),
        Command::Token(command) => return commands::token::run(command),
        Command::Serve(args) => return commands::serve::run(g, args),
        // Two stores of its own, not `--store`.
        Command::Store(cli::StoreCommand::Copy { from, to }) => {
            return commands::store::copy(from, to, g.format)
        }
        _ => {}
    }
    let creates_runs = matches!(cli.command, Command::Start(_) | Command::Run { .. });
    let ops = Ops::open(g, creates_runs)?;
    // Commands that only read the store run here, off any async runtime: the store blocks.
    let read = match &cli.command {
        Command::Runs {
            workflow,
            env,
            status,
        } => Some(query::runs(
            &ops,
            workflow.clone(),
            env.clone(),
            status.clone(),
        )),
        Command::History { run } => Some(query::history(&ops, run)),
        Command::Audit(args) => Some(query::audit(&ops, args)),
        Command::Store(cli::StoreCommand::Salvage { to }) => Some(match ops.local() {
            Some(app) => commands::store::salvage(app, &g.store, to),
            None => Err(CliError::Usage(
                "`store salvage` repairs a store directory on the machine it runs on, not \
                 through --server: on the server's host, stop the server, run `waygate --store \
                 DIR store salvage --to NEWDIR` against its store directory, and start the server \
                 on NEWDIR (docs/cli.md, store salvage)"
                    .into(),
            )),
        }),
        Command::Store(cli::StoreCommand::Copy { .. }) => None,
        _ => None,
    };
    if let Some(result) = read {
        live::flush();
        return result;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Output)?;
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Validate { .. }
            | Command::Graph { .. }
            | Command::Simulate { .. }
            | Command::Test { .. }
            | Command::Completions { .. }
            | Command::Man { .. }
            | Command::Runs { .. }
            | Command::History { .. }
            | Command::Audit(_)
            | Command::Store(_)
            | Command::Token(_)
            | Command::Serve(_) => Ok(Exit::Ok),
            Command::Start(args) => act::start(&ops, args).await,
            Command::Run { start, no_wait } => act::run(&ops, start, *no_wait).await,
            Command::Status { run, follow } => query::status(&ops, run, *follow).await,
            Command::Check { run, to } => act::check(&ops, run, to.as_deref()).await,
            Command::Advance { run, to } => act::advance(&ops, run, to.as_deref()).await,
            Command::Approve {
                run,
                guard,
                comment,
                withdraw,
            } => {
                let approval = Approval {
                    guard: guard.clone(),
                    comment: comment.clone(),
                    withdraw: *withdraw,
                };
                act::approve(&ops, run, approval).await
            }
            Command::Drive { run, no_wait } => act::drive(&ops, run, *no_wait).await,
            Command::Rollback { run, reason } => act::rollback(&ops, run, reason).await,
            Command::Abort { run, reason } => act::abort(&ops, run, reason).await,
            Command::Override { run, guard, reason } => {
                act::override_guard(&ops, run, guard, reason).await
            }
        }
    });
    // Whatever the commands printed last is on stderr before the error or exit.
    live::flush();
    result
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
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .without_time()
        .init();
}

/// Colour in log lines only when stderr is a terminal, and never when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>): a CI log or a file gets plain text.
fn log_colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::log_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some("".into())));
        assert!(!log_colour(true, Some("1".into())));
        assert!(!log_colour(false, None));
        assert!(!log_colour(false, Some("1".into())));
    }
}
