//! Scenarios: what a workflow does when its guards pass, fail or wait in a given order,
//! checked without deploying anything (docs/scenarios.md).
//!
//! A scenario file names a workflow and an environment, scripts the outcomes of guards (each
//! evaluation takes the next outcome of its guard's list; the last one repeats) and of entry
//! actions, and says which state and status the run must end in. This module reads it and
//! checks it against the workflow (an unknown guard or state is an error at its place); the
//! executor runs it through the real engine (`waygate_executor::scenario`).

use indexmap::IndexMap;
use serde::Deserialize;

use crate::diagnostic::{Code, Diagnostic};
use crate::model::Workflow;
use crate::place::Place;
use crate::run::RunStatus;
use crate::spec::span_tree::Step::{Field, Index};

/// A whole scenario file: `Scenario(name: .., workflow: .., env: .., guards: [..], expect: (..))`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename = "Scenario", deny_unknown_fields)]
pub struct Scenario {
    /// Shown in every report.
    pub name: String,
    /// What the scenario shows.
    #[serde(default)]
    pub description: Option<String>,
    /// The workflow file, relative to the scenario file's directory.
    pub workflow: String,
    /// The environment the run is started for.
    pub env: String,
    /// `--var` values for the run (a process's environment is not read: a `from_env` var
    /// without a value here stands for itself, `$NAME`).
    #[serde(default)]
    pub vars: IndexMap<String, String>,
    /// Scripted guard outcomes.
    #[serde(default)]
    pub guards: Vec<GuardScript>,
    /// Scripted entry action results.
    #[serde(default)]
    pub actions: Vec<ActionScript>,
    /// `waygate rollback RUN --reason ..` by an operator, each once, when the run is first in
    /// the state it names.
    #[serde(default)]
    pub rollbacks: Vec<OperatorRollback>,
    /// The outcome of every evaluation of a guard not listed in `guards`.
    #[serde(default = "pass")]
    pub otherwise: Scripted,
    /// Where the run must end up.
    pub expect: Expect,
}

fn pass() -> Scripted {
    Scripted::Pass
}

/// The outcomes of one guard, in order: `(name: "health", state: "production", outcomes: [Fail])`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardScript {
    /// The guard's name.
    pub name: String,
    /// The state whose transitions it guards; any state when not given.
    #[serde(default)]
    pub state: Option<String>,
    /// One per evaluation (each try of a guard with `retry` is one); the last repeats.
    pub outcomes: Vec<Scripted>,
}

/// A scripted guard outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Scripted {
    /// The check holds.
    Pass,
    /// The check does not hold (a `Watch` breaks: an incident).
    Fail,
    /// Not yet: an approval missing, a timer or a watch running, a window closed. The run is
    /// looked at again a minute later.
    Wait,
}

/// The results of a state's entry actions, in order of running: `(state: "production",
/// results: [Fail])`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionScript {
    /// The state whose `on_enter` actions these are.
    pub state: String,
    /// One per action run; the last repeats. Actions not scripted succeed.
    pub results: Vec<ActionResult>,
}

/// A scripted action result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ActionResult {
    /// It succeeded.
    Ok,
    /// It failed: an incident.
    Fail,
}

/// An operator's rollback: `(state: "verify", reason: "Critical errors in logs")`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorRollback {
    /// The state the run is in when the operator asks.
    pub state: String,
    /// The reason given.
    pub reason: String,
}

/// Where the run must end up.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The state it is in at the end.
    pub state: String,
    /// Its status.
    pub status: Status,
    /// The exit code `waygate drive` would give it (docs/cli.md, "Exit codes").
    #[serde(default)]
    pub exit: Option<u8>,
    /// Every state it went through, the initial state first, when given.
    #[serde(default)]
    pub path: Option<Vec<String>>,
}

/// A run's status as a scenario expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Status {
    /// Moving or blocked (failing guards with nowhere to go).
    Active,
    /// Waiting on a guard that never passes.
    Waiting,
    /// Ended in a success terminal state.
    Succeeded,
    /// Ended in a failure terminal state, or failed in place.
    Failed,
}

impl Status {
    /// The run status it stands for.
    pub fn run_status(self) -> RunStatus {
        match self {
            Status::Active => RunStatus::Active,
            Status::Waiting => RunStatus::Waiting,
            Status::Succeeded => RunStatus::Succeeded,
            Status::Failed => RunStatus::Failed,
        }
    }
}

/// A scenario file read: the scenario when it parses, and every finding.
#[derive(Debug)]
pub struct Read {
    /// The scenario, if it parsed.
    pub scenario: Option<Scenario>,
    /// Its findings (a syntax or type error).
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads a scenario file. `file` only labels diagnostics.
pub fn read(file: &str, text: &str) -> Read {
    match crate::spec::ron_options().from_str::<Scenario>(text) {
        Ok(scenario) => Read {
            scenario: Some(scenario),
            diagnostics: Vec::new(),
        },
        Err(err) => {
            let place = Place::new(file, text);
            Read {
                scenario: None,
                diagnostics: vec![crate::validate::ron_error::diagnostic(
                    file,
                    text,
                    place.lines(),
                    &err,
                )],
            }
        }
    }
}

/// Checks `scenario` (the file `file` with text `text`) against its `workflow`: every guard,
/// state and environment it names exists. Each finding is an error at its place in the file.
pub fn check(scenario: &Scenario, workflow: &Workflow, file: &str, text: &str) -> Vec<Diagnostic> {
    let place = Place::new(file, text);
    let mut out = Vec::new();
    let unknown_state = |out: &mut Vec<Diagnostic>, name: &str, span| {
        out.push(place.diagnostic(
            Code::UnknownState,
            span,
            format!("`{name}` is not a state of workflow `{}`", workflow.name),
        ));
    };
    if !workflow.environments.is_empty() && !workflow.environments.contains_key(&scenario.env) {
        let known: Vec<&str> = workflow.environments.keys().map(String::as_str).collect();
        let mut d = place.diagnostic(
            Code::BadValue,
            place.span(&[Field("env")]),
            format!(
                "workflow `{}` has no environment `{}`",
                workflow.name, scenario.env
            ),
        );
        d.help = Some(format!("environments are: {}", known.join(", ")));
        out.push(d);
    }
    for name in scenario.vars.keys() {
        if workflow.vars.contains_key(name) {
            continue;
        }
        let mut d = place.diagnostic(
            Code::BadValue,
            place.key_span(&[Field("vars")], name),
            format!("workflow `{}` declares no var `{name}`", workflow.name),
        );
        let declared: Vec<&str> = workflow.vars.keys().map(String::as_str).collect();
        d.help = crate::validate::suggest::closest_of(name, &declared)
            .map(|c| format!("did you mean `{c}`?"));
        out.push(d);
    }
    for (i, g) in scenario.guards.iter().enumerate() {
        let state = match &g.state {
            Some(s) => match workflow.state_id(s) {
                Some(id) => Some(id),
                None => {
                    let span = place.span(&[Field("guards"), Index(i), Field("state")]);
                    unknown_state(&mut out, s, span);
                    continue;
                }
            },
            None => None,
        };
        let exists = workflow.states().any(|(id, _)| {
            state.is_none_or(|s| s == id)
                && workflow
                    .outgoing_iter(id)
                    .any(|t| t.transition.guards.iter().any(|x| x.name == g.name))
        });
        if !exists {
            let where_ = g
                .state
                .as_ref()
                .map(|s| format!(" on a transition out of `{s}`"))
                .unwrap_or_default();
            let mut d = place.diagnostic(
                Code::BadValue,
                place.span(&[Field("guards"), Index(i), Field("name")]),
                format!(
                    "workflow `{}` has no guard `{}`{where_}",
                    workflow.name, g.name
                ),
            );
            let names: Vec<&str> = workflow
                .graph
                .edge_weights()
                .flat_map(|t| t.guards.iter().map(|g| g.name.as_str()))
                .collect();
            d.help = crate::validate::suggest::closest_of(&g.name, &names)
                .map(|c| format!("did you mean `{c}`?"));
            out.push(d);
        }
        if g.outcomes.is_empty() {
            out.push(place.diagnostic(
                Code::BadValue,
                place.span(&[Field("guards"), Index(i), Field("outcomes")]),
                "list at least one outcome".into(),
            ));
        }
    }
    for (i, a) in scenario.actions.iter().enumerate() {
        match workflow.state_by_name(&a.state) {
            None => {
                let span = place.span(&[Field("actions"), Index(i), Field("state")]);
                unknown_state(&mut out, &a.state, span);
            }
            Some((_, s)) if s.on_enter.is_empty() => out.push(place.diagnostic(
                Code::BadValue,
                place.span(&[Field("actions"), Index(i), Field("state")]),
                format!("state `{}` has no on_enter actions", a.state),
            )),
            Some(_) if a.results.is_empty() => out.push(place.diagnostic(
                Code::BadValue,
                place.span(&[Field("actions"), Index(i), Field("results")]),
                "list at least one result".into(),
            )),
            Some(_) => {}
        }
    }
    for (i, r) in scenario.rollbacks.iter().enumerate() {
        let span = place.span(&[Field("rollbacks"), Index(i), Field("state")]);
        match workflow.state_by_name(&r.state) {
            None => unknown_state(&mut out, &r.state, span),
            Some((_, s)) if s.terminal.is_some() => out.push(place.diagnostic(
                Code::BadValue,
                span,
                format!(
                    "`{}` is a terminal state: a run there has ended, and nobody can roll it back",
                    r.state
                ),
            )),
            Some(_) => {}
        }
        if crate::text::is_blank(&r.reason) {
            out.push(place.diagnostic(
                Code::BadValue,
                place.span(&[Field("rollbacks"), Index(i), Field("reason")]),
                "a rollback needs a reason (it is kept in the audit trail)".into(),
            ));
        }
    }
    if workflow.state_id(&scenario.expect.state).is_none() {
        let span = place.span(&[Field("expect"), Field("state")]);
        unknown_state(&mut out, &scenario.expect.state, span);
    }
    for (i, s) in scenario.expect.path.iter().flatten().enumerate() {
        if workflow.state_id(s).is_none() {
            let span = place.span(&[Field("expect"), Field("path"), Index(i)]);
            unknown_state(&mut out, s, span);
        }
    }
    out
}
