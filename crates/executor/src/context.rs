//! Everything a guard or action may need to know about the run it belongs to.
//!
//! A [`GuardContext`] is assembled by the caller (the drive loop, from the store) once per
//! evaluation and shared read-only by every guard of a transition. It also owns redaction:
//! the context is the one place that knows the secret values, so every piece of text that
//! leaves the executor (details, evidence, action descriptions, live output) goes through
//! [`GuardContext::redact`] first.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use waygate_core::template::{MissingVar, Template};

use crate::clock::{Clock, SystemClock};
use crate::live::LiveOutput;

/// What secret values are replaced with.
pub const REDACTED: &str = "***";

/// The shortest start of a secret that [`GuardContext::redact_tail`] hides at the very end
/// of a stream (shorter ones are too likely to be ordinary text).
pub const MIN_CUT_PREFIX: usize = 3;

/// Default pause between SIGTERM and SIGKILL when a command times out or is cancelled.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

pub use waygate_core::approval::ApprovalRecord;

/// The run-level inputs of guard evaluation.
#[derive(Debug, Clone)]
pub struct GuardContext {
    /// The run's id (`${run.id}`).
    pub run_id: String,
    /// The environment name (`${run.env}`).
    pub env: String,
    /// Who started the run (`${run.initiator}`).
    pub initiator: String,
    /// Every value templates may use, secrets and built-ins included. Shared, because every
    /// concurrently running guard reads it.
    pub vars: Arc<HashMap<String, String>>,
    /// The secret values themselves, longest first, for [`GuardContext::redact`].
    pub secrets: Arc<Vec<String>>,
    /// Names of secret vars, for rendering descriptions with `***` in place.
    pub secret_names: Arc<HashSet<String>>,
    /// When the run entered its current state, as stored (unless a clock that ran ahead
    /// stamped it: see `waygate_core::clock_jump::entered_at`). Waits and watches measure from
    /// here, so a restarted process resumes them instead of starting over.
    pub state_entered_at: Timestamp,
    /// The approvals and withdrawals that may count: those of the current visit of the
    /// run's state ([`waygate_core::approval::visit_records`]).
    pub approvals: Vec<ApprovalRecord>,
    /// When each guard (by name) was evaluated before, while the run has been in its current
    /// state, as recorded: a `Watch` counts only watched time.
    pub looks: HashMap<String, Vec<Timestamp>>,
    /// Relative paths (command `cwd`, `Json` files) resolve against this directory.
    pub workdir: PathBuf,
    /// Pause between SIGTERM and SIGKILL for commands that time out.
    pub kill_grace: Duration,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Where commands send what they print while they run; `None`: nowhere (only the
    /// evidence tails are kept).
    pub live: Option<LiveOutput>,
    /// An operator's stop (SIGINT, SIGTERM, SIGHUP) that a command should be given the chance
    /// to handle: its group gets SIGTERM, then SIGKILL after [`GuardContext::kill_grace`].
    /// Set for entry actions (a deploy script may need to release a lock); `None` for guards,
    /// which are simply dropped, and killed at once, when the engine stops.
    pub stop: Option<crate::shutdown::Shutdown>,
    /// The state the run is in (for a [`crate::script::Script`]); empty when not known.
    pub state: String,
    /// Supplies guard verdicts and action results instead of evaluating and running them
    /// (`waygate test`); `None`: the real thing.
    pub script: Option<Arc<dyn crate::script::Script>>,
    /// Where a check or action puts the values it publishes as secrets (`secret_outputs`), by
    /// template variable: they are never stored, so later steps find them only here, in the
    /// process that published them. Shared by every context of one run in one engine.
    pub published_secrets: Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>,
}

impl GuardContext {
    /// A context for run `run_id` in `env` started by `initiator`.
    ///
    /// `vars` are the run's resolved values (without built-ins, which are added here);
    /// `secret_names` says which of them are secret. The state is taken to have been entered
    /// now, with no approvals, in the current directory; adjust the public fields as needed.
    pub fn new(
        run_id: impl Into<String>,
        env: impl Into<String>,
        initiator: impl Into<String>,
        mut vars: HashMap<String, String>,
        secret_names: HashSet<String>,
    ) -> GuardContext {
        let (run_id, env, initiator) = (run_id.into(), env.into(), initiator.into());
        vars.insert("run.id".into(), run_id.clone());
        vars.insert("run.env".into(), env.clone());
        vars.insert("run.initiator".into(), initiator.clone());
        let mut secrets: Vec<String> = secret_names
            .iter()
            .filter_map(|n| vars.get(n))
            .filter(|v| !v.is_empty())
            .flat_map(|v| std::iter::once(v.clone()).chain(url_forms(v)))
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        GuardContext {
            run_id,
            env,
            initiator,
            vars: Arc::new(vars),
            secrets: Arc::new(secrets),
            secret_names: Arc::new(secret_names),
            state_entered_at: Timestamp::now(),
            approvals: Vec::new(),
            looks: HashMap::new(),
            workdir: PathBuf::from("."),
            kill_grace: DEFAULT_KILL_GRACE,
            clock: Arc::new(SystemClock),
            live: None,
            stop: None,
            state: String::new(),
            script: None,
            published_secrets: Arc::default(),
        }
    }

    /// Keeps `values` that step `step` published as secrets for later steps of this process.
    pub fn keep_secrets(&self, step: &str, values: std::collections::BTreeMap<String, String>) {
        if values.is_empty() {
            return;
        }
        let mut kept = self
            .published_secrets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (k, v) in values {
            kept.insert(waygate_core::outputs::variable(step, &k), v);
        }
    }

    /// The current instant according to [`GuardContext::clock`].
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// `text` with every secret value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        // Longest first, so a secret containing another is replaced whole.
        for secret in self.secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    /// Redacts the kept tail of a stream.
    ///
    /// When the start of the stream was dropped (`truncated`), the tail may begin in the
    /// middle of a secret, where [`GuardContext::redact`] cannot recognise it: a tail that
    /// starts with the end of a secret has that part replaced too. Likewise a stream cut off
    /// while writing a secret (a killed child) may end with its first bytes; a tail ending in
    /// at least [`MIN_CUT_PREFIX`] bytes of a secret's start has them replaced.
    pub fn redact_tail(&self, tail: &[u8], truncated: bool) -> String {
        let mut start = 0;
        if truncated {
            // Longest proper suffix of any secret that the tail starts with.
            start = self
                .secrets
                .iter()
                .filter_map(|s| {
                    let s = s.as_bytes();
                    (1..s.len())
                        .rev()
                        .find(|&k| tail.starts_with(&s[s.len() - k..]))
                })
                .max()
                .unwrap_or(0);
        }
        let rest = &tail[start..];
        let end = self
            .secrets
            .iter()
            .filter_map(|s| {
                let s = s.as_bytes();
                (MIN_CUT_PREFIX..s.len())
                    .rev()
                    .find(|&k| rest.ends_with(&s[..k]))
            })
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        if start > 0 {
            out.push_str(REDACTED);
        }
        out.push_str(&self.redact(&String::from_utf8_lossy(&rest[..rest.len() - end])));
        if end > 0 {
            out.push_str(REDACTED);
        }
        out
    }

    /// This context for redacting output read line by line ([`crate::live`]): each line of a
    /// multi-line secret (a key, a certificate) counts as a secret on its own, since no single
    /// line of output holds such a secret whole.
    pub(crate) fn for_lines(&self) -> GuardContext {
        let mut parts: Vec<String> = self
            .secrets
            .iter()
            .flat_map(|s| s.split('\n'))
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        parts.sort_by_key(|s| std::cmp::Reverse(s.len()));
        parts.dedup();
        GuardContext {
            secrets: Arc::new(parts),
            ..self.clone()
        }
    }

    /// The value of a template variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Renders `template` with the run's values (secrets in clear: for the child, never for
    /// display).
    pub fn render(&self, template: &Template) -> Result<String, MissingVar> {
        template.render(|n| self.var(n))
    }

    /// Renders `template` for display: secrets as `***`, and as written when a value is
    /// missing.
    pub fn render_for_display(&self, template: &Template) -> String {
        template
            .render_redacted(|n| self.var(n), |n| self.secret_names.contains(n))
            .map(|s| self.redact(&s))
            .unwrap_or_else(|_| template.source().to_owned())
    }

    /// Resolves a path against [`GuardContext::workdir`].
    pub fn resolve_path(&self, path: &str) -> PathBuf {
        self.workdir.join(path)
    }
}

/// How a URL writes `secret` when it stands in a path, a query or the userinfo: the url
/// parser percent-encodes what a URL cannot hold as it is (`pa ss` is `pa%20ss`), and a
/// transport error or a redirect names the URL in that form, so [`GuardContext::redact`]
/// masks these as well. Only the forms that differ from the secret itself.
fn url_forms(secret: &str) -> Vec<String> {
    let Ok(mut url) = reqwest::Url::parse("http://h/") else {
        return Vec::new();
    };
    let mut forms = Vec::new();
    url.set_path(secret);
    forms.push(url.path().trim_start_matches('/').to_owned());
    url.set_query(Some(secret));
    forms.extend(url.query().map(str::to_owned));
    if url.set_username(secret).is_ok() {
        forms.push(url.username().to_owned());
    }
    if url.set_password(Some(secret)).is_ok() {
        forms.extend(url.password().map(str::to_owned));
    }
    forms.retain(|f| !f.is_empty() && f != secret);
    forms.sort();
    forms.dedup();
    forms
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A context with one secret `token` = `s3cr3t-value` and one plain `version` = `1.2`.
    pub(crate) fn ctx() -> GuardContext {
        let vars = HashMap::from([
            ("token".to_owned(), "s3cr3t-value".to_owned()),
            ("version".to_owned(), "1.2".to_owned()),
        ]);
        GuardContext::new(
            "r1",
            "staging",
            "alice",
            vars,
            HashSet::from(["token".to_owned()]),
        )
    }

    #[test]
    fn builtins_are_vars() {
        let c = ctx();
        assert_eq!(c.var("run.id"), Some("r1"));
        assert_eq!(c.var("run.env"), Some("staging"));
        assert_eq!(c.var("run.initiator"), Some("alice"));
    }

    #[test]
    fn redact_replaces_every_occurrence() {
        let c = ctx();
        assert_eq!(c.redact("a s3cr3t-value b s3cr3t-value"), "a *** b ***");
        assert_eq!(c.redact("nothing here"), "nothing here");
    }

    #[test]
    fn redact_hides_a_secret_as_a_url_percent_encodes_it() {
        let vars = HashMap::from([("token".to_owned(), "pa ss\"wörd<1>".to_owned())]);
        let c = GuardContext::new("r1", "e", "a", vars, HashSet::from(["token".to_owned()]));
        for (shown, masked) in [
            ("GET /botpa%20ss%22w%C3%B6rd%3C1%3E/x", "GET /bot***/x"),
            ("GET /?t=pa%20ss%22w%C3%B6rd%3C1%3E", "GET /?t=***"),
            ("the raw pa ss\"wörd<1> too", "the raw *** too"),
        ] {
            assert_eq!(c.redact(shown), masked);
        }
    }

    #[test]
    fn redact_tail_hides_cut_secrets() {
        let c = ctx();
        // The kept tail starts inside a secret, followed by whole ones.
        assert_eq!(c.redact_tail(b"cr3t-values3cr3t-value!", true), "******!");
        assert_eq!(
            c.redact_tail(b"cr3t-value", false),
            "cr3t-value",
            "not truncated"
        );
        assert_eq!(c.redact_tail(b"x s3cr3t-value", false), "x ***");
        // A stream cut while printing a secret.
        assert_eq!(c.redact_tail(b"token=s3cr", false), "token=***");
        assert_eq!(c.redact_tail(b"ok s", false), "ok s", "too short to hide");
    }

    #[test]
    fn display_rendering_hides_secrets() {
        let c = ctx();
        let t = Template::parse("push ${version} with ${token}").expect("valid");
        assert_eq!(c.render_for_display(&t), "push 1.2 with ***");
        assert_eq!(c.render(&t).expect("set"), "push 1.2 with s3cr3t-value");
        let missing = Template::parse("${nope}").expect("valid");
        assert_eq!(c.render_for_display(&missing), "${nope}");
    }
}
