//! The pages for people: server-side HTML, complete without JavaScript (`docs/web.md`).
//!
//! Who is looking is decided by [`crate::auth`] (a bearer token, or the session cookie of
//! [`crate::session`]); a page only renders. The words come from their owners as on the
//! command line: an event's line from `waygate_core::summary`, a refusal from the engine, a
//! run's timeline and graph from `waygate_view`. Every value is escaped by `waygate_view::xml`.
//!
//! # Layout
//! `signin` (sign-in, sign-out), `runs` (the list), `run` (one run, its definition and
//! approving from the page), `audit` (events across runs and the chain's verification),
//! `diff` (the definition's line diff), `live.js` (the run page's live updates).

mod audit;
mod diff;
mod run;
mod runs;
mod signin;

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use waygate_view::xml;

pub(crate) use audit::ChainCache;

use crate::auth::{allow, identify, route_of, CookieUse, Via, NO_TOKEN};
use crate::error::Code;
use crate::role::Action;
use crate::server::Shared;
use crate::tokens::Identity;

/// The pages' routes, with their security headers.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/runs") }))
        .route("/signin", get(signin::form).post(signin::submit))
        .route("/signout", post(signin::signout))
        .route("/runs", get(runs::page))
        .route("/runs/{id}", get(run::page))
        .route("/runs/{id}/definition", get(run::definition))
        .route("/runs/{id}/approve", post(run::approve))
        .route("/audit", get(audit::page))
        .route("/static/live.js", get(live_js))
        .layer(middleware::map_response(headers))
}

/// The Content-Security-Policy of every page: nothing from elsewhere, no inline script.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                   script-src 'self'; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

async fn headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        // `same-origin`, not `no-referrer`: a browser then sends the page's own Origin with
        // the sign-in form (with `no-referrer` it sends `Origin: null`), which is how a
        // sign-in from another site is told apart.
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
    ] {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

async fn live_js() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        include_str!("live.js"),
    )
        .into_response()
}

/// Someone allowed to read the pages.
#[derive(Debug)]
pub(crate) struct Viewer {
    identity: Identity,
    via: Via,
}

impl Viewer {
    /// The hidden CSRF field of a changing form: the session's token; nothing for a bearer
    /// token, which a browser never sends by itself.
    fn csrf_field(&self) -> String {
        match &self.via {
            Via::Session(s) => format!(
                "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
                xml::text(&s.csrf)
            ),
            Via::Bearer(_) => String::new(),
        }
    }

    /// Whether a changing form came from this session's own page: its `csrf` field is the
    /// session's token. A bearer request needs none.
    fn csrf_ok(&self, presented: Option<&str>) -> bool {
        match &self.via {
            Via::Session(s) => presented.is_some_and(|p| s.csrf_matches(p)),
            Via::Bearer(_) => true,
        }
    }

    fn may(&self, action: Action) -> bool {
        crate::role::any_allows(&self.identity.roles, action)
    }
}

impl FromRequestParts<Arc<Shared>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let route = route_of(parts);
        let next = parts.uri.to_string();
        let (identity, via) = identify(parts, shared, CookieUse::Accepted).map_err(|e| {
            let next = (parts.method == axum::http::Method::GET).then_some(next.as_str());
            // Someone who has not signed in yet needs no reason, only the form.
            let why = (e.message != NO_TOKEN).then_some(e.message.as_str());
            signin::page(StatusCode::UNAUTHORIZED, why, next)
        })?;
        if let Err(e) = allow(&identity, Action::Read, &route) {
            return Err(refusal(&identity, StatusCode::FORBIDDEN, &e.message));
        }
        Ok(Viewer { identity, via })
    }
}

/// What a changing form without its session's CSRF token is told.
const CSRF_REFUSED: &str = "This form did not come from your current page (its CSRF token is \
                            missing or out of date): reload the page and try again. Nothing \
                            was changed.";

/// A page that only says why not.
fn refusal(identity: &Identity, status: StatusCode, why: &str) -> Response {
    let body = format!(
        "<h1>Not allowed</h1>\n<p role=\"alert\" id=\"error\">{}</p>\n",
        xml::text(why)
    );
    html(status, layout("Not allowed", Some(identity), None, &body))
}

/// An HTML answer.
fn html(status: StatusCode, page: String) -> Response {
    (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// The page's own styles, after the audit report's (`waygate_view::report::CSS`).
const CSS: &str = "\
nav{display:flex;gap:1rem;align-items:center;flex-wrap:wrap;border-bottom:2px solid #444;padding:.4rem 0;margin-bottom:1rem}\n\
nav .who{margin-left:auto}\n\
nav form{display:inline}\n\
a:focus,button:focus,input:focus,select:focus,textarea:focus,summary:focus{outline:3px solid #0b4fb0;outline-offset:2px}\n\
form.filters{display:flex;flex-wrap:wrap;gap:.6rem 1rem;align-items:flex-end;margin:.5rem 0 1rem}\n\
form.filters label{display:flex;flex-direction:column;font-size:.9rem}\n\
#error{border:2px solid #a0001c;color:#a0001c;padding:.5rem .7rem;font-weight:600}\n\
.approve textarea{width:100%;max-width:40rem;min-height:3rem}\n\
.pager{display:flex;gap:1rem}\n\
dl.header{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dl.header dt{font-weight:600}\n\
pre.diff .add{background:#e6ffec}pre.diff .del{background:#ffebe9}\n\
button{font:inherit;padding:.2rem .7rem}\n";

/// A whole page: the nav with who is signed in and the sign-out form (when `who` is), and
/// `main`. `csrf` is the sign-out form's hidden field.
fn layout(title: &str, who: Option<&Identity>, csrf: Option<&str>, main: &str) -> String {
    let mut out = String::with_capacity(main.len() + 4096);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · waygate</title>\n<style>\n{}{CSS}</style>\n</head>\n<body>\n",
        xml::text(title),
        waygate_view::report::CSS,
    );
    if let Some(who) = who {
        let roles: Vec<&str> = who.roles.iter().map(|r| r.name()).collect();
        let _ = write!(
            out,
            "<nav aria-label=\"waygate\">\n<a href=\"/runs\">Runs</a>\n<a href=\"/audit\">Audit</a>\n\
             <span class=\"who\">Signed in as <span id=\"actor\">{}</span> ({})</span>\n\
             <form id=\"signout\" method=\"post\" action=\"/signout\">{}\
             <button type=\"submit\">Sign out</button></form>\n</nav>\n",
            xml::text(&who.actor),
            xml::text(&roles.join(", ")),
            csrf.unwrap_or_default(),
        );
    }
    let _ = write!(out, "<main>\n{main}</main>\n</body>\n</html>\n");
    out
}

/// The alert that says why something was refused, or nothing.
fn error_alert(why: Option<&str>) -> String {
    why.map(|w| format!("<p role=\"alert\" id=\"error\">{}</p>\n", xml::text(w)))
        .unwrap_or_default()
}

/// A query value: blank means not given.
fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A time query value as people write it (`waygate_core::summary::parse_time`); blank means
/// not given; a time that is none is refused in the command line's words.
fn given_time(what: &str, value: &Option<String>) -> Result<Option<jiff::Timestamp>, String> {
    given(value)
        .map(|t| waygate_core::summary::parse_time(&t).map_err(|e| format!("{what} {e}")))
        .transpose()
}

/// The given (not blank) query values, by name, for a link to the same query.
fn given_pairs<'a, 'v>(
    fields: impl IntoIterator<Item = (&'a str, &'v Option<String>)>,
) -> Vec<(&'a str, String)> {
    fields
        .into_iter()
        .filter_map(|(n, v)| given(v).map(|v| (n, v)))
        .collect()
}

/// A labelled text field of a filter form.
fn filter_field(name: &str, label: &str, value: Option<&str>, hint: &str) -> String {
    format!(
        "<label for=\"f-{name}\">{label}<input id=\"f-{name}\" name=\"{name}\" value=\"{}\"{}></label>\n",
        xml::text(value.unwrap_or_default()),
        if hint.is_empty() {
            String::new()
        } else {
            format!(" placeholder=\"{}\"", xml::text(hint))
        }
    )
}

/// The placeholder of a filter form's time fields: the forms `summary::parse_time` reads.
const TIME_HINT: &str = "2026-11-26 or 2026-11-26T09:00:00Z";

/// The workflow and environment fields of a filter form (every list has them).
fn scope_fields(workflow: Option<&str>, env: Option<&str>) -> String {
    filter_field("workflow", "Workflow", workflow, "")
        + &filter_field("env", "Environment", env, "")
}

/// A filter form's period: its `since` and `until` time fields, each a `(label, value)`, the
/// label saying what the page compares with the time.
fn period_fields(since: (&str, Option<&str>), until: (&str, Option<&str>)) -> String {
    filter_field("since", since.0, since.1, TIME_HINT)
        + &filter_field("until", until.0, until.1, TIME_HINT)
}

/// A labelled choice of a filter form: "any", then each `(value, label)` of `options`, the
/// one equal to `selected` chosen.
fn filter_select(name: &str, label: &str, options: &[(&str, &str)], selected: &str) -> String {
    let mut out = format!(
        "<label for=\"f-{name}\">{label}<select id=\"f-{name}\" name=\"{name}\"><option \
         value=\"\">any</option>"
    );
    for (value, text) in options {
        out.push_str(&format!(
            "<option value=\"{}\"{}>{}</option>",
            xml::text(value),
            if selected == *value { " selected" } else { "" },
            xml::text(text)
        ));
    }
    out.push_str("</select></label>\n");
    out
}

/// A store read off the async threads, as a page's error when it fails.
async fn read<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&dyn waygate_core::store::Store) -> Result<T, waygate_core::store::StoreError>
        + Send
        + 'static,
) -> Result<T, crate::error::ApiError> {
    let store = shared.backend.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| crate::error::ApiError::new(Code::Store, format!("store task: {e}")))?
        .map_err(crate::error::ApiError::from)
}

/// A page that says the request failed and why.
fn failure(viewer: &Viewer, e: &crate::error::ApiError) -> Response {
    let body = format!(
        "<h1>Cannot show this</h1>\n{}",
        error_alert(Some(&e.message))
    );
    html(
        e.code.status(),
        layout(
            "Error",
            Some(&viewer.identity),
            Some(&viewer.csrf_field()),
            &body,
        ),
    )
}
