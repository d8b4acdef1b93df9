//! Who is calling: the bearer token, checked against the tokens file, and the role the route
//! needs ([`crate::role`] owns which role allows what).
//!
//! The tokens file is read again whenever it changes (its size, time or inode), so
//! `waygate token revoke` takes effect at the next request. A file that becomes unreadable or
//! invalid refuses every token until it is fixed: failing closed. Refusals are logged and
//! counted with the reason and the route, never with the token.

use std::marker::PhantomData;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::{ApiError, Code};
use crate::role::{any_allows, Action};
use crate::server::Shared;
use crate::tokens::{Identity, Tokens, TokensError};

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

/// An authenticated caller whose roles allow `N`; extracting it refuses everyone else
/// before the request body is read.
#[derive(Debug)]
pub struct Caller<N> {
    /// Who is calling: the actor on every event the request causes.
    pub identity: Identity,
    needs: PhantomData<N>,
}

impl<N: Needs> FromRequestParts<Arc<Shared>> for Caller<N> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let refuse = |code: Code, reason: &'static str, actor: &str, message: String| {
            metrics::counter!("waygate_auth_refused_total", "reason" => reason).increment(1);
            tracing::warn!(route = %route, reason, actor, "request refused");
            ApiError::new(code, message)
        };
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(refuse(
                Code::NotAuthenticated,
                "missing",
                "",
                "no token: send `Authorization: Bearer TOKEN` (the CLI reads WAYGATE_TOKEN or \
                 --token-file)"
                    .into(),
            ));
        };
        let Some(identity) = shared.tokens.current().authenticate(token) else {
            return Err(refuse(
                Code::NotAuthenticated,
                "unknown",
                "",
                "the token is not known to this server (wrong, or revoked)".into(),
            ));
        };
        if !any_allows(&identity.roles, N::ACTION) {
            let needs = N::ACTION.needs();
            let message = format!(
                "{} may not do this: it needs the role {needs} or above",
                identity.actor
            );
            return Err(refuse(
                Code::NotAllowed,
                "forbidden",
                &identity.actor,
                message,
            ));
        }
        Ok(Caller {
            identity,
            needs: PhantomData,
        })
    }
}
