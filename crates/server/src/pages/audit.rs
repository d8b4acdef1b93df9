//! `GET /audit`: events across runs by actor, kind, workflow, environment and time, with
//! links to the same query as CSV and JSON (`/v1/audit`), and the chain's verification.
//!
//! Verifying reads every event, so a page view does not: the result is kept with the time it
//! was checked ([`ChainCache`]) and checked again in the background once it is older than
//! [`FRESH`]; the page says when it was checked, and that events after its head are not
//! covered yet.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use waygate_core::event::{Event, EventKind};
use waygate_core::store::{EventFilter, VerifyReport};
use waygate_core::summary::time;
use waygate_view::report::event_table;
use waygate_view::xml;

use super::runs::path_segment;
use super::{
    error_alert, failure, filter_field, filter_select, given, given_pairs, given_time, html,
    layout, period_fields, read, scope_fields, Viewer,
};
use crate::server::Shared;

/// The most events the page lists (the newest); the CSV and JSON links give them all.
const SHOWN: usize = 500;

/// How old a verification may be before a page view starts a new one (in the background).
pub(crate) const FRESH: Duration = Duration::from_secs(60);

/// A verification of the whole chain and when it was done.
#[derive(Debug, Clone)]
struct Checked {
    report: VerifyReport,
    at: Timestamp,
}

/// The last verification of the chain, shared by every page view.
#[derive(Debug, Default)]
pub(crate) struct ChainCache {
    last: Mutex<Option<Checked>>,
    busy: AtomicBool,
}

impl ChainCache {
    fn last(&self) -> Option<Checked> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The last verification; the first one is waited for, a stale one is renewed in the
    /// background (one at a time) and shown meanwhile.
    async fn get(shared: &Arc<Shared>) -> Result<Checked, crate::error::ApiError> {
        let cache = &shared.chain;
        match cache.last() {
            Some(c) if Timestamp::now().duration_since(c.at).unsigned_abs() < FRESH => Ok(c),
            Some(c) => {
                if !cache.busy.swap(true, Ordering::AcqRel) {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let _ = ChainCache::verify(&shared).await;
                        shared.chain.busy.store(false, Ordering::Release);
                    });
                }
                Ok(c)
            }
            None => ChainCache::verify(shared).await,
        }
    }

    async fn verify(shared: &Arc<Shared>) -> Result<Checked, crate::error::ApiError> {
        let at = Timestamp::now();
        let report = read(shared, |s| s.verify()).await?;
        let checked = Checked { report, at };
        *shared.chain.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(checked.clone());
        Ok(checked)
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQuery {
    actor: Option<String>,
    kind: Option<String>,
    workflow: Option<String>,
    env: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

impl AuditQuery {
    /// The query's given values, by name, for the links to `/v1/audit`.
    fn pairs(&self) -> Vec<(&str, String)> {
        given_pairs([
            ("actor", &self.actor),
            ("kind", &self.kind),
            ("workflow", &self.workflow),
            ("env", &self.env),
            ("since", &self.since),
            ("until", &self.until),
        ])
    }

    fn filter(&self) -> Result<EventFilter, String> {
        let kind = given(&self.kind);
        if let Some(k) = &kind {
            if !EventKind::NAMES.contains(&k.as_str()) {
                return Err(format!(
                    "kind {k:?}: one of {}",
                    EventKind::NAMES.join(", ")
                ));
            }
        }
        Ok(EventFilter {
            workflow: given(&self.workflow),
            env: given(&self.env),
            run: None,
            actor: given(&self.actor),
            kind,
            since: given_time("since", &self.since)?,
            until: given_time("until", &self.until)?,
        })
    }
}

pub(super) async fn page(
    viewer: Viewer,
    State(shared): State<Arc<Shared>>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let chain = match ChainCache::get(&shared).await {
        Ok(c) => c,
        Err(e) => return failure(&viewer, &e),
    };
    let (code, why, events) = match q.filter() {
        Err(why) => (StatusCode::BAD_REQUEST, Some(why), None),
        Ok(filter) => match read(&shared, move |s| s.scan_events(&filter)).await {
            Ok(events) => (StatusCode::OK, None, Some(events)),
            Err(e) => return failure(&viewer, &e),
        },
    };
    let main = render(&q, why.as_deref(), events.as_deref(), &chain);
    html(
        code,
        layout(
            "Audit",
            Some(&viewer.identity),
            Some(&viewer.csrf_field()),
            &main,
        ),
    )
}

fn render(q: &AuditQuery, why: Option<&str>, events: Option<&[Event]>, chain: &Checked) -> String {
    let mut out = String::from("<h1>Audit</h1>\n");
    out.push_str(&error_alert(why));
    chain_section(&mut out, chain);
    out.push_str(
        "<section id=\"events-section\" aria-labelledby=\"h-events\">\n<h2 \
         id=\"h-events\">Events</h2>\n<form id=\"filters\" class=\"filters\" method=\"get\" \
         action=\"/audit\" aria-label=\"Filter the events\">\n",
    );
    out.push_str(&filter_field("actor", "Actor", q.actor.as_deref(), ""));
    let kinds: Vec<(&str, &str)> = EventKind::NAMES.iter().map(|k| (*k, *k)).collect();
    out.push_str(&filter_select(
        "kind",
        "Kind",
        &kinds,
        &given(&q.kind).unwrap_or_default(),
    ));
    out.push_str(&scope_fields(q.workflow.as_deref(), q.env.as_deref()));
    out.push_str(&period_fields(
        ("At or after", q.since.as_deref()),
        ("At or before", q.until.as_deref()),
    ));
    out.push_str("<button type=\"submit\">Filter</button> <a href=\"/audit\">Clear</a>\n</form>\n");
    let pairs = q.pairs();
    let link = |format: &str| {
        let mut p = pairs.clone();
        p.push(("format", format.to_owned()));
        xml::text(&format!(
            "/v1/audit?{}",
            serde_urlencoded::to_string(&p).unwrap_or_default()
        ))
    };
    let _ = writeln!(
        out,
        "<p>The same query, every event: <a id=\"csv\" href=\"{}\">as CSV</a>, \
         <a id=\"json\" href=\"{}\">as JSON</a>.</p>",
        link("csv"),
        link("json")
    );
    if let Some(events) = events {
        let newest: Vec<Event> = events.iter().rev().take(SHOWN).cloned().collect();
        let _ = writeln!(
            out,
            "<p>{} event{} match{}{}, newest first.</p>",
            events.len(),
            if events.len() == 1 { "" } else { "s" },
            if events.len() == 1 { "es" } else { "" },
            if events.len() > SHOWN {
                format!("; the newest {SHOWN} are shown (narrow the filter, or take the CSV)")
            } else {
                String::new()
            }
        );
        let run_cell = |e: &Event| {
            format!(
                "<a href=\"/runs/{}\"><code class=\"id\">{}</code></a>",
                path_segment(e.run_id.as_str()),
                xml::text(e.run_id.as_str())
            )
        };
        let mut table = String::new();
        event_table(&mut table, &newest, Some(&run_cell));
        out.push_str(&table.replacen("<table>", "<table id=\"events\">", 1));
    }
    out.push_str("</section>\n");
    out
}

fn chain_section(out: &mut String, chain: &Checked) {
    let v = &chain.report;
    out.push_str(
        "<section id=\"chain\" aria-labelledby=\"h-chain\">\n<h2 id=\"h-chain\">The audit \
         trail's hash chain</h2>\n",
    );
    match &v.first_bad {
        None => {
            let _ = writeln!(
                out,
                "<p class=\"verdict status-ok\" id=\"verdict\"><strong>✔ Intact:</strong> {} \
                 events, checksums and hash chain intact.</p>",
                v.events
            );
        }
        Some(b) => {
            let _ = writeln!(
                out,
                "<p class=\"verdict status-bad\" id=\"verdict\"><strong>✘ BAD:</strong> event \
                 {}: {} ({} events checked).</p>",
                b.seq,
                xml::text(&b.problem),
                v.events
            );
        }
    }
    let ago = Timestamp::now()
        .duration_since(chain.at)
        .unsigned_abs()
        .as_secs();
    let (seq, hash) = match &v.head {
        Some(h) => (h.seq.to_string(), xml::text(&h.hash)),
        None => ("none".to_owned(), "none (no events)".to_owned()),
    };
    let _ = writeln!(
        out,
        "<dl class=\"header\">\n<dt>Head (seq)</dt><dd><code id=\"head-seq\">{seq}</code></dd>\n\
         <dt>Head (hash)</dt><dd><code id=\"head-hash\" class=\"hash\">{hash}</code></dd>\n\
         <dt>Checked at</dt><dd><time id=\"checked-at\" datetime=\"{}\">{}</time> ({ago} s \
         ago; checked again when a view finds it older than {} s, so events after the head are \
         not covered yet)</dd>\n</dl>",
        chain.at,
        time(chain.at),
        FRESH.as_secs()
    );
    out.push_str("</section>\n");
}
