//! `token new` and `token revoke`: the tokens file of `waygate serve` (`docs/api.md`, Tokens).

use waygate_core::text::escape_control;
use waygate_server::tokens;

use crate::cli::TokenCommand;
use crate::exit::{CliError, Exit};
use crate::output;

/// Runs a `token` command. `token new` prints the token alone on stdout, so
/// `TOKEN=$(waygate token new ...)` captures exactly it; what happened goes to stderr.
pub fn run(command: &TokenCommand) -> Result<Exit, CliError> {
    match command {
        TokenCommand::New { actor, roles, file } => {
            let token = tokens::issue(file, actor.trim(), roles)?;
            output::print(&format!("{token}\n"))?;
            let roles: Vec<&str> = roles.iter().map(|r| r.name()).collect();
            eprintln!(
                "{}",
                escape_control(&format!(
                    "added a token for {} ({}) to {}; it is shown only this once",
                    actor.trim(),
                    roles.join(", "),
                    file.display()
                ))
            );
        }
        TokenCommand::Revoke { actor, file } => {
            tokens::revoke(file, actor.trim())?;
            eprintln!(
                "{}",
                escape_control(&format!(
                    "revoked the token of {} in {}; a running server refuses it from its next \
                     request",
                    actor.trim(),
                    file.display()
                ))
            );
        }
    }
    Ok(Exit::Ok)
}
