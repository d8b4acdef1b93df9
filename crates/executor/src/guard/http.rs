//! `Http(url, method, expect_status, body_contains, timeout, headers, body)`: passes when the
//! response has the expected status (any 2xx by default) and, if asked, contains a text.
//!
//! reqwest runs without default features: plain HTTP only, unless the executor's `tls`
//! feature turns on `reqwest/rustls-tls` for https URLs. The same request code serves
//! webhook actions ([`crate::action`]).
//!
//! Redirects are followed only within the URL's origin (scheme, host and port): a redirect
//! elsewhere would send the request, its headers (tokens) and a webhook's body to a server
//! nobody named. A check may opt in with `cross_origin_redirects: true`; a webhook never
//! follows one. The redirect response is then the answer, and the detail names where it
//! pointed. See `docs/workflow-format.md` ("Http").

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE, LOCATION};
use reqwest::Method;
use serde_json::Value;
use waygate_core::model::HttpCheck;
use waygate_core::template::{MissingVar, Template};

use crate::clock::human;
use crate::context::GuardContext;
use crate::error::ExecError;
use crate::guard::Verdict;

/// The most body read from a response, to look for `body_contains` and keep as evidence.
const MAX_BODY: usize = 1024 * 1024;

/// The most redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// What a request is for, which decides its default method and which redirects it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    /// An `Http` guard: GET unless told, cross-origin redirects when the check allows them.
    Check,
    /// A webhook action: POST unless told, never a cross-origin redirect (it would resend its
    /// body and headers to another server).
    Webhook,
}

impl Sender {
    fn default_method(self) -> &'static str {
        match self {
            Sender::Check => "GET",
            Sender::Webhook => "POST",
        }
    }

    fn follows_other_origins(self, check: &HttpCheck) -> bool {
        self == Sender::Check && check.cross_origin_redirects
    }
}

/// Sends the request once and checks the response.
pub async fn check(check: &HttpCheck, ctx: &GuardContext) -> Verdict {
    let response = match send(check, ctx, Sender::Check).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let mut failures: Vec<String> = status_problem(check, &response).into_iter().collect();
    if let Some(needle) = &check.body_contains {
        match ctx.render(needle) {
            Ok(needle) if response.body.contains(&needle) => {}
            Ok(_) => failures.push(format!("body lacks {:?}", ctx.render_for_display(needle))),
            Err(e) => return Verdict::fail(e.to_string()),
        }
    }
    let detail = format!("HTTP {}", response.status);
    let v = if failures.is_empty() {
        Verdict::pass(detail)
    } else {
        Verdict::fail(format!("{detail}, {}", failures.join(", ")))
    };
    v.with_evidence(Some(response.evidence))
}

/// Why `response`'s status is not the one `check` asks for (`expect_status`, else any 2xx),
/// naming where an unfollowed redirect pointed; `None` when it is. Checks and webhooks both
/// ask this.
pub(crate) fn status_problem(check: &HttpCheck, response: &Response) -> Option<String> {
    let expected = match check.expect_status {
        Some(want) if response.status != want => format!("expected {want}"),
        None if !(200..300).contains(&response.status) => "expected 2xx".to_owned(),
        _ => return None,
    };
    Some(match &response.redirect_not_followed {
        Some(note) => format!("{expected}, {note}"),
        None => expected,
    })
}

/// A response as far as checks care.
#[derive(Debug)]
pub(crate) struct Response {
    /// The status code.
    pub status: u16,
    /// The body (at most [`MAX_BODY`] bytes, lossily decoded).
    pub body: String,
    /// Request line, status and body excerpt for people.
    pub evidence: String,
    /// When the response is a redirect to another origin that was not followed: says where
    /// to, for the detail.
    pub redirect_not_followed: Option<String>,
}

/// Builds and sends the request; transport failures come back as a failing verdict.
pub(crate) async fn send(
    check: &HttpCheck,
    ctx: &GuardContext,
    sender: Sender,
) -> Result<Response, Verdict> {
    let method = if check.method.is_empty() {
        sender.default_method()
    } else {
        check.method.as_str()
    };
    let shown = format!("{method} {}", ctx.render_for_display(&check.url));
    let request = build(check, ctx, method, sender).map_err(|e| Verdict::fail(e.to_string()))?;
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Err(transport_failure(&e, check.timeout, &shown)),
    };
    let status = response.status().as_u16();
    let redirect_not_followed = other_origin_redirect(&response).map(|to| match sender {
        Sender::Check => format!(
            "redirect to {to} not followed (another origin; `cross_origin_redirects: true` allows it)"
        ),
        Sender::Webhook => format!(
            "redirect to {to} not followed (another origin; webhooks never follow those)"
        ),
    });
    let mut body = Vec::new();
    let mut truncated = false;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() > room {
                    truncated = true;
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return Err(transport_failure(&e, check.timeout, &shown)),
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let evidence = format!(
        "{shown}\nHTTP {status}{}\n{body}",
        if truncated {
            " (body cut at 1 MiB)"
        } else {
            ""
        }
    );
    Ok(Response {
        status,
        body,
        evidence,
        redirect_not_followed,
    })
}

/// Where `response` redirects to, when that is another origin than the URL it answered.
fn other_origin_redirect(response: &reqwest::Response) -> Option<reqwest::Url> {
    if !response.status().is_redirection() {
        return None;
    }
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    let to = response.url().join(location).ok()?;
    (to.origin() != response.url().origin()).then_some(to)
}

/// Follows redirects within the first URL's origin, and to other origins only when
/// `other_origins`; stops (the redirect response becomes the answer) otherwise.
fn redirect_policy(other_origins: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same_origin || other_origins {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

fn build(
    check: &HttpCheck,
    ctx: &GuardContext,
    method: &str,
    sender: Sender,
) -> Result<reqwest::RequestBuilder, ExecError> {
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| ExecError::Method(method.to_owned()))?;
    let client = reqwest::Client::builder()
        .timeout(check.timeout)
        .redirect(redirect_policy(sender.follows_other_origins(check)))
        .build()
        .map_err(|e| ExecError::Client(e.to_string()))?;
    let url = ctx.render(&check.url)?;
    if cfg!(not(feature = "tls"))
        && url
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
    {
        return Err(ExecError::Client(
            "https needs the executor built with its `tls` feature".to_owned(),
        ));
    }
    let mut request = client.request(method, url);
    for (name, value) in &check.headers {
        let header =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| ExecError::Header(name.clone()))?;
        let value = HeaderValue::from_str(&ctx.render(value)?)
            .map_err(|_| ExecError::Header(name.clone()))?;
        request = request.header(header, value);
    }
    if let Some(body) = &check.body {
        let body = render_json(body, &|t| ctx.render(t))?;
        request = request
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
    }
    Ok(request)
}

/// `value` with every string leaf rendered as a template (a leaf that is not a valid
/// template is sent as written).
pub(crate) fn render_json(
    value: &Value,
    render: &dyn Fn(&Template) -> Result<String, MissingVar>,
) -> Result<Value, MissingVar> {
    Ok(match value {
        Value::String(s) => match Template::parse(s) {
            Ok(t) => Value::String(render(&t)?),
            Err(_) => value.clone(),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_json(v, render))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, render)?)))
                .collect::<Result<_, MissingVar>>()?,
        ),
        other => other.clone(),
    })
}

fn transport_failure(e: &reqwest::Error, limit: Duration, shown: &str) -> Verdict {
    let detail = if e.is_timeout() {
        format!("timed out after {}", human(limit))
    } else if e.is_connect() {
        format!("cannot connect: {}", chain(e))
    } else {
        chain(e)
    };
    Verdict::fail(detail).with_evidence(Some(shown.to_owned()))
}

/// An error with its causes, "a: b: c" (reqwest's own message hides the useful part).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
