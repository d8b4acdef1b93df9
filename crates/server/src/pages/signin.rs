//! Signing in with a token, and out: `GET/POST /signin`, `POST /signout`.
//!
//! A sign-in from another site's page (login CSRF: signing a victim in as the attacker) is
//! refused by where the form came from: the browser's `Origin` (else `Referer`, else
//! `Sec-Fetch-Site`) must be this server's own. The session and its cookie are
//! [`crate::session`]'s.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header::{HOST, LOCATION, ORIGIN, REFERER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use waygate_view::xml;

use super::{error_alert, html, layout, refusal, Viewer};
use crate::auth::{refused, Via};
use crate::error::Code;
use crate::server::Shared;
use crate::session::{clear_cookie, set_cookie};
use crate::tokens::token_hash;

/// The sign-in page, answering `status`, saying `why` an earlier attempt failed, and coming
/// back to `next` after.
pub(super) fn page(status: StatusCode, why: Option<&str>, next: Option<&str>) -> Response {
    let next = next
        .filter(|n| local(n))
        .map(|n| {
            format!(
                "<input type=\"hidden\" name=\"next\" value=\"{}\">\n",
                xml::text(n)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in to waygate</h1>\n{}\
         <p>Sign in with your waygate token (from <code>waygate token new</code>). The page keeps \
         you signed in with a cookie until you sign out, for at most 8 hours, or 30 minutes \
         without using it.</p>\n\
         <form id=\"signin\" method=\"post\" action=\"/signin\">\n{next}\
         <p><label for=\"token\">Token</label><br>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" \
         required size=\"70\"></p>\n\
         <p><button type=\"submit\">Sign in</button></p>\n</form>\n",
        error_alert(why),
    );
    html(status, layout("Sign in", None, None, &body))
}

/// A path on this server (`/runs?x=1`), not a URL elsewhere (`//evil`, `https://..`).
fn local(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains(['\\', '\r', '\n'])
        && !next.chars().any(char::is_control)
}

#[derive(Debug, Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

pub(super) async fn form(Query(q): Query<NextQuery>) -> Response {
    page(StatusCode::OK, None, q.next.as_deref())
}

#[derive(Debug, Deserialize)]
pub(super) struct SigninForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// Whether the sign-in form was sent from this server's own page.
fn from_here(headers: &HeaderMap, tls: bool) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(host) = text(HOST) else {
        return false;
    };
    let here = format!("{}://{host}", if tls { "https" } else { "http" });
    if let Some(origin) = text(ORIGIN) {
        return origin == here;
    }
    if let Some(referer) = text(REFERER) {
        return referer
            .strip_prefix(&here)
            .is_some_and(|rest| rest.starts_with('/'));
    }
    text(HeaderName::from_static("sec-fetch-site")) == Some("same-origin")
}

pub(super) async fn submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<SigninForm>,
) -> Response {
    let route = "/signin";
    if !from_here(&headers, shared.tls) {
        refused(
            route,
            Code::NotAllowed,
            "cross-site",
            "",
            "sign-in form from another site".into(),
        );
        return page(
            StatusCode::FORBIDDEN,
            Some("The sign-in did not come from this server's own sign-in page; open it and sign in there."),
            None,
        );
    }
    let token = form.token.trim();
    let Some(identity) = shared.tokens.current().authenticate(token) else {
        refused(
            route,
            Code::NotAuthenticated,
            "unknown",
            "",
            "sign-in with an unknown token".into(),
        );
        return page(
            StatusCode::UNAUTHORIZED,
            Some("The token was not accepted: it is wrong, or it was revoked."),
            form.next.as_deref(),
        );
    };
    let (cookie, _) = match shared.sessions.open(&identity.actor, &token_hash(token)) {
        Ok(opened) => opened,
        Err(e) => return refusal(&identity, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    tracing::info!(actor = %identity.actor, "signed in");
    let to = form
        .next
        .as_deref()
        .filter(|n| local(n))
        .unwrap_or("/runs")
        .to_owned();
    (
        StatusCode::SEE_OTHER,
        [
            (SET_COOKIE, set_cookie(&cookie, shared.tls)),
            (LOCATION, to),
        ],
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct SignoutForm {
    csrf: Option<String>,
}

pub(super) async fn signout(
    viewer: Viewer,
    State(shared): State<Arc<Shared>>,
    Form(form): Form<SignoutForm>,
) -> Response {
    if !viewer.csrf_ok(form.csrf.as_deref()) {
        refused(
            "/signout",
            Code::NotAllowed,
            "csrf",
            &viewer.identity.actor,
            "sign-out without the session's CSRF token".into(),
        );
        return refusal(&viewer.identity, StatusCode::FORBIDDEN, super::CSRF_REFUSED);
    }
    if let Via::Session(session) = &viewer.via {
        shared.sessions.end(session);
        tracing::info!(actor = %viewer.identity.actor, "signed out");
    }
    (
        StatusCode::SEE_OTHER,
        [
            (SET_COOKIE, clear_cookie(shared.tls)),
            (LOCATION, "/signin".to_owned()),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_local_path_only() {
        // (next, accepted)
        let cases = [
            ("/runs", true),
            ("/runs/x?y=1", true),
            ("//evil.example/", false),
            ("https://evil.example/", false),
            ("/\\evil", false),
            ("/a\r\nSet-Cookie: x", false),
            ("runs", false),
        ];
        for (next, ok) in cases {
            assert_eq!(local(next), ok, "{next:?}");
        }
    }

    #[test]
    fn a_sign_in_counts_as_from_here_by_origin_else_referer_else_fetch_site() {
        let h = |pairs: &[(&'static str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().expect("value"));
            }
            m
        };
        let host = ("host", "127.0.0.1:8080");
        // (headers, tls, from here)
        let cases = [
            (h(&[host, ("origin", "http://127.0.0.1:8080")]), false, true),
            (h(&[host, ("origin", "https://127.0.0.1:8080")]), true, true),
            (h(&[host, ("origin", "http://127.0.0.1:8080")]), true, false),
            (h(&[host, ("origin", "http://evil.example")]), false, false),
            (h(&[host, ("origin", "null")]), false, false),
            (
                h(&[host, ("referer", "http://127.0.0.1:8080/signin")]),
                false,
                true,
            ),
            (
                h(&[host, ("referer", "http://127.0.0.1:80800/")]),
                false,
                false,
            ),
            (h(&[host, ("sec-fetch-site", "same-origin")]), false, true),
            (h(&[host, ("sec-fetch-site", "cross-site")]), false, false),
            (h(&[host]), false, false),
            (h(&[("origin", "http://127.0.0.1:8080")]), false, false),
        ];
        for (i, (headers, tls, want)) in cases.into_iter().enumerate() {
            assert_eq!(from_here(&headers, tls), want, "case {i}: {headers:?}");
        }
    }
}
