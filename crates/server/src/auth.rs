//! Who is calling: the bearer token, checked against the tokens file, or the pages' session
//! cookie ([`crate::session`]), and the role the route needs ([`crate::role`] owns which role
//! allows what).
//!
//! The tokens file is read again whenever it changes (its size, time or inode), so
//! `waygate token revoke` takes effect at the next request. A file that becomes unreadable or
//! invalid refuses every token until it is fixed: failing closed. Refusals are logged and
//! counted with the reason and the route, never with the token or cookie.

use std::marker::PhantomData;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::Method;

use crate::error::{ApiError, Code};
use crate::role::{any_allows, Action};
use crate::server::Shared;
use crate::session::{cookie_value, Session};
use crate::tokens::{token_hash, Identity, Tokens, TokensError};

/// The tokens file and what was last read from it.
#[derive(Debug)]
pub struct TokenSource {
    path: PathBuf,
    cache: Mutex<(Option<Stamp>, Arc<Tokens>)>,
}

/// What tells one version of the file from the next.
type Stamp = (u64, i64, i64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

impl TokenSource {
    /// Reads the tokens file; the server does not start without a valid one.
    pub fn open(path: &Path) -> Result<TokenSource, TokensError> {
        let stamp = stamp(path);
        let tokens = Tokens::read(path)?;
        Ok(TokenSource {
            path: path.to_owned(),
            cache: Mutex::new((stamp, Arc::new(tokens))),
        })
    }

    /// The tokens as the file says now.
    pub fn current(&self) -> Arc<Tokens> {
        let now = stamp(&self.path);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if now.is_none() || now != cache.0 {
            let tokens = match Tokens::read(&self.path) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!("{e}; refusing every token until it is fixed");
                    Tokens::default()
                }
            };
            *cache = (now, Arc::new(tokens));
        }
        cache.1.clone()
    }
}

/// What a route needs the caller's roles to allow.
pub trait Needs: Send + Sync {
    /// The action.
    const ACTION: Action;
}

/// Reading: status, runs, history, audit, verify, events.
#[derive(Debug)]
pub struct Reads;
/// Approving.
#[derive(Debug)]
pub struct Approves;
/// Moving runs.
#[derive(Debug)]
pub struct Operates;
/// Overriding a guard.
#[derive(Debug)]
pub struct Overrides;
/// Managing workflows.
#[derive(Debug)]
pub struct Administers;

impl Needs for Reads {
    const ACTION: Action = Action::Read;
}
impl Needs for Approves {
    const ACTION: Action = Action::Approve;
}
impl Needs for Operates {
    const ACTION: Action = Action::Operate;
}
impl Needs for Overrides {
    const ACTION: Action = Action::Override;
}
impl Needs for Administers {
    const ACTION: Action = Action::Administer;
}

/// How a request showed who it is.
#[derive(Debug, Clone)]
pub enum Via {
    /// `Authorization: Bearer TOKEN`, whose SHA-256 (as the tokens file keeps it) is this.
    Bearer(String),
    /// The cookie of a session signed in on the pages ([`crate::session`]).
    Session(Arc<Session>),
}

/// Whether a request may show who it is with the session cookie instead of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CookieUse {
    /// The pages, and the API's reads (a page's links and its live stream).
    Accepted,
    /// The API's changes: a script's, with a token (a browser adds a cookie by itself).
    Refused,
}

/// What a request with neither a token nor a session is told.
pub(crate) const NO_TOKEN: &str =
    "no token: send `Authorization: Bearer TOKEN` (the CLI reads WAYGATE_TOKEN or --token-file)";

/// The route a request matched, for the log.
pub(crate) fn route_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default()
}

/// A refusal, logged and counted with its reason and route, never with a token or cookie.
pub(crate) fn refused(
    route: &str,
    code: Code,
    reason: &'static str,
    actor: &str,
    message: String,
) -> ApiError {
    metrics::counter!("waygate_auth_refused_total", "reason" => reason).increment(1);
    tracing::warn!(route = %route, reason, actor, "request refused");
    ApiError::new(code, message)
}

/// Who a request is from: its bearer token, else (where `cookie` accepts it) its session
/// cookie, checked against the tokens file as it is now. The one check of both.
pub(crate) fn identify(
    parts: &Parts,
    shared: &Shared,
    cookie: CookieUse,
) -> Result<(Identity, Via), ApiError> {
    let route = route_of(parts);
    let token = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(token) = token {
        return match shared.tokens.current().authenticate(token) {
            Some(identity) => Ok((identity, Via::Bearer(token_hash(token)))),
            None => Err(refused(
                &route,
                Code::NotAuthenticated,
                "unknown",
                "",
                "the token is not known to this server (wrong, or revoked)".into(),
            )),
        };
    }
    let presented = match cookie {
        CookieUse::Accepted => cookie_value(
            parts
                .headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        ),
        CookieUse::Refused => None,
    };
    let Some(presented) = presented else {
        return Err(refused(
            &route,
            Code::NotAuthenticated,
            "missing",
            "",
            NO_TOKEN.into(),
        ));
    };
    let Some(session) = shared.sessions.find(presented) else {
        return Err(refused(
            &route,
            Code::NotAuthenticated,
            "session",
            "",
            "the session has ended (signed out, expired, or the server restarted): sign in \
             again"
                .into(),
        ));
    };
    match shared.tokens.current().holder(&session.token_sha256) {
        Some(identity) if identity.actor == session.actor => Ok((identity, Via::Session(session))),
        _ => {
            shared.sessions.end(&session);
            Err(refused(
                &route,
                Code::NotAuthenticated,
                "revoked",
                &session.actor,
                "the token this session signed in with is no longer known to this server \
                 (revoked): sign in again"
                    .into(),
            ))
        }
    }
}

/// Whether a caller who showed `via` as `actor` still is who they were: the token still in
/// the tokens file as theirs, the session still open. Asked again and again by an answer that
/// goes on (a run's event stream), so that signing out or revoking the token ends it.
pub(crate) fn still_holds(shared: &Shared, via: &Via, actor: &str) -> bool {
    let sha256 = match via {
        Via::Bearer(sha256) => sha256,
        Via::Session(session) => {
            if !shared.sessions.is_open(session) {
                return false;
            }
            &session.token_sha256
        }
    };
    shared
        .tokens
        .current()
        .holder(sha256)
        .is_some_and(|identity| identity.actor == actor)
}

/// Whether `identity`'s roles allow `action`; a refusal is logged and counted.
pub(crate) fn allow(identity: &Identity, action: Action, route: &str) -> Result<(), ApiError> {
    if any_allows(&identity.roles, action) {
        return Ok(());
    }
    let needs = action.needs();
    Err(refused(
        route,
        Code::NotAllowed,
        "forbidden",
        &identity.actor,
        format!(
            "{} may not do this: it needs the role {needs} or above",
            identity.actor
        ),
    ))
}

/// An authenticated caller whose roles allow `N`; extracting it refuses everyone else
/// before the request body is read. A token always works; the session cookie of the pages
/// works for reads (`GET`), so a page's links and live stream need no token, but never for a
/// change through the API.
#[derive(Debug)]
pub struct Caller<N> {
    /// Who is calling: the actor on every event the request causes.
    pub identity: Identity,
    /// How it showed who it is.
    pub via: Via,
    needs: PhantomData<N>,
}

impl<N: Needs> FromRequestParts<Arc<Shared>> for Caller<N> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let cookie = if parts.method == Method::GET || parts.method == Method::HEAD {
            CookieUse::Accepted
        } else {
            CookieUse::Refused
        };
        let (identity, via) = identify(parts, shared, cookie)?;
        allow(&identity, N::ACTION, &route_of(parts))?;
        Ok(Caller {
            identity,
            via,
            needs: PhantomData,
        })
    }
}
