//! `GET /runs`: every run, newest first, 50 a page, filtered by workflow, environment, status,
//! initiator and time.
//!
//! The page cursor names the last (or first) run shown by its start time and id, so a page
//! stays where it was when runs start meanwhile: `older:TIME/ID` shows the runs after it in the
//! list, `newer:TIME/ID` the 50 before it.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use waygate_core::run::{Run, RunStatus};
use waygate_core::store::RunFilter;
use waygate_core::summary::time;
use waygate_view::xml;

use super::{
    error_alert, failure, filter_field, filter_select, given, given_pairs, given_time, html,
    layout, period_fields, read, scope_fields, Viewer,
};
use crate::server::Shared;

/// Runs a page shows.
pub(crate) const PAGE: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub(super) struct RunsQuery {
    workflow: Option<String>,
    env: Option<String>,
    status: Option<String>,
    initiator: Option<String>,
    since: Option<String>,
    until: Option<String>,
    page: Option<String>,
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cursor {
    /// The runs after (older than) this key.
    Older(Key),
    /// The runs before (newer than) this key.
    Newer(Key),
}

/// A run's place in the list: newest first by start time, then by id.
type Key = (Timestamp, String);

fn key(run: &Run) -> Key {
    (run.started_at, run.id.0.clone())
}

fn cursor_text(direction: &str, (at, id): &Key) -> String {
    format!("{direction}:{at}/{id}")
}

fn parse_cursor(text: &str) -> Option<Cursor> {
    let (direction, rest) = text.split_once(':')?;
    let (at, id) = rest.split_once('/')?;
    let key = (at.parse().ok()?, id.to_owned());
    match direction {
        "older" => Some(Cursor::Older(key)),
        "newer" => Some(Cursor::Newer(key)),
        _ => None,
    }
}

/// The filters as given, checked: (store filter, initiator, since, until, cursor).
struct Asked {
    filter: RunFilter,
    initiator: Option<String>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    cursor: Option<Cursor>,
}

fn asked(q: &RunsQuery) -> Result<Asked, String> {
    let status = match given(&q.status) {
        None => None,
        Some(s) => Some(s.parse::<RunStatus>().map_err(|_| {
            format!("status {s:?}: one of active, waiting, succeeded, failed, aborted")
        })?),
    };
    let cursor = match given(&q.page) {
        None => None,
        Some(p) => Some(parse_cursor(&p).ok_or_else(|| {
            format!("page {p:?} is not a page of this list: start again from the first page")
        })?),
    };
    Ok(Asked {
        filter: RunFilter {
            workflow: given(&q.workflow),
            env: given(&q.env),
            status,
        },
        initiator: given(&q.initiator),
        since: given_time("since", &q.since)?,
        until: given_time("until", &q.until)?,
        cursor,
    })
}

/// One page of `items` (sorted newest first by `key`) from `cursor`: where it is, and whether
/// there are newer and older ones.
fn one_page<T>(
    items: &[T],
    key: impl Fn(&T) -> Key,
    cursor: Option<&Cursor>,
) -> (std::ops::Range<usize>, bool, bool) {
    let (start, end) = match cursor {
        None => (0, PAGE.min(items.len())),
        Some(Cursor::Older(k)) => {
            let start = items.partition_point(|r| key(r) >= *k);
            (start, (start + PAGE).min(items.len()))
        }
        Some(Cursor::Newer(k)) => {
            let end = items.partition_point(|r| key(r) > *k);
            (end.saturating_sub(PAGE), end)
        }
    };
    (start..end, start > 0, end < items.len())
}

pub(super) async fn page(
    viewer: Viewer,
    State(shared): State<Arc<Shared>>,
    Query(q): Query<RunsQuery>,
) -> Response {
    let asked = match asked(&q) {
        Ok(a) => a,
        Err(why) => {
            return html(
                StatusCode::BAD_REQUEST,
                render(&viewer, &q, Some(&why), &[], None),
            )
        }
    };
    let filter = asked.filter.clone();
    let mut runs = match read(&shared, move |s| s.list_runs(&filter)).await {
        Ok(r) => r,
        Err(e) => return failure(&viewer, &e),
    };
    runs.retain(|r| {
        asked.initiator.as_ref().is_none_or(|i| &r.initiator == i)
            && r.going_between(asked.since, asked.until)
    });
    runs.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
    let (range, newer, older) = one_page(&runs, key, asked.cursor.as_ref());
    let shown = &runs[range];
    let pager = Pager {
        newer: newer.then(|| shown.first().map(key)).flatten(),
        older: older.then(|| shown.last().map(key)).flatten(),
        total: runs.len(),
    };
    html(
        StatusCode::OK,
        render(&viewer, &q, None, shown, Some(&pager)),
    )
}

struct Pager {
    newer: Option<Key>,
    older: Option<Key>,
    total: usize,
}

/// The page's HTML: the filters, then `why` they are refused, or the runs.
fn render(
    viewer: &Viewer,
    q: &RunsQuery,
    why: Option<&str>,
    runs: &[Run],
    pager: Option<&Pager>,
) -> String {
    let mut main = String::from("<h1>Runs</h1>\n");
    main.push_str(&error_alert(why));
    main.push_str(
        "<form id=\"filters\" class=\"filters\" method=\"get\" action=\"/runs\" \
         aria-label=\"Filter the runs\">\n",
    );
    main.push_str(&scope_fields(q.workflow.as_deref(), q.env.as_deref()));
    main.push_str(&filter_select(
        "status",
        "Status",
        &[
            ("active", "active (not ended)"),
            ("waiting", "waiting"),
            ("succeeded", "succeeded"),
            ("failed", "failed"),
            ("aborted", "aborted"),
        ],
        &given(&q.status).unwrap_or_default(),
    ));
    main.push_str(&filter_field(
        "initiator",
        "Initiator",
        q.initiator.as_deref(),
        "",
    ));
    main.push_str(&period_fields(
        ("Going at or after", q.since.as_deref()),
        ("Started at or before", q.until.as_deref()),
    ));
    main.push_str("<button type=\"submit\">Filter</button> <a href=\"/runs\">Clear</a>\n</form>\n");
    if let Some(pager) = pager {
        table(&mut main, q, runs, pager);
    }
    layout(
        "Runs",
        Some(&viewer.identity),
        Some(&viewer.csrf_field()),
        &main,
    )
}

fn table(main: &mut String, q: &RunsQuery, runs: &[Run], pager: &Pager) {
    let _ = writeln!(
        main,
        "<p>{} run{} match{}, newest first.</p>",
        pager.total,
        if pager.total == 1 { "" } else { "s" },
        if pager.total == 1 { "es" } else { "" }
    );
    main.push_str(
        "<table id=\"runs\">\n<thead><tr><th scope=\"col\">Run</th><th scope=\"col\">Workflow</th>\
         <th scope=\"col\">Environment</th><th scope=\"col\">State</th><th \
         scope=\"col\">Status</th><th scope=\"col\">Initiator</th><th scope=\"col\">Started</th>\
         <th scope=\"col\">Updated</th></tr></thead>\n<tbody>\n",
    );
    for run in runs {
        let id = xml::text(run.id.as_str());
        let _ = writeln!(
            main,
            "<tr data-run=\"{id}\"><td><a href=\"/runs/{}\"><code class=\"id\">{id}</code></a></td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            xml::text(&path_segment(run.id.as_str())),
            xml::text(&run.workflow),
            xml::text(&run.env),
            xml::text(&run.state),
            waygate_view::report::status(run.status),
            xml::text(&run.initiator),
            time(run.started_at),
            time(run.updated_at),
        );
    }
    main.push_str("</tbody>\n</table>\n<p class=\"pager\">");
    let link = |rel: &str, label: &str, direction: &str, k: &Key| {
        let mut pairs = given_pairs([
            ("workflow", &q.workflow),
            ("env", &q.env),
            ("status", &q.status),
            ("initiator", &q.initiator),
            ("since", &q.since),
            ("until", &q.until),
        ]);
        pairs.push(("page", cursor_text(direction, k)));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!(
            "<a rel=\"{rel}\" href=\"/runs?{}\">{label}</a>",
            xml::text(&query)
        )
    };
    if let Some(k) = &pager.newer {
        main.push_str(&link("prev", "Newer", "newer", k));
    }
    if let Some(k) = &pager.older {
        main.push_str(&link("next", "Older", "older", k));
    }
    main.push_str("</p>\n");
}

/// `text` as one URL path segment: everything but unreserved characters percent-encoded.
pub(super) fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_go_older_and_newer_without_gaps_or_repeats() {
        let t0: Timestamp = "2026-11-26T09:00:00Z".parse().expect("ts");
        // 120 runs, two per second (same start time, told apart by id), newest first.
        let mut keys: Vec<Key> = (0..120)
            .map(|i| {
                (
                    t0 + jiff::SignedDuration::from_secs(i / 2),
                    format!("r{i:03}"),
                )
            })
            .collect();
        keys.sort_by(|a, b| b.cmp(a));
        let id = |k: &Key| k.clone();
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = Vec::new();
        loop {
            let (range, newer, older) = one_page(&keys, id, cursor.as_ref());
            assert_eq!(newer, range.start > 0);
            seen.extend_from_slice(&keys[range.clone()]);
            pages.push(range.clone());
            if !older {
                break;
            }
            cursor = Some(Cursor::Older(keys[range.end - 1].clone()));
        }
        assert_eq!(seen, keys, "every run once, in order");
        assert_eq!(pages, vec![0..50, 50..100, 100..120]);
        // Newer from the last page comes back to the one before it.
        let back = one_page(&keys, id, Some(&Cursor::Newer(keys[100].clone())));
        assert_eq!(back, (50..100, true, true));
        let first = one_page(&keys, id, Some(&Cursor::Newer(keys[30].clone())));
        assert_eq!(first, (0..30, false, true));
    }

    #[test]
    fn a_cursor_reads_back() {
        let k: Key = (
            "2026-11-26T09:00:00Z".parse().expect("ts"),
            "20261126-090000-ab".into(),
        );
        for (dir, want) in [
            ("older", Cursor::Older(k.clone())),
            ("newer", Cursor::Newer(k.clone())),
        ] {
            assert_eq!(parse_cursor(&cursor_text(dir, &k)), Some(want));
        }
        for bad in ["", "older", "older:x/y", "sideways:2026-11-26T09:00:00Z/a"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }
}
