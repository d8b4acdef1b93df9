//! The operations through a `waygate serve`: one HTTP request each (`docs/api.md`), as the
//! actor the token belongs to. The server's answers are the engine's own values, so the
//! commands render them as they render local ones; its errors carry a code that `exit.rs`
//! maps to the same exit code a local command would give.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use waygate_core::decide::OverrideTarget;
use waygate_core::event::Event;
use waygate_core::run::{Run, RunId};
use waygate_core::store::{EventFilter, MemoryStore, RunFilter, VerifyReport};
use waygate_core::text::escape_control;
use waygate_executor::engine::{
    ApproveOutcome, DriveEnd, DryRun, Loaded, StepOutcome, TransitionReport,
};
use waygate_executor::Engine;
use waygate_server::error::{ApiError, Code, ErrorBody};

use crate::app::process_clock;
use crate::cli::{Format, Global};
use crate::exit::CliError;
use crate::ops::{Approval, GuardOverride, Start};
use crate::output;

/// A server, and the token to call it with.
pub struct Remote {
    /// The server's URL, without a trailing `/`.
    base: String,
    token: Option<String>,
    client: reqwest::Client,
    /// Output format.
    pub format: Format,
    /// Builds a run read from the server into what the commands render (its pinned
    /// workflow, where it stands); it has no store of its own.
    assembler: Engine,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("base", &self.base).finish()
    }
}

/// Whether `--as` is on the command line (its environment variable is not refused: a
/// shell profile may set it for local use).
fn as_on_command_line() -> bool {
    std::env::args_os().any(|a| {
        let a = a.to_string_lossy();
        a == "--as" || a.starts_with("--as=")
    })
}

/// `--ca-cert FILE` (`WAYGATE_CA_CERT`): the certificates in it trusted besides the public
/// roots, for a server whose certificate a private CA signed (or a self-signed one).
#[cfg(feature = "tls")]
fn trust_ca(
    client: reqwest::ClientBuilder,
    file: &std::path::Path,
) -> Result<reqwest::ClientBuilder, CliError> {
    let bad = |why: String| CliError::BadInput(format!("--ca-cert {}: {why}", file.display()));
    let pem = std::fs::read(file).map_err(|e| bad(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    Ok(certs
        .into_iter()
        .fold(client, |client, cert| client.add_root_certificate(cert)))
}

#[cfg(not(feature = "tls"))]
fn trust_ca(
    _client: reqwest::ClientBuilder,
    file: &std::path::Path,
) -> Result<reqwest::ClientBuilder, CliError> {
    Err(CliError::BadInput(format!(
        "--ca-cert {}: this waygate was built without TLS (feature `tls`)",
        file.display()
    )))
}

/// A request error with its causes (reqwest's own message names only the URL), and what to
/// do when the cause is a certificate this client does not trust.
fn why_unreachable(e: &reqwest::Error) -> String {
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    if why.contains("invalid peer certificate") {
        why.push_str(
            " (a server certificate from a private CA, or self-signed: trust that CA with \
             --ca-cert FILE or WAYGATE_CA_CERT=FILE)",
        );
    }
    why
}

impl Remote {
    /// The server at `url`; the token from `--token-file`, else `WAYGATE_TOKEN`.
    pub fn new(global: &Global, url: &str) -> Result<Remote, CliError> {
        if as_on_command_line() {
            return Err(CliError::Usage(
                "--as cannot be used with --server: the server records on every event the \
                 actor its token belongs to (WAYGATE_TOKEN or --token-file), whoever is named"
                    .into(),
            ));
        }
        let base = url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "--server (or WAYGATE_SERVER) {:?}: a URL such as http://127.0.0.1:7440",
                url
            )));
        }
        let token = match &global.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        CliError::BadInput(format!("--token-file {}: {e}", path.display()))
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => std::env::var("WAYGATE_TOKEN")
                .ok()
                .map(|t| t.trim().to_owned()),
        }
        .filter(|t| !t.is_empty());
        // A token goes into a header: what a header cannot carry (a second line, a control
        // character, a non-ASCII letter) is no token, and is said so here, without printing
        // it, not later as a server that cannot be reached.
        if let Some(t) = &token {
            if reqwest::header::HeaderValue::from_str(t).is_err() {
                let from = match &global.token_file {
                    Some(path) => format!("--token-file {}", path.display()),
                    None => "WAYGATE_TOKEN".to_owned(),
                };
                return Err(CliError::BadInput(format!(
                    "the token in {from} has characters no token has (a line break, a control \
                     character or a non-ASCII letter): it is the one line `waygate token new` \
                     printed"
                )));
            }
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Read commands make their request on a runtime of their own: no idle
            // connection may outlive it.
            .pool_max_idle_per_host(0);
        let client = match &global.ca_cert {
            Some(file) => trust_ca(client, file)?,
            None => client,
        };
        let client = client
            .build()
            .map_err(|e| CliError::Server(format!("cannot make an HTTP client: {e}")))?;
        let assembler =
            Engine::new(Arc::new(MemoryStore::new()), "").with_clock(Arc::new(process_clock()));
        Ok(Remote {
            base,
            token,
            client,
            format: global.format,
            assembler,
        })
    }

    /// `waygate --server URL ARGS`, every word shell-quoted.
    pub fn command_line(&self, args: &[&str]) -> String {
        let mut words = vec!["waygate".to_owned(), "--server".into(), self.base.clone()];
        words.extend(args.iter().map(|a| (*a).to_owned()));
        crate::app::shell_words(&words)
    }

    /// What guards see of the run (for approval prompts).
    pub fn context(&self, loaded: &Loaded) -> waygate_executor::GuardContext {
        self.assembler.context(loaded)
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, CliError> {
        let unreachable = |e: reqwest::Error| {
            CliError::Server(format!(
                "cannot reach the server {}: {}",
                self.base,
                why_unreachable(&e)
            ))
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|e| {
                CliError::Server(format!(
                    "the server {} answered what this waygate cannot read ({e})",
                    self.base
                ))
            });
        }
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => Err(CliError::Remote(body.error)),
            Err(_) => Err(CliError::Server(format!(
                "the server {} answered {status}{}",
                self.base,
                if status == StatusCode::NOT_FOUND {
                    " (is it a waygate server of this version?)"
                } else {
                    ""
                }
            ))),
        }
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: Value) -> Result<T, CliError> {
        self.send(
            self.request(Method::POST, path)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, CliError> {
        self.send(self.request(Method::GET, path).query(query))
            .await
    }

    /// A GET for the commands that run off any async runtime.
    fn get_now<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, CliError> {
        self.now(self.get(path, query))
    }

    /// Runs `request` to its end, for the commands that run off any async runtime.
    fn now<T>(
        &self,
        request: impl std::future::Future<Output = Result<T, CliError>>,
    ) -> Result<T, CliError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CliError::Output)?
            .block_on(request)
    }

    fn run_path(id: &RunId, rest: &str) -> String {
        // Run ids are the server's; anything else is refused there as unknown, and is
        // escaped here so it stays one path segment.
        let escaped: String = id
            .as_str()
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!("/v1/runs/{escaped}{rest}")
    }

    pub async fn start(&self, start: Start<'_>) -> Result<Run, CliError> {
        #[derive(Deserialize)]
        struct Started {
            run: Run,
        }
        let started: Started = self
            .post(
                "/v1/runs",
                json!({
                    "workflow": start.workflow.to_string_lossy(),
                    "env": start.env,
                    "vars": start.vars,
                }),
            )
            .await?;
        Ok(started.run)
    }

    pub async fn status(&self, id: &RunId) -> Result<(Loaded, bool), CliError> {
        #[derive(Deserialize)]
        struct Status {
            run: Run,
            events: Vec<Event>,
            actions_running: bool,
        }
        let status: Status = self.get(&Remote::run_path(id, ""), &[]).await?;
        let loaded = self.assembler.assemble(status.run, status.events)?;
        Ok((loaded, status.actions_running))
    }

    pub async fn dry_run(&self, id: &RunId, to: Option<&str>) -> Result<DryRun, CliError> {
        #[derive(Deserialize)]
        struct Checked {
            decision: waygate_core::decide::Decision,
            transitions: Vec<TransitionReport>,
        }
        let checked: Checked = self
            .post(&Remote::run_path(id, "/check"), json!({ "to": to }))
            .await?;
        let (loaded, _) = self.status(id).await?;
        Ok(DryRun {
            loaded,
            reports: checked.transitions,
            decision: checked.decision,
        })
    }

    pub async fn advance(
        &self,
        id: &RunId,
        to: Option<&str>,
    ) -> Result<(StepOutcome, Vec<TransitionReport>), CliError> {
        #[derive(Deserialize)]
        struct Stepped {
            outcome: StepOutcome,
            transitions: Vec<TransitionReport>,
        }
        let stepped: Stepped = self
            .post(&Remote::run_path(id, "/advance"), json!({ "to": to }))
            .await?;
        Ok((stepped.outcome, stepped.transitions))
    }

    pub async fn approve(
        &self,
        id: &RunId,
        approval: &Approval,
    ) -> Result<(ApproveOutcome, String), CliError> {
        #[derive(Deserialize)]
        struct Approved {
            actor: String,
            #[serde(flatten)]
            outcome: ApproveOutcome,
        }
        let approved: Approved = self
            .post(&Remote::run_path(id, "/approve"), json!(approval))
            .await?;
        Ok((approved.outcome, approved.actor))
    }

    pub async fn rollback(&self, id: &RunId, reason: &str) -> Result<StepOutcome, CliError> {
        #[derive(Deserialize)]
        struct Stepped {
            outcome: StepOutcome,
        }
        let stepped: Stepped = self
            .post(
                &Remote::run_path(id, "/rollback"),
                json!({ "reason": reason }),
            )
            .await?;
        Ok(stepped.outcome)
    }

    pub async fn override_guard(
        &self,
        id: &RunId,
        wanted: GuardOverride<'_>,
    ) -> Result<(OverrideTarget, String), CliError> {
        #[derive(Deserialize)]
        struct Overridden {
            actor: String,
            #[serde(flatten)]
            target: OverrideTarget,
        }
        let done: Overridden = self
            .post(&Remote::run_path(id, "/override"), json!(wanted))
            .await?;
        Ok((done.target, done.actor))
    }

    pub async fn abort(&self, id: &RunId, reason: &str) -> Result<Run, CliError> {
        #[derive(Deserialize)]
        struct Aborted {
            run: Run,
        }
        let aborted: Aborted = self
            .post(&Remote::run_path(id, "/abort"), json!({ "reason": reason }))
            .await?;
        Ok(aborted.run)
    }

    /// Asks the server to drive the run and waits for the drive's end, printing the run's
    /// events on stderr as they happen. The server goes on driving if this process stops.
    pub async fn drive(&self, id: &RunId, no_wait: bool) -> Result<DriveEnd, CliError> {
        let (loaded, _) = self.status(id).await?;
        let after = loaded.events.last().map(|e| e.seq);
        let mut print = |e: &Event| {
            eprintln!(
                "{}",
                escape_control(&format!("{} {}", e.actor, output::event_summary(e)))
            );
        };
        let follow = async {
            // The drive goes on without its events (the server may have all its streams
            // taken): said once, the end is still reported.
            if let Err(e) = self.follow(id, after, &mut print).await {
                eprintln!(
                    "note: not showing the run's events: {}",
                    escape_control(&e.to_string())
                );
            }
        };
        let path = Remote::run_path(id, "/drive");
        let drive = self.post::<DriveEnd>(&path, json!({ "no_wait": no_wait, "wait": true }));
        let stopped = stop_signal();
        tokio::pin!(drive, follow, stopped);
        let mut following = true;
        loop {
            tokio::select! {
                signal = &mut stopped => {
                    // Only this process stops: the server drives on (exit 4, as a local
                    // drive stopped by a signal, the run resumable).
                    return Err(CliError::Remote(ApiError::new(
                        Code::Interrupted,
                        format!(
                            "stopped following run {id} by {signal}; the server goes on driving \
                             it (`waygate drive {id}` follows it again)"
                        ),
                    )));
                }
                end = &mut drive => {
                    if following {
                        // The last events are on their way: a moment for them to print.
                        let _ = tokio::time::timeout(Duration::from_millis(700), &mut follow).await;
                    }
                    return match end? {
                        // The server's drive stops only when the server does: it cannot be
                        // asked about the run now, and it resumes the drive itself (exit 4).
                        DriveEnd::Interrupted { signal, state, action } => {
                            let action = action.map_or_else(String::new, |a| {
                                format!(
                                    "; action {} of `{state}` is recorded as interrupted and \
                                     runs again from its start",
                                    a + 1
                                )
                            });
                            Err(CliError::Remote(ApiError::new(
                                Code::Interrupted,
                                format!(
                                    "the server {} stopped ({signal}) while driving run {id} in \
                                     `{state}`{action}; it resumes the drive when it starts \
                                     again (`waygate drive {id}` then follows it)",
                                    self.base
                                ),
                            )))
                        }
                        end => Ok(end),
                    };
                }
                () = &mut follow, if following => following = false,
            }
        }
    }
}

/// The first of SIGINT, SIGTERM and SIGHUP (never, for one that cannot be listened to).
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    async fn one(kind: SignalKind, name: &'static str) -> &'static str {
        match signal(kind) {
            Ok(mut s) => {
                s.recv().await;
                name
            }
            Err(_) => std::future::pending().await,
        }
    }
    tokio::select! {
        name = one(SignalKind::interrupt(), "SIGINT") => name,
        name = one(SignalKind::terminate(), "SIGTERM") => name,
        name = one(SignalKind::hangup(), "SIGHUP") => name,
    }
}

impl Remote {
    /// Calls `on_event` with the run's events after `after` as the server streams them,
    /// until the run ends; an error if the stream cannot be had, or breaks first.
    pub async fn follow(
        &self,
        id: &RunId,
        after: Option<u64>,
        on_event: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), CliError> {
        let mut query = Vec::new();
        if let Some(seq) = after {
            query.push(("after", seq.to_string()));
        }
        let request = self
            .request(Method::GET, &Remote::run_path(id, "/events"))
            .query(&query);
        let broken = |e: reqwest::Error| {
            CliError::Server(format!(
                "the event stream of {} broke: {}",
                self.base,
                why_unreachable(&e)
            ))
        };
        let mut response = request.send().await.map_err(broken)?;
        let status = response.status();
        if !status.is_success() {
            // The server's own error when it gives one (`busy`: its streams are all taken).
            let text = response.text().await.unwrap_or_default();
            return Err(match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) => CliError::Remote(body.error),
                Err(_) => CliError::Server(format!(
                    "the server {} refused the event stream: {status}",
                    self.base
                )),
            });
        }
        let mut buffer = String::new();
        while let Some(chunk) = response.chunk().await.map_err(broken)? {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let message: String = buffer.drain(..end + 2).collect();
                let mut kind = "";
                let mut data = String::new();
                for line in message.lines() {
                    if let Some(k) = line.strip_prefix("event:") {
                        kind = k.trim();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                match kind {
                    "run-event" => {
                        if let Ok(e) = serde_json::from_str::<Event>(&data) {
                            on_event(&e);
                        }
                    }
                    "end" => return Ok(()),
                    _ => {}
                }
            }
        }
        Err(CliError::Server(format!(
            "the event stream of {} ended before the run did (the server stopping?)",
            self.base
        )))
    }

    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, CliError> {
        self.now(self.list_runs_now(filter))
    }

    pub async fn list_runs_now(&self, filter: &RunFilter) -> Result<Vec<Run>, CliError> {
        let mut query = Vec::new();
        if let Some(w) = &filter.workflow {
            query.push(("workflow", w.clone()));
        }
        if let Some(e) = &filter.env {
            query.push(("env", e.clone()));
        }
        if let Some(s) = &filter.status {
            query.push(("status", s.as_str().to_owned()));
        }
        self.get("/v1/runs", &query).await
    }

    /// The server's URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `text` with the token as `***`.
    pub fn without_token(&self, text: &str) -> String {
        match &self.token {
            Some(t) => text.replace(t.as_str(), "***"),
            None => text.to_owned(),
        }
    }

    /// The run and its events, as one status answer gives them.
    pub fn run_with_events(&self, id: &RunId) -> Result<(Run, Vec<Event>), CliError> {
        #[derive(Deserialize)]
        struct Status {
            run: Run,
            events: Vec<Event>,
        }
        let status: Status = self.get_now(&Remote::run_path(id, ""), &[])?;
        Ok((status.run, status.events))
    }

    pub fn run_events(&self, id: &RunId) -> Result<Vec<Event>, CliError> {
        self.get_now(&Remote::run_path(id, "/history"), &[])
    }

    pub fn scan_events(&self, filter: &EventFilter) -> Result<Vec<Event>, CliError> {
        let mut query = Vec::new();
        let texts = [
            ("workflow", filter.workflow.clone()),
            ("env", filter.env.clone()),
            ("run", filter.run.as_ref().map(|r| r.to_string())),
            ("actor", filter.actor.clone()),
            ("kind", filter.kind.clone()),
            ("since", filter.since.map(|t| t.to_string())),
            ("until", filter.until.map(|t| t.to_string())),
        ];
        for (key, value) in texts {
            if let Some(v) = value {
                query.push((key, v));
            }
        }
        self.get_now("/v1/audit", &query)
    }

    pub fn verify(&self, expect_head: Option<&str>) -> Result<VerifyReport, CliError> {
        let query: Vec<(&str, String)> = expect_head
            .map(|h| vec![("expect_head", h.to_owned())])
            .unwrap_or_default();
        self.get_now("/v1/audit/verify", &query)
    }
}
