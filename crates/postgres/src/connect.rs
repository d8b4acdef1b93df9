//! The database URL, connections, and what the server's errors mean for a caller.

use postgres::error::SqlState;
use postgres::{Client, NoTls};
use waygate_core::store::StoreError;

use crate::wire::{Wire, WireError};

/// Whether `location` names a PostgreSQL database (`postgres://` or `postgresql://`, any case)
/// rather than a store directory.
pub fn is_postgres_url(location: &str) -> bool {
    ["postgres://", "postgresql://"].into_iter().any(|scheme| {
        location
            .get(..scheme.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(scheme))
    })
}

/// `url` with any password left out, for messages: `postgres://ana:secret@db/w` becomes
/// `postgres://ana@db/w`.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!(
                "{}{user}{}{}",
                &url[..scheme_end],
                &authority[at..],
                &rest[authority_end..]
            )
        }
        None => url.to_owned(),
    }
}

/// Connects to `url` for reading; an error says why in the terms of
/// [`StoreError::Unavailable`].
pub(crate) fn connect(url: &str) -> Result<Client, StoreError> {
    let location = redact(url);
    config(url, &location)?
        .connect(NoTls)
        .map_err(|e| unavailable(&location, &e))
}

/// Connects the writing connection to `url` (its own client: `wire.rs`); an error says why
/// as [`connect`]'s does.
pub(crate) fn connect_writer(url: &str) -> Result<Wire, StoreError> {
    let location = redact(url);
    Wire::connect(&config(url, &location)?).map_err(|e| unavailable(&location, &e))
}

/// `url` parsed, with waygate's defaults: a connect timeout of 10 s, the application name
/// `waygate`, the password from `PGPASSWORD` when the URL has none. A URL asking for TLS is
/// refused.
fn config(url: &str, location: &str) -> Result<postgres::Config, StoreError> {
    let location = location.to_owned();
    if let Some(mode) = tls_asked(url) {
        return Err(StoreError::Unavailable {
            location,
            why: format!(
                "`sslmode={mode}` asks for TLS, and this waygate connects to PostgreSQL without \
                 TLS (docs/storage.md, PostgreSQL): use it with a server on this host or on a \
                 trusted network with `sslmode=disable` (or no sslmode), or reach the server \
                 through a tunnel that encrypts (SSH, stunnel)"
            ),
        });
    }
    let mut config: postgres::Config = url.parse().map_err(|e| StoreError::Unavailable {
        location: location.clone(),
        why: format!("not a usable PostgreSQL URL: {e}"),
    })?;
    // The same, for a URL that asks for TLS in a form the text check above does not read
    // (a key written with escapes): both clients connect without TLS, whatever the URL says.
    if !matches!(
        config.get_ssl_mode(),
        postgres::config::SslMode::Disable | postgres::config::SslMode::Prefer
    ) {
        return Err(StoreError::Unavailable {
            location,
            why: "the URL asks for TLS, and this waygate connects to PostgreSQL without TLS \
                  (docs/storage.md, PostgreSQL)"
                .into(),
        });
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("waygate");
    }
    // libpq's way of keeping a password out of the URL (and out of `ps`).
    if config.get_password().is_none() {
        if let Some(password) = std::env::var_os("PGPASSWORD") {
            config.password(password.as_encoded_bytes());
        }
    }
    Ok(config)
}

/// The `sslmode` of `url`'s query when it asks for TLS (anything but `disable` and `prefer`,
/// which this build, connecting without TLS, cannot honour).
fn tls_asked(url: &str) -> Option<&str> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| *key == "sslmode")
        .map(|(_, mode)| mode)
        .find(|mode| !matches!(*mode, "disable" | "prefer"))
}

/// A failure to connect, in words a user can act on.
fn unavailable(location: &str, e: &impl PgFailure) -> StoreError {
    let why = match e.code() {
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            format!("the server refused the login: {}", db_message(e))
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => format!(
            "{} (create it with `createdb`, or name another in the URL)",
            db_message(e)
        ),
        Some(c) if *c == SqlState::TOO_MANY_CONNECTIONS => {
            format!("the server has no connection to spare: {}", db_message(e))
        }
        _ if e.closed() => format!("the server does not answer: {}", e.cause()),
        // The client would not go on (a password the server asks for and none given, a login
        // method it does not make): its reason.
        _ => e.cause(),
    };
    StoreError::Unavailable {
        location: location.to_owned(),
        why,
    }
}

/// A failure of an operation on an open connection. `written` says what may have happened
/// to a write: `None` for a read.
pub(crate) fn failed(location: &str, e: &impl PgFailure, write: Write) -> StoreError {
    let why = match (is_lost(e), write) {
        (true, Write::Committing) => format!(
            "the connection was lost while the commit was under way ({}): it may or may not \
             have been recorded; `waygate status` or `history` of the run tells which",
            e.cause()
        ),
        (true, Write::None) => format!("the connection was lost ({})", e.cause()),
        (true, _) => format!(
            "the connection was lost ({}); nothing was written",
            e.cause()
        ),
        (false, Write::None) => db_message(e),
        (false, _) => format!("{}; nothing was written", db_message(e)),
    };
    // A role short of a grant (a table added by a migration, which the role's grants predate)
    // is pointed at the grants waygate's role needs.
    let why = if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
        format!(
            "{why} (the grants the role waygate uses needs: docs/storage.md, PostgreSQL, Grants)"
        )
    } else {
        why
    };
    StoreError::Backend {
        location: location.to_owned(),
        why,
    }
}

/// Whether `e` ended its session: the client says so, or the server's code is of class 08
/// (connection exception) or 57P (the server ending the session: shut down, restarted,
/// `pg_terminate_backend`).
pub(crate) fn is_lost(e: &impl PgFailure) -> bool {
    e.closed()
        || e.code().is_some_and(|c| {
            let code = c.code();
            code.starts_with("08") || code.starts_with("57P")
        })
}

/// How far a write got when an operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// A read: nothing to lose.
    None,
    /// Inside a transaction, before `COMMIT` was sent: rolled back.
    Before,
    /// `COMMIT` was sent: the outcome is unknown until the next read.
    Committing,
}

/// The server's own message, with its detail.
pub(crate) fn db_message(e: &impl PgFailure) -> String {
    e.server_says().unwrap_or_else(|| e.cause())
}

/// Whether a transaction failed only because another one got in its way (a deadlock, a
/// serialisation failure, a unique key taken meanwhile): worth trying again, with fresh reads.
pub(crate) fn is_transient(e: &impl PgFailure) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::UNIQUE_VIOLATION
    })
}

/// A failed operation, as the functions above judge it, from either client: the `postgres`
/// crate's (reads) or the writing connection's own ([`WireError`]).
pub(crate) trait PgFailure {
    /// The server's SQLSTATE, when the server answered with an error.
    fn code(&self) -> Option<&SqlState>;
    /// The server's message, with its detail, when it answered with one.
    fn server_says(&self) -> Option<String>;
    /// Whether the client knows the session is over.
    fn closed(&self) -> bool;
    /// The innermost cause (the OS's "Connection refused" rather than "error connecting").
    fn cause(&self) -> String;
}

impl PgFailure for postgres::Error {
    fn code(&self) -> Option<&SqlState> {
        self.code()
    }

    fn server_says(&self) -> Option<String> {
        let db = self.as_db_error()?;
        Some(match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_owned(),
        })
    }

    /// Without a code, the `postgres` crate's error is the socket's.
    fn closed(&self) -> bool {
        self.is_closed() || self.code().is_none()
    }

    fn cause(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            text = s.to_string();
            source = s.source();
        }
        text
    }
}

impl PgFailure for WireError {
    fn code(&self) -> Option<&SqlState> {
        self.code()
    }

    fn server_says(&self) -> Option<String> {
        matches!(self, WireError::Db(_)).then(|| self.to_string())
    }

    /// A fatal error (`FATAL`, `PANIC`) ends the session as a closed socket does.
    fn closed(&self) -> bool {
        self.ended_session()
    }

    fn cause(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_left_out_of_locations() {
        for (url, shown) in [
            (
                "postgres://ana:s3cret@db:5432/w",
                "postgres://ana@db:5432/w",
            ),
            ("postgres://ana@db/w", "postgres://ana@db/w"),
            ("postgresql://db/w?user=ana", "postgresql://db/w?user=ana"),
            ("postgres://:pw@db/w", "postgres://@db/w"),
        ] {
            assert_eq!(redact(url), shown);
        }
        assert!(is_postgres_url("PostgreSQL://db/w"));
        assert!(!is_postgres_url(".waygate"));
    }

    #[test]
    fn a_url_asking_for_tls_is_refused_however_it_is_written() {
        for url in [
            "postgres://ana@db/w?sslmode=require",
            "postgres://ana@db/w?%73slmode=require",
            "postgres://ana@db/w?sslmode=%72equire",
        ] {
            match config(url, &redact(url)) {
                Err(StoreError::Unavailable { why, .. }) => {
                    assert!(why.contains("without TLS"), "{url}: {why}")
                }
                other => panic!("{url}: expected a refusal, got {other:?}"),
            }
        }
        for url in [
            "postgres://ana@db/w",
            "postgres://ana@db/w?sslmode=disable",
            "postgres://ana@db/w?sslmode=prefer",
        ] {
            assert!(config(url, &redact(url)).is_ok(), "{url}");
        }
    }
}
