//! `GET /runs/{id}`: one run — its header, what changed in its definition since the previous
//! run of the workflow in the environment, its graph with the path taken, the approvals it
//! waits for (with a form for those who may approve), and its timeline, live while it runs.
//! `GET /runs/{id}/definition`: the pinned definition as text. `POST /runs/{id}/approve`: the
//! API's approve ([`crate::routes::approve_as`]), from a form.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use waygate_core::approval::pending;
use waygate_core::run::Run;
use waygate_core::store::RunFilter;
use waygate_core::summary::time;
use waygate_core::text::is_blank;
use waygate_executor::engine::Loaded;
use waygate_executor::EngineError;
use waygate_view::report::{approvals_table, event_table, graph_figure, status};
use waygate_view::xml;

use super::diff::line_diff;
use super::runs::path_segment;
use super::{error_alert, failure, html, layout, read, Viewer, CSRF_REFUSED};
use crate::auth::{allow, refused};
use crate::error::{ApiError, Code};
use crate::role::Action;
use crate::routes::{approve_as, run_id};
use crate::server::Shared;

pub(super) async fn page(
    viewer: Viewer,
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    render(&viewer, &shared, &id, StatusCode::OK, None).await
}

pub(super) async fn definition(
    viewer: Viewer,
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    let id = run_id(&id);
    match read(&shared, move |s| s.load_run(&id)).await {
        Ok(run) => (
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            run.definition,
        )
            .into_response(),
        Err(e) => failure(&viewer, &e),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ApproveForm {
    #[serde(default)]
    guard: String,
    comment: Option<String>,
    csrf: Option<String>,
}

pub(super) async fn approve(
    viewer: Viewer,
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Form(form): Form<ApproveForm>,
) -> Response {
    let route = "/runs/{id}/approve";
    if !viewer.csrf_ok(form.csrf.as_deref()) {
        refused(
            route,
            Code::NotAllowed,
            "csrf",
            &viewer.identity.actor,
            "approval without the session's CSRF token".into(),
        );
        return render(
            &viewer,
            &shared,
            &id,
            StatusCode::FORBIDDEN,
            Some(CSRF_REFUSED),
        )
        .await;
    }
    if let Err(e) = allow(&viewer.identity, Action::Approve, route) {
        return render(
            &viewer,
            &shared,
            &id,
            StatusCode::FORBIDDEN,
            Some(&e.message),
        )
        .await;
    }
    let comment = form.comment.filter(|c| !is_blank(c));
    let approved = approve_as(
        shared.engine(&viewer.identity.actor),
        run_id(&id),
        form.guard,
        comment,
        false,
    )
    .await;
    match approved {
        Ok(_) => (
            StatusCode::SEE_OTHER,
            [(LOCATION, format!("/runs/{}", path_segment(id.trim())))],
        )
            .into_response(),
        Err(e) => {
            // A refusal by the guard's rules is "not allowed" here, as an auditor's POST is.
            let refused = matches!(e, EngineError::Refused(_));
            let e = ApiError::from(e);
            let code = if refused {
                StatusCode::FORBIDDEN
            } else {
                e.code.status()
            };
            render(&viewer, &shared, &id, code, Some(&e.message)).await
        }
    }
}

/// The run page, answering `code`, saying `why` when something was refused.
async fn render(
    viewer: &Viewer,
    shared: &Arc<Shared>,
    id: &str,
    code: StatusCode,
    why: Option<&str>,
) -> Response {
    let engine = shared.engine(&viewer.identity.actor);
    let loaded = match engine.load(&run_id(id)).await {
        Ok(l) => l,
        Err(e) => return failure(viewer, &ApiError::from(e)),
    };
    let filter = RunFilter {
        workflow: Some(loaded.run.workflow.clone()),
        env: Some(loaded.run.env.clone()),
        status: None,
    };
    let previous = match read(shared, move |s| s.list_runs(&filter)).await {
        Ok(runs) => previous_run(&loaded.run, runs),
        Err(e) => return failure(viewer, &e),
    };
    let prompts: Vec<String> = {
        let ctx = engine.context(&loaded);
        pending(
            &loaded.workflow,
            loaded.state,
            &loaded.events,
            &loaded.run.initiator,
        )
        .iter()
        .map(|p| ctx.render_for_display(&p.check.prompt))
        .collect()
    };
    let main = run_main(viewer, &loaded, previous.as_ref(), &prompts, why);
    html(
        code,
        layout(
            &format!("Run {}", loaded.run.id),
            Some(&viewer.identity),
            Some(&viewer.csrf_field()),
            &main,
        ),
    )
}

/// The run of the same workflow in the same environment started last before `run`.
fn previous_run(run: &Run, runs: Vec<Run>) -> Option<Run> {
    let at = (run.started_at, &run.id);
    runs.into_iter()
        .filter(|r| (r.started_at, &r.id) < at)
        .max_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)))
}

/// The page's content. `prompts` are the pending approvals' prompts, rendered, in the order
/// `approval::pending` gives them.
fn run_main(
    viewer: &Viewer,
    loaded: &Loaded,
    previous: Option<&Run>,
    prompts: &[String],
    why: Option<&str>,
) -> String {
    let run = &loaded.run;
    let href = path_segment(run.id.as_str());
    let mut out = String::with_capacity(64 * 1024 + loaded.events.len() * 1024);
    let _ = writeln!(
        out,
        "<h1>Run <code>{}</code>: {} in {}</h1>\n{}",
        xml::text(run.id.as_str()),
        xml::text(&run.workflow),
        xml::text(&run.env),
        error_alert(why)
    );

    out.push_str("<section id=\"run-header\" aria-label=\"The run\">\n<dl class=\"header\">\n");
    let rows = [
        ("Workflow", xml::text(&run.workflow)),
        ("Environment", xml::text(&run.env)),
        ("State", xml::text(&run.state)),
        ("Status", status(run.status)),
        ("Initiator", xml::text(&run.initiator)),
        ("Started", time(run.started_at)),
        ("Updated", time(run.updated_at)),
        (
            "Ended",
            run.ended_at.map(time).unwrap_or_else(|| "not ended".into()),
        ),
        (
            "Definition (sha256)",
            format!(
                "<a href=\"/runs/{href}/definition\"><code class=\"hash\">{}</code></a>",
                xml::text(&run.definition_hash)
            ),
        ),
    ];
    for (what, value) in rows {
        let _ = writeln!(out, "<dt>{what}</dt><dd>{value}</dd>");
    }
    out.push_str("</dl>\n</section>\n");

    out.push_str(
        "<section id=\"definition-diff\" aria-labelledby=\"h-diff\">\n<h2 id=\"h-diff\">What \
         changed in the definition</h2>\n",
    );
    match previous {
        None => out.push_str(&format!(
            "<p>There is no earlier run of {} in {} to compare with.</p>\n",
            xml::text(&run.workflow),
            xml::text(&run.env)
        )),
        Some(p) => {
            let prev = format!(
                "<a href=\"/runs/{}\"><code>{}</code></a>",
                path_segment(p.id.as_str()),
                xml::text(p.id.as_str())
            );
            match line_diff(&p.definition, &run.definition) {
                None => {
                    let _ = writeln!(
                        out,
                        "<p>No change since the previous run of {} in {}, {prev}.</p>",
                        xml::text(&run.workflow),
                        xml::text(&run.env)
                    );
                }
                Some(diff) => {
                    let _ = writeln!(
                        out,
                        "<p>Since the previous run of {} in {}, {prev} (lines marked <code>-</code> \
                         are gone, <code>+</code> are new):</p>\n{diff}",
                        xml::text(&run.workflow),
                        xml::text(&run.env)
                    );
                }
            }
        }
    }
    out.push_str("</section>\n");

    let _ = writeln!(
        out,
        "<section id=\"graph\" aria-labelledby=\"h-graph\">\n<h2 id=\"h-graph\">Graph</h2>\n\
         <p>Now in <strong>{}</strong> ({}).</p>\n{}\n</section>",
        xml::text(&run.state),
        run.status.as_str(),
        graph_figure(&loaded.workflow, &loaded.events)
    );

    approvals(&mut out, viewer, loaded, prompts, &href);

    let after = loaded.events.last().map(|e| e.seq).unwrap_or_default();
    let _ = writeln!(
        out,
        "<section id=\"timeline\" aria-labelledby=\"h-timeline\" data-run=\"{}\" \
         data-after=\"{after}\" data-live=\"{}\">\n<h2 id=\"h-timeline\">Timeline</h2>\n<p>{} \
         event{}, oldest first{}.</p>",
        xml::text(run.id.as_str()),
        !run.status.is_ended(),
        loaded.events.len(),
        if loaded.events.len() == 1 { "" } else { "s" },
        if run.status.is_ended() {
            ""
        } else {
            "; this page follows the run while it goes on (or reload it)"
        }
    );
    event_table(&mut out, &loaded.events, None);
    out.push_str("</section>\n");
    if !run.status.is_ended() {
        out.push_str("<script src=\"/static/live.js\" defer></script>\n");
    }
    out
}

fn approvals(out: &mut String, viewer: &Viewer, loaded: &Loaded, prompts: &[String], href: &str) {
    let run = &loaded.run;
    out.push_str(
        "<section id=\"approvals\" aria-labelledby=\"h-approvals\">\n<h2 \
         id=\"h-approvals\">Approvals</h2>\n",
    );
    let waiting = pending(
        &loaded.workflow,
        loaded.state,
        &loaded.events,
        &run.initiator,
    );
    if run.status.is_ended() {
        out.push_str("<p>The run has ended: nothing waits for an approval.</p>\n");
    } else if waiting.is_empty() {
        let _ = writeln!(
            out,
            "<p>Nothing in <strong>{}</strong> waits for an approval.</p>",
            xml::text(&run.state)
        );
    } else {
        let may = viewer.may(Action::Approve);
        let _ = writeln!(
            out,
            "<p>Waiting in <strong>{}</strong> for:</p>",
            xml::text(&run.state)
        );
        for (p, prompt) in waiting.iter().zip(prompts) {
            let guard = xml::text(p.guard);
            let mut rules = Vec::new();
            if !p.check.approvers.is_empty() {
                rules.push(format!(
                    "only {} may approve",
                    xml::text(&p.check.approvers.join(", "))
                ));
            }
            if p.check.not_by_initiator {
                rules.push(format!(
                    "not {} (who started the run)",
                    xml::text(&run.initiator)
                ));
            }
            let _ = writeln!(
                out,
                "<article class=\"pending\" aria-labelledby=\"h-pending-{guard}\">\n\
                 <h3 id=\"h-pending-{guard}\"><code>{guard}</code>, to go to {}</h3>\n\
                 <p class=\"prompt\">{}</p>\n<p>Approved by {} of {} needed{}{}.</p>",
                xml::text(&loaded.workflow.state(p.to).name),
                xml::text(prompt),
                if p.tally.approvers.is_empty() {
                    "no one yet".to_owned()
                } else {
                    xml::text(&p.tally.approvers.join(", "))
                },
                p.tally.need,
                if rules.is_empty() { "" } else { "; " },
                rules.join("; ")
            );
            if may {
                let _ = writeln!(
                    out,
                    "<form class=\"approve\" data-guard=\"{guard}\" method=\"post\" \
                     action=\"/runs/{href}/approve\">\n\
                     <input type=\"hidden\" name=\"guard\" value=\"{guard}\">{}\n\
                     <p><label for=\"comment-{guard}\">Comment</label><br>\
                     <textarea id=\"comment-{guard}\" name=\"comment\" rows=\"3\" \
                     cols=\"60\"></textarea></p>\n\
                     <p><button type=\"submit\">Approve</button></p>\n</form>",
                    viewer.csrf_field()
                );
            }
            out.push_str("</article>\n");
        }
        if !may {
            let _ = writeln!(
                out,
                "<p>{} may read but not approve (it needs the role approver or above).</p>",
                xml::text(&viewer.identity.actor)
            );
        }
    }
    out.push_str("<h3>Given, refused and withdrawn</h3>\n");
    approvals_table(out, &loaded.events);
    out.push_str("</section>\n");
}
