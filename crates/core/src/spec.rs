//! The RON workflow file, one type per construct, mirroring the file one-to-one.
//!
//! Nothing here is checked beyond what serde checks (types, unknown fields): names are plain
//! strings and durations are unparsed text. [`crate::validate`] turns a [`Spec`] into a
//! [`crate::model::Workflow`], where every name resolves and every duration is parsed; the
//! executor only ever sees the latter.
//!
//! [`span_tree`] reads the same text a second time for where each value sits, so that
//! validation can point at it.

pub mod span_tree;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A whole workflow file: `Workflow(name: .., initial: .., states: {..}, transitions: [..])`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename = "Workflow", deny_unknown_fields)]
pub struct Spec {
    /// The workflow's name, `[a-z0-9_-]+`; runs and the environment lock are keyed by it.
    pub name: String,
    /// Free text shown by `status` and `graph`.
    #[serde(default)]
    pub description: Option<String>,
    /// The state a new run starts in.
    pub initial: String,
    /// Target of `waygate rollback`, and of incidents in states without their own `on_failure`.
    #[serde(default)]
    pub rollback: Option<String>,
    /// Every `${name}` used anywhere must be declared here.
    #[serde(default)]
    pub vars: IndexMap<String, VarSpec>,
    /// A run is started for exactly one environment; each may set values for declared vars.
    #[serde(default)]
    pub environments: IndexMap<String, EnvironmentSpec>,
    /// States by name, in file order.
    pub states: IndexMap<String, StateSpec>,
    /// Transitions in file order: `advance` takes the first whose guards all pass.
    #[serde(default)]
    pub transitions: Vec<TransitionSpec>,
    /// Who may override any guard of the workflow (`waygate override`), besides each guard's
    /// own `overridable_by`.
    #[serde(default)]
    pub overridable_by: Vec<String>,
    /// Messages to people about runs (`docs/workflow-format.md`, "Notifications").
    #[serde(default)]
    pub notify: Vec<NotifySpec>,
    /// Policy files the workflow must obey (docs/policies.md), relative to the workflow
    /// file's directory; `waygate validate` checks them.
    #[serde(default)]
    pub policies: Vec<String>,
}

/// A notification hook: `(on: [ApprovalWaiting, RunEnded], action: Http(..))`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    /// What it announces.
    pub on: Vec<crate::notify::NotifyOn>,
    /// What it does: an action, templated like any, with `${notify.*}` besides.
    pub action: ActionSpec,
}

/// A declared variable: `()`, `(default: "HEAD")`, `(secret: true, from_env: "TOKEN")`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VarSpec {
    /// Used when neither the environment section, `--var` nor `from_env` supplies a value.
    #[serde(default)]
    pub default: Option<String>,
    /// A secret is read at run time and never stored, logged or printed in clear.
    #[serde(default)]
    pub secret: bool,
    /// The process environment variable the value is read from.
    #[serde(default)]
    pub from_env: Option<String>,
    /// What the variable is for.
    #[serde(default)]
    pub description: Option<String>,
}

/// An environment a run can target: `(vars: { "health_url": ".." })`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// Values for declared vars in this environment.
    #[serde(default)]
    pub vars: IndexMap<String, String>,
    /// What the environment is.
    #[serde(default)]
    pub description: Option<String>,
    /// A lock shared with every workflow naming the same one: runs holding it exclude each
    /// other. Without it a run holds the lock of (workflow, environment).
    #[serde(default)]
    pub lock: Option<String>,
}

/// A state: `(on_enter: [..], on_failure: "rollback", deadline: "5m")` or `(terminal: Success)`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    /// What happens in this state, for people reading `status` and `graph`.
    #[serde(default)]
    pub description: Option<String>,
    /// Actions run in order when the state is entered.
    #[serde(default)]
    pub on_enter: Vec<ActionSpec>,
    /// Where incidents (failed action, broken watch, passed deadline, failing guards under
    /// `drive`) send the run.
    #[serde(default)]
    pub on_failure: Option<String>,
    /// How long a run may stay in this state before it is sent to `on_failure`.
    #[serde(default)]
    pub deadline: Option<String>,
    /// Marks an end state; a run entering it ends with this outcome.
    #[serde(default)]
    pub terminal: Option<Terminal>,
}

/// How a run that reaches a terminal state ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Terminal {
    /// The deployment went through.
    Success,
    /// The deployment was rolled back or otherwise failed; `waygate run` exits 6.
    Failure,
}

/// An edge of the state graph: `(from: "a", to: "b", guards: [..])`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionSpec {
    /// Source state.
    pub from: String,
    /// Target state.
    pub to: String,
    /// Every guard must pass for the transition to be taken.
    #[serde(default)]
    pub guards: Vec<GuardSpec>,
    /// What the transition means.
    #[serde(default)]
    pub description: Option<String>,
}

/// A named check on a transition: `(name: "tests", check: Command(..), retry: (..))`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSpec {
    /// Unique within its transition; `approve RUN GUARD` names it.
    pub name: String,
    /// What has to hold.
    pub check: CheckSpec,
    /// How often a failing check is tried again before the guard counts as failed.
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    /// Who may mark this guard passed for the current visit when its check fails or waits
    /// (`waygate override RUN GUARD --reason TEXT`).
    #[serde(default)]
    pub overridable_by: Vec<String>,
}

/// `retry: (attempts: 10, delay: "30s")`: `attempts` counts every try, the first included.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Total tries, at least 1.
    pub attempts: u32,
    /// Pause between tries.
    #[serde(default)]
    pub delay: Option<String>,
}

/// The check kinds of `docs/workflow-format.md` ("Check kinds").
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub enum CheckSpec {
    /// A program that must exit 0 within its timeout.
    Command(CommandSpec),
    /// An HTTP request whose response must match.
    Http(HttpSpec),
    /// A value in a JSON file that must equal the expected one.
    Json(JsonSpec),
    /// A human sign-off recorded with `waygate approve`.
    Approval(ApprovalSpec),
    /// Bake time since the run entered its state.
    Wait(WaitSpec),
    /// A deploy window in a time zone.
    Window(WindowSpec),
    /// An inner check that must hold at every interval for the whole duration.
    Watch(WatchSpec),
}

/// `Command(run: ["prog", "arg"], timeout: "2m", env: {..}, cwd: "dir")`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// An action's name: later steps use what it publishes as `${steps.NAME.KEY}`. A check
    /// is named by its guard, so validation refuses this on a check.
    #[serde(default)]
    pub name: Option<String>,
    /// The argv: program first. Never passed to a shell.
    pub run: Vec<String>,
    /// Kill the process group after this long.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Extra environment variables for the child.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Working directory, relative to where waygate runs.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Keys the command publishes by writing `key=value` lines to the file named by
    /// `$WAYGATE_OUTPUT`; later steps use them as `${steps.NAME.KEY}`.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Those of `outputs` whose values are secrets: recorded as `***`, never stored, and
    /// usable by later steps only in the process that published them.
    #[serde(default)]
    pub secret_outputs: Vec<String>,
}

/// `Http(url: "..", method: "GET", expect_status: 200, body_contains: "ok", timeout: "5s")`.
///
/// As an action it is a webhook: `body` is sent as JSON.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// An action's name, as for `Command`; a check is named by its guard.
    #[serde(default)]
    pub name: Option<String>,
    /// The URL, `${vars}` allowed.
    pub url: String,
    /// GET for checks and POST for webhooks unless given.
    #[serde(default)]
    pub method: Option<String>,
    /// The status the response must have; any 2xx when not given.
    #[serde(default)]
    pub expect_status: Option<u16>,
    /// Text the response body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Give up on the request after this long.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// A JSON body; string values may use `${vars}`.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Follow redirects to another origin (checks only; off by default).
    #[serde(default)]
    pub cross_origin_redirects: bool,
}

/// `Json(file: "config/flags.json", pointer: "/first_impression_fsm", equals: false)`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSpec {
    /// The file to read, relative to where waygate runs.
    pub file: String,
    /// An RFC 6901 JSON pointer.
    pub pointer: String,
    /// The value expected at the pointer.
    pub equals: serde_json::Value,
}

/// `Approval(prompt: "..", min: 1, approvers: ["alice"], not_by_initiator: true)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSpec {
    /// What the approver vouches for; the checklist's own words.
    pub prompt: String,
    /// How many distinct people must approve; 1 when not given.
    #[serde(default)]
    pub min: Option<u32>,
    /// Who may approve; anyone when empty.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// The person who started the run may not approve it.
    #[serde(default)]
    pub not_by_initiator: bool,
}

/// `Wait(duration: "10m")`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WaitSpec {
    /// Time since the run entered its current state.
    pub duration: String,
}

/// `Window(days: [Mon, Tue], start: "09:00", end: "16:00", tz: "Europe/London")`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Days the window is open on, in the window's time zone.
    pub days: Vec<Weekday>,
    /// Opening time, `HH:MM` local.
    pub start: String,
    /// Closing time, `HH:MM` local, exclusive.
    pub end: String,
    /// An IANA time zone name.
    pub tz: String,
}

/// Days of the week as written in windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// `Watch(check: Command(..), duration: "15m", interval: "30s")`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSpec {
    /// The check that must hold at every interval.
    pub check: Box<CheckSpec>,
    /// How long it must hold.
    pub duration: String,
    /// How often it is checked.
    pub interval: String,
}

/// An `on_enter` action.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub enum ActionSpec {
    /// Run a program; a non-zero exit fails the action.
    Command(CommandSpec),
    /// Call a webhook; a response other than `expect_status` (or 2xx) fails the action.
    Http(HttpSpec),
}

/// The RON options every workflow file is read with: `implicit_some`, and newtype variants
/// written without double parentheses (`Command(run: [..])`).
pub fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(
        ron::extensions::Extensions::IMPLICIT_SOME
            | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_with_most_check_kinds_parses() {
        let text = r#"Workflow(
            name: "w",
            initial: "a",
            vars: { "u": (), "v": (default: "HEAD"), "t": (secret: true, from_env: "T") },
            environments: { "staging": (vars: { "u": "http://x" }) },
            states: {
                "a": (on_enter: [Command(run: ["true"], timeout: "2m")], on_failure: "b"),
                "b": (terminal: Failure),
                "c": (terminal: Success),
            },
            transitions: [
                (from: "a", to: "c", guards: [
                    (name: "j", check: Json(file: "f.json", pointer: "/x", equals: false)),
                    (name: "w", check: Window(days: [Mon, Tue], start: "09:00", end: "16:00", tz: "Europe/London")),
                    (name: "h", check: Http(url: "${u}", expect_status: 200), retry: (attempts: 3, delay: "1s")),
                    (name: "x", check: Watch(check: Command(run: ["true"]), duration: "15m", interval: "30s")),
                ]),
            ],
        )"#;
        let spec: Spec = ron_options().from_str(text).expect("parses");
        assert_eq!(spec.vars["v"].default.as_deref(), Some("HEAD"));
        assert!(spec.vars["t"].secret);
        assert_eq!(spec.states["b"].terminal, Some(Terminal::Failure));
        let guards = &spec.transitions[0].guards;
        assert_eq!(
            guards[0].check,
            CheckSpec::Json(JsonSpec {
                file: "f.json".into(),
                pointer: "/x".into(),
                equals: serde_json::Value::Bool(false),
            })
        );
        assert_eq!(guards[2].retry.as_ref().map(|r| r.attempts), Some(3));
        assert!(
            matches!(&guards[3].check, CheckSpec::Watch(w) if matches!(*w.check, CheckSpec::Command(_)))
        );
    }

    #[test]
    fn unknown_field_is_rejected() {
        let text = r#"Workflow(name: "w", initial: "a", states: { "a": (terminl: Success) })"#;
        let err = ron_options()
            .from_str::<Spec>(text)
            .expect_err("unknown field");
        assert_eq!(err.span.start.line, 1);
    }
}
