//! The routes: `/v1/...` (one per CLI command, JSON), `/healthz`, `/readyz`, `/metrics`, and
//! the pages for people (`crate::pages`).
//! `docs/api.md` documents each with a `curl` example.
//!
//! Handlers check the caller first ([`Caller`], before the body is read), then do what the
//! CLI command does through the engine, as the caller. An operation that changes a run runs
//! in a task of its own: a client that disconnects or a request that times out never cuts
//! it short, it finishes (or stops at the server's shutdown, cleanly) whoever is listening.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{json, Value};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;
use waygate_core::event::{Event, EventKind};
use waygate_core::run::{RunId, RunStatus};
use waygate_core::store::{EventFilter, RunFilter, VerifyReport};

use waygate_executor::engine::{ApproveOutcome, Engine, StepOutcome};
use waygate_executor::EngineError;

use crate::auth::{still_holds, Administers, Approves, Caller, Needs, Operates, Overrides, Reads};
use crate::error::{ApiError, Code};
use crate::server::Shared;

/// The whole API.
pub fn router(shared: Arc<Shared>) -> Router {
    let limits = shared.limits;
    let quick = Router::new()
        .route("/v1/workflows", get(workflows))
        .route("/v1/workflows/reload", post(reload))
        .route("/v1/workflows/{name}", axum::routing::put(upload))
        .route("/v1/runs", get(runs).post(start))
        .route("/v1/runs/{id}", get(status))
        .route("/v1/runs/{id}/check", post(check))
        .route("/v1/runs/{id}/advance", post(advance))
        .route("/v1/runs/{id}/approve", post(approve))
        .route("/v1/runs/{id}/rollback", post(rollback))
        .route("/v1/runs/{id}/abort", post(abort))
        .route("/v1/runs/{id}/override", post(override_guard))
        .route("/v1/runs/{id}/history", get(history))
        .route("/v1/audit", get(audit))
        .route("/v1/audit/verify", get(verify))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request,
        ));
    // These wait as long as the run does: no overall timeout.
    let long = Router::new()
        .route("/v1/runs/{id}/drive", post(drive))
        .route("/v1/runs/{id}/events", get(events));
    let quick = quick.merge(crate::pages::router().layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request,
    )));
    Router::new()
        .merge(quick)
        .merge(long)
        .route_layer(middleware::from_fn(count))
        .fallback(|| async {
            ApiError::new(
                Code::NotFound,
                "no such route: the API is under /v1 (docs/api.md)",
            )
        })
        .layer(RequestBodyLimitLayer::new(limits.body_bytes))
        .layer(middleware::from_fn(json_errors))
        .layer(RequestBodyTimeoutLayer::new(limits.header))
        .layer(TraceLayer::new_for_http())
        .with_state(shared)
}

/// Counts requests by route and status, and times them.
async fn count(path: MatchedPath, request: Request, next: Next) -> Response {
    let began = Instant::now();
    let route = path.as_str().to_owned();
    let response = next.run(request).await;
    let code = response.status().as_u16().to_string();
    metrics::counter!("waygate_http_requests_total", "route" => route.clone(), "code" => code)
        .increment(1);
    metrics::histogram!("waygate_http_request_seconds", "route" => route)
        .record(began.elapsed().as_secs_f64());
    response
}

/// What a body over the limit is told, whoever notices it.
const TOO_LARGE: &str = "the request body is larger than this server takes";

/// Makes the plain-text refusals of the layers and extractors that answer before or instead of
/// a handler (a body whose announced length is over the limit; a run id in the URL that is no
/// UTF-8; a method the route does not take; a request over the time limit) the API's JSON
/// error, so every error carries its code (`docs/api.md`, Errors) and the CLI prints what the
/// server said.
///
/// An answer that is already JSON, or a page (HTML: the pages say their own errors to a
/// person), is left as it is.
async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let said = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.starts_with(b"application/json") || v.starts_with(b"text/html")
        });
    let code = match response.status() {
        _ if said => return response,
        StatusCode::PAYLOAD_TOO_LARGE => Code::TooLarge,
        StatusCode::BAD_REQUEST => Code::Usage,
        StatusCode::METHOD_NOT_ALLOWED => Code::WrongMethod,
        StatusCode::REQUEST_TIMEOUT => Code::Timeout,
        _ => return response,
    };
    let allow = response.headers().get(axum::http::header::ALLOW).cloned();
    let message = match code {
        Code::TooLarge => TOO_LARGE.to_owned(),
        Code::WrongMethod => format!(
            "{method} is not a method of this route; it takes {}",
            allow
                .as_ref()
                .and_then(|a| a.to_str().ok())
                .unwrap_or("other methods")
        ),
        Code::Timeout => "the request took longer than this server allows for one (docs/api.md, \
                          Limits); an operation that changes a run still runs to its end"
            .to_owned(),
        _ => match axum::body::to_bytes(response.into_body(), 4096).await {
            Ok(text) if !text.is_empty() => String::from_utf8_lossy(&text).into_owned(),
            _ => "bad request".to_owned(),
        },
    };
    let mut answer = ApiError::new(code, message).into_response();
    if let Some(allow) = allow {
        answer
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow);
    }
    answer
}

/// A JSON body; a body that is too large or not the expected JSON is an [`ApiError`].
struct Body<T>(T);

impl<T, S> FromRequest<S> for Body<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(Code::TooLarge, TOO_LARGE))
            }
            Err(e) => Err(ApiError::new(Code::Usage, e.body_text())),
        }
    }
}

/// Runs `work` in a task of its own and waits for it: see the module docs.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(work)
        .await
        .map_err(|e| ApiError::new(Code::Store, format!("the operation failed: {e}")))?
}

pub(crate) fn run_id(text: &str) -> RunId {
    RunId(text.trim().to_owned())
}

/// A route on the run its path names (`/v1/runs/{id}/...`), by a caller whose roles allow
/// `N`: the run's id and the engine, acting as the caller. Extracting it checks the caller
/// first ([`Caller`]), then reads the path.
struct OnRun<N> {
    id: RunId,
    engine: Engine,
    caller: Caller<N>,
}

impl<N: Needs + Send> FromRequestParts<Arc<Shared>> for OnRun<N> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::<N>::from_request_parts(parts, shared)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path(id) = Path::<String>::from_request_parts(parts, shared)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(OnRun {
            id: run_id(&id),
            engine: shared.engine(&caller.identity.actor),
            caller,
        })
    }
}

/// What a step (`advance`, `rollback`) answers: where it left the run, and its outcome.
async fn stepped(engine: &Engine, id: RunId, outcome: StepOutcome) -> Result<Value, ApiError> {
    let run = engine.load_run(&id).await?;
    Ok(json!({
        "run_id": id,
        "state": run.state,
        "status": run.status,
        "outcome": outcome,
    }))
}

async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    let store = shared.backend.store.clone();
    let probe = tokio::task::spawn_blocking(move || store.load_run(&RunId("readyz".into()))).await;
    let reachable = matches!(
        probe,
        Ok(Ok(_)) | Ok(Err(waygate_core::store::StoreError::NotFound(_)))
    );
    let loaded = shared.catalog().loaded.len();
    if !reachable {
        return (StatusCode::SERVICE_UNAVAILABLE, "store not reachable\n").into_response();
    }
    if loaded == 0 {
        return (StatusCode::SERVICE_UNAVAILABLE, "no workflows loaded\n").into_response();
    }
    (StatusCode::OK, format!("ready: {loaded} workflows\n")).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = tokio::task::spawn_blocking(move || shared.render_metrics())
        .await
        .unwrap_or_default();
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}

fn catalog_json(shared: &Shared) -> Value {
    let catalog = shared.catalog();
    let loaded: Vec<Value> = catalog
        .loaded
        .iter()
        .map(|(name, w)| {
            json!({
                "name": name,
                "file": w.file.display().to_string(),
                "description": w.workflow.description,
                "environments": w.workflow.environments.keys().collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "loaded": loaded, "rejected": catalog.rejected })
}

async fn workflows(_: Caller<Reads>, State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(catalog_json(&shared))
}

async fn reload(
    caller: Caller<Administers>,
    State(shared): State<Arc<Shared>>,
) -> Result<Json<Value>, ApiError> {
    tracing::info!(actor = %caller.identity.actor, "reloading workflows");
    shared.reload().map_err(|e| {
        ApiError::new(
            Code::Error,
            format!("cannot read the workflows directory: {e}"),
        )
    })?;
    Ok(Json(catalog_json(&shared)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadBody {
    /// The workflow file's text.
    text: String,
}

/// Adds or replaces the workflow `name` in the workflows directory (as `NAME.ron`) with a
/// definition that validates and is named `name`, then reloads. Nothing is written otherwise.
async fn upload(
    caller: Caller<Administers>,
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Body(body): Body<UploadBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !plain {
        return Err(ApiError::new(
            Code::Usage,
            format!("{name:?}: a workflow name here has letters, digits, `.`, `_` and `-`, not first `.`"),
        ));
    }
    let file = shared.workflows_dir.join(format!("{name}.ron"));
    match crate::catalog::checked(&file.display().to_string(), &body.text) {
        Ok(w) if w.name == name => {}
        Ok(w) => {
            return Err(ApiError::new(
                Code::Error,
                format!("the workflow is named {:?}, not {name:?}", w.name),
            ))
        }
        Err(errors) => {
            return Err(ApiError::new(
                Code::Error,
                format!(
                    "the workflow has errors, nothing was written: {}",
                    errors.join("; ")
                ),
            ))
        }
    }
    let existed = file.exists();
    let temp = shared.workflows_dir.join(format!(".{name}.ron.new"));
    let written = std::fs::write(&temp, &body.text).and_then(|()| std::fs::rename(&temp, &file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(ApiError::new(
            Code::Error,
            format!("cannot write {}: {e}", file.display()),
        ));
    }
    tracing::info!(actor = %caller.identity.actor, workflow = %name, "workflow uploaded");
    shared.reload().map_err(|e| {
        ApiError::new(
            Code::Error,
            format!("cannot read the workflows directory: {e}"),
        )
    })?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(catalog_json(&shared))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    workflow: String,
    env: String,
    #[serde(default)]
    vars: BTreeMap<String, String>,
}

async fn start(
    caller: Caller<Operates>,
    State(shared): State<Arc<Shared>>,
    Body(body): Body<StartBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let catalog = shared.catalog();
    let Some(w) = catalog.loaded.get(&body.workflow) else {
        let known: Vec<&str> = catalog.loaded.keys().map(String::as_str).collect();
        return Err(ApiError::new(
            Code::Error,
            format!(
                "this server has no workflow named {:?} (it has: {})",
                body.workflow,
                known.join(", ")
            ),
        ));
    };
    let w = w.clone();
    let engine = shared.engine(&caller.identity.actor);
    let started = detached(async move {
        let file = w.file.display().to_string();
        Ok(engine
            .start(&w.workflow, &file, &w.text, &body.env, &body.vars)
            .await?)
    })
    .await?;
    let run = started.run;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "run_id": run.id, "run": run })),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    workflow: Option<String>,
    env: Option<String>,
    status: Option<String>,
}

async fn runs(
    _: Caller<Reads>,
    State(shared): State<Arc<Shared>>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(serde_json::from_value::<RunStatus>(json!(s)).map_err(|_| {
            ApiError::new(
                Code::Usage,
                format!("status {s:?}: one of active, waiting, succeeded, failed, aborted"),
            )
        })?),
    };
    let filter = RunFilter {
        workflow: q.workflow,
        env: q.env,
        status,
    };
    let store = shared.backend.store.clone();
    let runs = blocking(move || store.list_runs(&filter)).await?;
    Ok(Json(json!(runs)))
}

/// A store read off the async threads.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, waygate_core::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| ApiError::new(Code::Store, format!("store task: {e}")))?
        .map_err(ApiError::from)
}

async fn status(OnRun { id, engine, .. }: OnRun<Reads>) -> Result<Json<Value>, ApiError> {
    let loaded = engine.load(&id).await?;
    let running = engine.actions_running(&id)?;
    Ok(Json(json!({
        "run": loaded.run,
        "deadline": loaded.deadline(),
        "actions_running": running,
        "events": loaded.events,
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToBody {
    to: Option<String>,
}

async fn check(
    OnRun { id, engine, .. }: OnRun<Operates>,
    Body(body): Body<ToBody>,
) -> Result<Json<Value>, ApiError> {
    let dry = engine.dry_run(&id, body.to.as_deref()).await?;
    Ok(Json(json!({
        "run_id": dry.loaded.run.id,
        "state": dry.loaded.run.state,
        "decision": dry.decision,
        "transitions": dry.reports,
    })))
}

async fn advance(
    OnRun { id, engine, .. }: OnRun<Operates>,
    Body(body): Body<ToBody>,
) -> Result<Json<Value>, ApiError> {
    detached(async move {
        let (outcome, reports) = engine.advance(&id, body.to.as_deref()).await?;
        let mut answer = stepped(&engine, id, outcome).await?;
        answer["transitions"] = json!(reports);
        Ok(Json(answer))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    guard: String,
    comment: Option<String>,
    #[serde(default)]
    withdraw: bool,
}

async fn approve(
    OnRun { id, engine, .. }: OnRun<Approves>,
    Body(body): Body<ApproveBody>,
) -> Result<Json<Value>, ApiError> {
    let actor = engine.actor().to_owned();
    let outcome = approve_as(
        engine,
        id.clone(),
        body.guard.clone(),
        body.comment,
        body.withdraw,
    )
    .await?;
    Ok(Json(json!({
        "run_id": id,
        "guard": body.guard,
        "actor": actor,
        "withdrawn": body.withdraw,
        "approvers": outcome.approvers,
        "min": outcome.min,
    })))
}

/// Approving (or withdrawing an approval) as `actor`: the one operation behind the API's
/// `approve` and the run page's approve form, so the guard's rules (`approvers`,
/// `not_by_initiator`, the state the run is in) are the engine's alone. It runs in a task of
/// its own (see the module docs).
pub(crate) async fn approve_as(
    engine: Engine,
    id: RunId,
    guard: String,
    comment: Option<String>,
    withdraw: bool,
) -> Result<ApproveOutcome, EngineError> {
    tokio::spawn(async move {
        if withdraw {
            engine.withdraw(&id, &guard, comment).await
        } else {
            engine.approve(&id, &guard, comment).await
        }
    })
    .await
    .map_err(|e| EngineError::Join(e.to_string()))?
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

async fn rollback(
    OnRun { id, engine, .. }: OnRun<Operates>,
    Body(body): Body<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    detached(async move {
        let outcome = engine.rollback(&id, &body.reason).await?;
        Ok(Json(stepped(&engine, id, outcome).await?))
    })
    .await
}

async fn abort(
    OnRun { id, engine, .. }: OnRun<Operates>,
    Body(body): Body<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    detached(async move {
        let run = engine.abort(&id, &body.reason).await?;
        Ok(Json(
            json!({ "run_id": id, "state": run.state, "status": run.status, "run": run }),
        ))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    guard: String,
    reason: String,
}

/// Break-glass: marks `guard` passed for this visit of the run's state, as the caller, when
/// the guard's or workflow's `overridable_by` names them (the engine asks `core`).
async fn override_guard(
    OnRun { id, engine, .. }: OnRun<Overrides>,
    Body(body): Body<OverrideBody>,
) -> Result<Json<Value>, ApiError> {
    detached(async move {
        let target = engine
            .override_guard(&id, &body.guard, &body.reason)
            .await?;
        Ok(Json(json!({
            "run_id": id,
            "guard": body.guard,
            "to": target.to,
            "actor": engine.actor(),
            "reason": body.reason,
            "said": target.said,
        })))
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DriveBody {
    #[serde(default)]
    no_wait: bool,
    /// Answer when the drive ends (the drive goes on if the client leaves); else at once.
    #[serde(default)]
    wait: bool,
}

async fn drive(
    OnRun { id, caller, .. }: OnRun<Operates>,
    State(shared): State<Arc<Shared>>,
    Body(body): Body<DriveBody>,
) -> Result<Response, ApiError> {
    // The run must exist before it is written down as driven.
    let store = shared.backend.store.clone();
    let check = id.clone();
    blocking(move || store.load_run(&check)).await?;
    let mut end = shared
        .drives
        .start(&shared, id.clone(), &caller.identity.actor, body.no_wait)?;
    if !body.wait {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "run_id": id, "driving": true })),
        )
            .into_response());
    }
    loop {
        if let Some(result) = end.borrow().clone() {
            return result.map(|v| Json(v).into_response());
        }
        if end.changed().await.is_err() {
            return Err(ApiError::new(
                Code::Interrupted,
                "the drive stopped without an answer",
            ));
        }
    }
}

async fn history(
    OnRun { id, .. }: OnRun<Reads>,
    State(shared): State<Arc<Shared>>,
) -> Result<Json<Vec<Event>>, ApiError> {
    let store = shared.backend.store.clone();
    Ok(Json(blocking(move || store.run_events(&id)).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    workflow: Option<String>,
    env: Option<String>,
    run: Option<String>,
    actor: Option<String>,
    kind: Option<String>,
    /// As people write times (`waygate_core::summary::parse_time`).
    since: Option<String>,
    until: Option<String>,
    /// `json` (the default) or `csv` (`waygate_core::summary::events_csv`).
    format: Option<String>,
}

async fn audit(
    _: Caller<Reads>,
    State(shared): State<Arc<Shared>>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => {
            return Err(ApiError::new(
                Code::Usage,
                format!("format {f:?}: json or csv"),
            ))
        }
    };
    let time = |what: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| {
                waygate_core::summary::parse_time(t)
                    .map_err(|e| ApiError::new(Code::Usage, format!("{what} {e}")))
            })
            .transpose()
    };
    let (since, until) = (time("since", &q.since)?, time("until", &q.until)?);
    if let Some(k) = &q.kind {
        if !EventKind::NAMES.contains(&k.as_str()) {
            return Err(ApiError::new(
                Code::Usage,
                format!("kind {k:?}: one of {}", EventKind::NAMES.join(", ")),
            ));
        }
    }
    let filter = EventFilter {
        workflow: q.workflow,
        env: q.env,
        run: q.run.as_deref().map(run_id),
        actor: q.actor,
        kind: q.kind,
        since,
        until,
    };
    let store = shared.backend.store.clone();
    let events = blocking(move || store.scan_events(&filter)).await?;
    if csv {
        return Ok((
            [("content-type", "text/csv; charset=utf-8")],
            waygate_core::summary::events_csv(&events),
        )
            .into_response());
    }
    Ok(Json(events).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyQuery {
    expect_head: Option<String>,
}

async fn verify(
    _: Caller<Reads>,
    State(shared): State<Arc<Shared>>,
    Query(q): Query<VerifyQuery>,
) -> Result<Json<VerifyReport>, ApiError> {
    let expect = q.expect_head.map(|h| h.trim().to_ascii_lowercase());
    let store = shared.backend.store.clone();
    let report = blocking(move || match &expect {
        Some(hash) => store.verify_reaching(hash),
        None => store.verify(),
    })
    .await?;
    Ok(Json(report))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// Only events after this seq.
    after: Option<u64>,
}

/// A run's events as server-sent events (`event: run-event`, data the event as JSON), from
/// the start (or after `after`), live until the run ends (then `event: end`) or the server
/// stops.
async fn events(
    OnRun { id, caller, .. }: OnRun<Reads>,
    State(shared): State<Arc<Shared>>,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    // Held for as long as the stream is open; each idle stream looks at the store now and
    // then, so their number is bounded (`Limits::streams`).
    let Ok(permit) = shared.streams.clone().try_acquire_owned() else {
        metrics::counter!("waygate_event_streams_refused_total").increment(1);
        return Err(ApiError::new(
            Code::Busy,
            format!(
                "this server has {} event streams open, as many as it allows; try again later, \
                 or follow the run with `waygate status`",
                shared.limits.streams
            ),
        ));
    };
    let store = shared.backend.store.clone();
    let check = id.clone();
    blocking(move || store.load_run(&check)).await?;
    struct Follow {
        _permit: tokio::sync::OwnedSemaphorePermit,
        shared: Arc<Shared>,
        caller: Caller<Reads>,
        id: RunId,
        after: Option<u64>,
        queue: std::collections::VecDeque<SseEvent>,
        done: bool,
    }
    let follow = Follow {
        _permit: permit,
        shared,
        caller,
        id,
        after: q.after,
        queue: Default::default(),
        done: false,
    };
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        loop {
            if let Some(e) = f.queue.pop_front() {
                return Some((Ok(e), f));
            }
            // Signed out, or the token revoked, while the stream was open: it ends.
            if f.done || !still_holds(&f.shared, &f.caller.via, &f.caller.identity.actor) {
                return None;
            }
            // Subscribed before the read: a write between the read and the wait wakes it.
            let mut woken = f.shared.wakes.subscribe(&f.id);
            let store = f.shared.backend.store.clone();
            let id = f.id.clone();
            let read = blocking(move || store.load_run_with_events(&id)).await;
            let Ok((run, events)) = read else {
                f.done = true;
                continue;
            };
            let after = f.after;
            for e in events.iter().filter(|e| after.is_none_or(|a| e.seq > a)) {
                f.after = Some(e.seq);
                if let Ok(data) = serde_json::to_string(e) {
                    f.queue.push_back(
                        SseEvent::default()
                            .event("run-event")
                            .id(e.seq.to_string())
                            .data(data),
                    );
                }
            }
            if run.status.is_ended() {
                let data = json!({ "run_id": run.id, "state": run.state, "status": run.status });
                f.queue
                    .push_back(SseEvent::default().event("end").data(data.to_string()));
                f.done = true;
            } else if f.queue.is_empty() {
                // Woken at once by a write through this server (a drive's step, an
                // approval); other processes' writes (another replica's) are seen at the next
                // look. The store has no read of a run's events after a seq, so a look reads
                // them all: rarely (`Limits::stream_look`).
                let shutdown = f.shared.shutdown.clone();
                let look = f.shared.limits.stream_look;
                tokio::select! {
                    () = woken.changed() => {}
                    _ = tokio::time::sleep(look) => {}
                    _ = shutdown.wait() => { f.done = true; }
                }
            }
            // Dropped (also when the client goes away mid-wait): the run is forgotten once
            // nobody waits on it.
            drop(woken);
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tower::ServiceExt;

    /// A route behind the quick routes' time limit and [`json_errors`], as in [`router`].
    fn slow_app() -> Router {
        Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(120)).await;
                    "late"
                }),
            )
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(60),
            ))
            .layer(middleware::from_fn(json_errors))
    }

    async fn error_of(response: Response) -> (StatusCode, ApiError) {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("body");
        let body: crate::error::ErrorBody = serde_json::from_slice(&body).expect("a JSON error");
        (status, body.error)
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_over_the_time_limit_is_a_json_timeout() {
        let request = Request::get("/slow")
            .body(axum::body::Body::empty())
            .expect("request");
        let response = slow_app().oneshot(request).await.expect("answered");
        let (status, error) = error_of(response).await;
        assert_eq!(
            (status, error.code),
            (StatusCode::REQUEST_TIMEOUT, Code::Timeout)
        );
        assert!(error.message.contains("took longer"), "{}", error.message);
    }

    #[tokio::test]
    async fn a_wrong_method_is_a_json_error_that_names_the_right_ones() {
        let request = Request::delete("/slow")
            .body(axum::body::Body::empty())
            .expect("request");
        let response = slow_app().oneshot(request).await.expect("answered");
        let allow = response.headers().get(axum::http::header::ALLOW).cloned();
        let (status, error) = error_of(response).await;
        assert_eq!(
            (status, error.code),
            (StatusCode::METHOD_NOT_ALLOWED, Code::WrongMethod)
        );
        assert!(error.message.contains("DELETE"), "{}", error.message);
        assert!(allow.is_some());
    }
}
