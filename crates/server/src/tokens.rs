//! The tokens file: who may call the server, with which roles.
//!
//! A RON file lists each person or robot as an actor name, roles, and the SHA-256 of their
//! token, never the token itself: someone who reads the file cannot call the server with
//! it. Tokens are 32 random bytes from the operating system, so a plain hash is enough (there
//! is nothing to guess that a slow hash would protect). A presented token is hashed and
//! compared with every entry in constant time. `docs/api.md` ("Tokens") shows the file.
//!
//! [`issue`] and [`revoke`] change the file under an exclusive lock on its directory, and
//! replace it whole (a new file, private to its owner, renamed over the old one), so two at
//! once lose neither change and a reader never sees half a file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use waygate_core::actor::{check_actor_name, same_actor, ActorNameError};

use crate::role::Role;

/// What every token starts with, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "wgt_";

/// The largest tokens file read, in bytes: far above any real team's.
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// The tokens file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Tokens", deny_unknown_fields)]
pub struct Tokens {
    /// One entry per actor.
    pub tokens: Vec<Entry>,
}

/// One actor's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The actor recorded on every event this token's requests cause.
    pub actor: String,
    /// What the token allows.
    pub roles: Vec<Role>,
    /// SHA-256 of the token, 64 lower-case hexadecimal digits.
    pub sha256: String,
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The actor.
    pub actor: String,
    /// Their roles.
    pub roles: Vec<Role>,
}

/// What can go wrong with a tokens file.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The file (or its directory) could not be read or written.
    #[error("tokens file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a tokens file.
    #[error("tokens file {path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, as ron says it.
        message: String,
    },
    /// `token new` for an actor that has a token already.
    #[error(
        "{actor} already has a token in {path}; `waygate token revoke --actor {actor} --file {path}` \
         first to replace it"
    )]
    Exists {
        /// The actor.
        actor: String,
        /// The file.
        path: PathBuf,
    },
    /// `token revoke` for an actor without one.
    #[error("{actor} has no token in {path}; nothing changed")]
    NoSuchActor {
        /// The actor.
        actor: String,
        /// The file.
        path: PathBuf,
    },
    /// The actor name is outside the actor-name set.
    #[error("--actor {actor:?}: {source}")]
    BadActor {
        /// The name given.
        actor: String,
        /// Why it is refused.
        source: ActorNameError,
    },
    /// No role given.
    #[error("a token needs at least one role: --role auditor, approver, operator or admin")]
    NoRoles,
    /// The operating system gave no random bytes.
    #[error("cannot make a random token: {0}")]
    Random(String),
}

impl Tokens {
    /// Reads the tokens file at `path`.
    pub fn read(path: &Path) -> Result<Tokens, TokensError> {
        let io = |source| TokensError::Io {
            path: path.to_owned(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_FILE {
            return Err(TokensError::Invalid {
                path: path.to_owned(),
                message: format!("it has {len} bytes, more than a tokens file ever needs"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Tokens::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Tokens, TokensError> {
        let invalid = |message: String| TokensError::Invalid {
            path: path.to_owned(),
            message,
        };
        let tokens: Tokens = ron::from_str(text).map_err(|e| invalid(e.to_string()))?;
        for entry in &tokens.tokens {
            check_actor_name(&entry.actor)
                .map_err(|e| invalid(format!("actor {:?}: {e}", entry.actor)))?;
            let hex =
                entry.sha256.len() == 64 && entry.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex {
                return Err(invalid(format!(
                    "the sha256 of {} is not 64 hexadecimal digits",
                    entry.actor
                )));
            }
        }
        // One person, one entry, as `issue` keeps it: two entries for names the approval
        // rules take for one person would give that person two sets of roles.
        for (i, entry) in tokens.tokens.iter().enumerate() {
            if let Some(twin) = tokens.tokens[..i]
                .iter()
                .find(|e| same_actor(&e.actor, &entry.actor))
            {
                return Err(invalid(format!(
                    "`{}` and `{}` are one person (names differing only by case): delete \
                     one of the two entries",
                    twin.actor, entry.actor
                )));
            }
        }
        Ok(tokens)
    }

    /// Whose token `token` is, if anyone's. Every entry is compared, in constant time, so
    /// how long this takes says nothing about how close a guess came.
    pub fn authenticate(&self, token: &str) -> Option<Identity> {
        let presented = token_hash(token);
        let mut found = None;
        for entry in &self.tokens {
            let stored = entry.sha256.to_ascii_lowercase();
            if bool::from(stored.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(Identity {
                    actor: entry.actor.clone(),
                    roles: entry.roles.clone(),
                });
            }
        }
        found
    }

    /// Who holds the entry whose token hashes to `sha256` ([`token_hash`]), as the file says
    /// now: how a signed-in session finds its actor's current roles, and finds nothing once
    /// the token is revoked (or replaced by a new one).
    pub fn holder(&self, sha256: &str) -> Option<Identity> {
        self.tokens
            .iter()
            .find(|e| e.sha256.eq_ignore_ascii_case(sha256))
            .map(|e| Identity {
                actor: e.actor.clone(),
                roles: e.roles.clone(),
            })
    }

    fn to_text(&self) -> String {
        let config = ron::ser::PrettyConfig::new();
        let body = ron::ser::to_string_pretty(self, config).unwrap_or_default();
        format!(
            "// waygate tokens: actor, roles, SHA-256 of the token. Change with `waygate token new`\n\
             // and `waygate token revoke`.\n{body}\n"
        )
    }
}

/// Adds an entry for `actor` with `roles` to the tokens file at `path` (creating it, readable
/// by its owner only) and returns the new token, which exists nowhere else.
pub fn issue(path: &Path, actor: &str, roles: &[Role]) -> Result<String, TokensError> {
    check_actor_name(actor).map_err(|source| TokensError::BadActor {
        actor: actor.to_owned(),
        source,
    })?;
    if roles.is_empty() {
        return Err(TokensError::NoRoles);
    }
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    let _lock = lock_dir(path)?;
    let mut tokens = read_or_empty(path)?;
    // One person, one token: `Alice` is `alice` (`waygate_core::actor::same_actor`).
    if let Some(held) = tokens.tokens.iter().find(|e| same_actor(&e.actor, actor)) {
        return Err(TokensError::Exists {
            actor: held.actor.clone(),
            path: path.to_owned(),
        });
    }
    let token = new_token()?;
    tokens.tokens.push(Entry {
        actor: actor.to_owned(),
        roles,
        sha256: token_hash(&token),
    });
    replace(path, &tokens.to_text())?;
    Ok(token)
}

/// Removes `actor`'s entry from the tokens file at `path`: their token stops working at the
/// server's next request.
pub fn revoke(path: &Path, actor: &str) -> Result<(), TokensError> {
    let _lock = lock_dir(path)?;
    let mut tokens = Tokens::read(path)?;
    let before = tokens.tokens.len();
    tokens.tokens.retain(|e| !same_actor(&e.actor, actor));
    if tokens.tokens.len() == before {
        return Err(TokensError::NoSuchActor {
            actor: actor.to_owned(),
            path: path.to_owned(),
        });
    }
    replace(path, &tokens.to_text())
}

fn read_or_empty(path: &Path) -> Result<Tokens, TokensError> {
    match Tokens::read(path) {
        Err(TokensError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(Tokens::default())
        }
        other => other,
    }
}

/// SHA-256 of `token` in lower-case hexadecimal, as the tokens file keeps it.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_token() -> Result<String, TokensError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| TokensError::Random(e.to_string()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{TOKEN_PREFIX}{hex}"))
}

/// The directory the file is in (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// An exclusive lock on the file's directory until dropped: changes of one tokens file take
/// turns, and the file itself can be replaced meanwhile.
fn lock_dir(path: &Path) -> Result<File, TokensError> {
    let dir = parent(path);
    let io = |source| TokensError::Io {
        path: path.to_owned(),
        source,
    };
    let handle = File::open(dir).map_err(io)?;
    // SAFETY: flock on a descriptor this function owns; it is released when `handle` closes.
    let rc = unsafe { libc::flock(handle.as_raw_fd(), libc::LOCK_EX) };
    if rc != 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    Ok(handle)
}

/// Writes `text` to a new file beside `path`, private to its owner, and renames it over
/// `path`: a reader sees the old file or the new one, never a mix.
fn replace(path: &Path, text: &str) -> Result<(), TokensError> {
    let io = |source| TokensError::Io {
        path: path.to_owned(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tokens".into());
    let temp = parent(path).join(format!(".{name}.{}.new", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        File::open(parent(path))?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.map_err(io)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_new_token_authenticates_its_actor_and_is_not_in_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.ron");
        let token = issue(&path, "ana", &[Role::Operator]).expect("issued");
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() == TOKEN_PREFIX.len() + 64);
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(!text.contains(&token[TOKEN_PREFIX.len()..]), "{text}");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let tokens = Tokens::read(&path).expect("read");
        let who = tokens.authenticate(&token).expect("known");
        assert_eq!(who.actor, "ana");
        assert_eq!(who.roles, vec![Role::Operator]);
        assert_eq!(tokens.authenticate("wgt_0000"), None);
        assert_eq!(tokens.authenticate(""), None);
    }

    #[test]
    fn a_revoked_token_no_longer_authenticates_and_others_still_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.ron");
        let ana = issue(&path, "ana", &[Role::Approver]).expect("ana");
        let bob = issue(&path, "bob", &[Role::Admin, Role::Auditor]).expect("bob");
        revoke(&path, "ana").expect("revoked");
        let tokens = Tokens::read(&path).expect("read");
        assert_eq!(tokens.authenticate(&ana), None);
        let who = tokens.authenticate(&bob).expect("bob");
        assert_eq!(who.roles, vec![Role::Auditor, Role::Admin]);
        assert!(matches!(
            revoke(&path, "ana"),
            Err(TokensError::NoSuchActor { .. })
        ));
    }

    #[test]
    fn bad_requests_change_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.ron");
        issue(&path, "ana", &[Role::Auditor]).expect("ana");
        let before = std::fs::read(&path).expect("file");
        let cases = [
            ("ana", vec![Role::Admin]),
            ("bad name", vec![Role::Admin]),
            ("eve\u{1b}", vec![Role::Admin]),
            ("eve", vec![]),
        ];
        for (actor, roles) in cases {
            assert!(issue(&path, actor, &roles).is_err(), "{actor:?} {roles:?}");
        }
        assert_eq!(std::fs::read(&path).expect("file"), before);
        assert!(revoke(&dir.path().join("missing.ron"), "ana").is_err());
    }

    #[test]
    fn a_file_that_is_not_a_tokens_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.ron");
        let cases = [
            "not ron",
            r#"Tokens(tokens: [(actor: "ana", roles: [root], sha256: "00")])"#,
            r#"Tokens(tokens: [(actor: "ana", roles: [admin], sha256: "00")])"#,
            r#"Tokens(tokens: [(actor: "a b", roles: [admin], sha256: "0000000000000000000000000000000000000000000000000000000000000000")])"#,
        ];
        for text in cases {
            std::fs::write(&path, text).expect("write");
            assert!(
                matches!(Tokens::read(&path), Err(TokensError::Invalid { .. })),
                "{text}"
            );
            assert!(issue(&path, "bob", &[Role::Admin]).is_err());
        }
    }
}
