//! The validated workflow: a petgraph graph of states whose edges are guarded transitions.
//!
//! Only [`crate::validate`] builds a [`Workflow`], so code holding one can rely on every state
//! name resolving, every duration being parsed, every `${var}` being declared and at least one
//! terminal state being reachable from every state.

use std::time::Duration;

use indexmap::IndexMap;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::Direction;

use crate::event::{Event, EventKind};
pub use crate::spec::{Terminal, Weekday};
use crate::template::Template;

/// A validated workflow.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// The workflow's name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// States as nodes, transitions as edges (edge order is file order).
    pub graph: DiGraph<State, Transition>,
    /// Where a run starts.
    pub initial: NodeIndex,
    /// Target of `waygate rollback` and the fallback for incidents.
    pub rollback: Option<NodeIndex>,
    /// Declared variables, in file order.
    pub vars: IndexMap<String, Var>,
    /// Environments, in file order.
    pub environments: IndexMap<String, Environment>,
    /// Who may override any guard (`waygate override`).
    pub overridable_by: Vec<String>,
    /// Notification hooks, in file order ([`crate::notify`]).
    pub notify: Vec<Notify>,
    /// Policy files it must obey, as written (relative to the workflow file's directory).
    pub policies: Vec<String>,
    pub(crate) state_index: crate::name_hash::NameMap<String, NodeIndex>,
    /// Each state's outgoing transitions in file order, indexed by node index: computed once
    /// at validation so [`crate::decide::decide`] walks a slice instead of collecting and
    /// sorting petgraph's edge list on every decision.
    pub(crate) outgoing: Vec<Vec<EdgeIndex>>,
    /// Whether each state (by node index) is on the rollback path: see
    /// [`Workflow::on_rollback_path`]. Computed once at validation.
    pub(crate) rollback_path: Vec<bool>,
}

/// A notification hook.
#[derive(Debug, Clone)]
pub struct Notify {
    /// What it announces.
    pub on: Vec<crate::notify::NotifyOn>,
    /// What it does.
    pub action: Action,
}

/// A declared variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Var {
    /// Value when nothing else supplies one.
    pub default: Option<String>,
    /// Never stored or printed in clear.
    pub secret: bool,
    /// Process environment variable to read the value from.
    pub from_env: Option<String>,
    /// What the variable is for.
    pub description: Option<String>,
}

/// An environment: values for declared vars.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// Var values for this environment.
    pub vars: IndexMap<String, String>,
    /// What the environment is.
    pub description: Option<String>,
    /// The shared lock a run here holds besides its (workflow, env) lock, if the environment
    /// names one ([`crate::run::LockKeys`]).
    pub lock: Option<String>,
}

/// A state of the workflow.
#[derive(Debug, Clone)]
pub struct State {
    /// The state's name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Actions run in order on entry.
    pub on_enter: Vec<Action>,
    /// Each action's `name`, by its index in `on_enter`.
    pub action_names: Vec<Option<String>>,
    /// Where incidents send the run.
    pub on_failure: Option<NodeIndex>,
    /// How long a run may stay here.
    pub deadline: Option<Duration>,
    /// Set on end states.
    pub terminal: Option<Terminal>,
}

/// A guarded transition (a graph edge).
#[derive(Debug, Clone)]
pub struct Transition {
    /// Position in the file's `transitions` list; `advance` tries them in this order.
    pub order: usize,
    /// Guards that must all pass.
    pub guards: Vec<Guard>,
    /// Free text.
    pub description: Option<String>,
}

/// A named check on a transition.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Unique within its transition.
    pub name: String,
    /// What has to hold.
    pub check: Check,
    /// Tries for a failing check.
    pub retry: Retry,
    /// Who may override it (`waygate override`), besides [`Workflow::overridable_by`].
    pub overridable_by: Vec<String>,
}

/// How often a failing check is tried; `attempts` counts the first try too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Total tries, at least 1.
    pub attempts: u32,
    /// Pause between tries.
    pub delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 1,
            delay: Duration::ZERO,
        }
    }
}

/// A validated check.
#[derive(Debug, Clone)]
pub enum Check {
    /// A program that must exit 0.
    Command(CommandCheck),
    /// An HTTP request whose response must match.
    Http(HttpCheck),
    /// A JSON file value.
    Json(JsonCheck),
    /// Sign-off by people.
    Approval(ApprovalCheck),
    /// Bake time since the run entered its state.
    Wait(Duration),
    /// A deploy window.
    Window(WindowCheck),
    /// An inner check held over time.
    Watch(WatchCheck),
}

impl Check {
    /// The kind's name as written in files: `Command`, `Http`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Command(_) => "Command",
            Check::Http(_) => "Http",
            Check::Json(_) => "Json",
            Check::Approval(_) => "Approval",
            Check::Wait(_) => "Wait",
            Check::Window(_) => "Window",
            Check::Watch(_) => "Watch",
        }
    }
}

/// Default timeout of a `Command` check or action without one.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
/// Default timeout of an `Http` check or action without one.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A program to run, as argv.
#[derive(Debug, Clone)]
pub struct CommandCheck {
    /// Program and arguments; never passed to a shell.
    pub run: Vec<Template>,
    /// Kill the process group after this long.
    pub timeout: Duration,
    /// Extra environment for the child.
    pub env: IndexMap<String, Template>,
    /// Working directory.
    pub cwd: Option<Template>,
    /// Keys it publishes through `$WAYGATE_OUTPUT` (`crate::outputs`).
    pub outputs: Vec<String>,
    /// Those of `outputs` that are secrets: never stored.
    pub secret_outputs: Vec<String>,
}

/// An HTTP request and what its response must be.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// The URL.
    pub url: Template,
    /// Upper-case method name.
    pub method: String,
    /// Required status; any 2xx when `None`.
    pub expect_status: Option<u16>,
    /// Text the body must contain.
    pub body_contains: Option<Template>,
    /// Request timeout.
    pub timeout: Duration,
    /// Extra headers.
    pub headers: IndexMap<String, Template>,
    /// JSON body; string leaves are templates rendered at run time.
    pub body: Option<serde_json::Value>,
    /// Follow redirects to another origin (scheme, host, port). Checks only: validation
    /// refuses it on a webhook, and the executor never follows one for a webhook.
    pub cross_origin_redirects: bool,
}

/// A value in a JSON file.
#[derive(Debug, Clone)]
pub struct JsonCheck {
    /// The file.
    pub file: Template,
    /// An RFC 6901 pointer, checked at validation.
    pub pointer: String,
    /// The expected value.
    pub equals: serde_json::Value,
}

/// Who must approve.
#[derive(Debug, Clone)]
pub struct ApprovalCheck {
    /// What they vouch for.
    pub prompt: Template,
    /// Distinct approvers needed.
    pub min: u32,
    /// Allowed approvers; anyone when empty.
    pub approvers: Vec<String>,
    /// The initiator may not approve.
    pub not_by_initiator: bool,
}

/// A deploy window.
#[derive(Debug, Clone)]
pub struct WindowCheck {
    /// Open days, local.
    pub days: Vec<Weekday>,
    /// Opening time, local.
    pub start: jiff::civil::Time,
    /// Closing time, local, exclusive. If `end <= start` the window spans midnight.
    pub end: jiff::civil::Time,
    /// The IANA zone name as written.
    pub tz_name: String,
    /// The resolved zone.
    pub tz: jiff::tz::TimeZone,
}

/// A check that must keep holding.
#[derive(Debug, Clone)]
pub struct WatchCheck {
    /// The inner check (never a `Watch`, `Approval` or `Wait`).
    pub check: Box<Check>,
    /// How long it must hold.
    pub duration: Duration,
    /// How often it is checked.
    pub interval: Duration,
}

/// An `on_enter` action.
#[derive(Debug, Clone)]
pub enum Action {
    /// Run a program.
    Command(CommandCheck),
    /// Call a webhook.
    Http(HttpCheck),
}

/// Each node's outgoing edges sorted by [`Transition::order`] (file order).
pub(crate) fn outgoing_in_file_order(graph: &DiGraph<State, Transition>) -> Vec<Vec<EdgeIndex>> {
    use petgraph::visit::EdgeRef;
    graph
        .node_indices()
        .map(|n| {
            let mut edges: Vec<(usize, EdgeIndex)> = graph
                .edges_directed(n, Direction::Outgoing)
                .map(|e| (e.weight().order, e.id()))
                .collect();
            edges.sort_unstable_by_key(|&(order, _)| order);
            edges.into_iter().map(|(_, id)| id).collect()
        })
        .collect()
}

/// Which states are on the rollback path of `rollback`, by node index.
///
/// A run moves along transitions and along `on_failure` (a fall-back to the workflow's
/// `rollback` state leads into that state, so it adds nothing here). A state is on the
/// rollback path when it is reachable from the rollback state and a run cannot reach it from
/// `initial` without passing through the rollback state: the rollback state itself and what
/// only it leads to. A state that both the deployment and the rollback lead to (a shared
/// `notify` state, a retry loop back to the start) is not on it. Linear in the graph's size.
pub(crate) fn rollback_path(
    graph: &DiGraph<State, Transition>,
    initial: NodeIndex,
    rollback: Option<NodeIndex>,
) -> Vec<bool> {
    let mut on_path = vec![false; graph.node_count()];
    let Some(rollback) = rollback else {
        return on_path;
    };
    // Every state reachable from `from` without entering `avoid`.
    let reach = |from: NodeIndex, avoid: Option<NodeIndex>| {
        let mut seen = vec![false; graph.node_count()];
        if Some(from) == avoid {
            return seen;
        }
        let mut stack = vec![from];
        seen[from.index()] = true;
        while let Some(n) = stack.pop() {
            let next = graph
                .neighbors_directed(n, Direction::Outgoing)
                .chain(graph[n].on_failure);
            for m in next {
                if Some(m) != avoid && !seen[m.index()] {
                    seen[m.index()] = true;
                    stack.push(m);
                }
            }
        }
        seen
    };
    let without = reach(initial, Some(rollback));
    let after = reach(rollback, None);
    for (i, slot) in on_path.iter_mut().enumerate() {
        *slot = after[i] && !without[i];
    }
    on_path
}

impl Workflow {
    /// Whether a run in `state` whose history is `events` (oldest first) is on its rollback
    /// path (see `docs/workflow-format.md`, "The rollback path"): in the workflow's `rollback`
    /// state or a state only it leads to, or anywhere the run went after it entered the
    /// rollback state, until it goes back to `initial` to try again. A state the deployment
    /// leads to as well (a shared `notify`) is on the path for a run that came to it by
    /// rolling back. Such a run refuses another `waygate rollback`, and its incidents do not
    /// fall back to the rollback state again: either would run the rollback actions twice.
    pub fn on_rollback_path(&self, state: NodeIndex, events: &[Event]) -> bool {
        let only_after = self
            .rollback_path
            .get(state.index())
            .copied()
            .unwrap_or(false);
        only_after || self.rolled_back_in_this_attempt(events)
    }

    /// Whether the run entered the rollback state and has not been back to `initial` since.
    fn rolled_back_in_this_attempt(&self, events: &[Event]) -> bool {
        let Some(rollback) = self.rollback else {
            return false;
        };
        let (rollback, initial) = (&self.state(rollback).name, &self.state(self.initial).name);
        let mut rolled_back = false;
        for e in events {
            let entered = match &e.kind {
                EventKind::RunStarted { state, .. } => state,
                EventKind::Transitioned { to, .. } => to,
                _ => continue,
            };
            if entered == rollback {
                rolled_back = true;
            } else if entered == initial {
                rolled_back = false;
            }
        }
        rolled_back
    }

    /// The state with this name.
    pub fn state_id(&self, name: &str) -> Option<NodeIndex> {
        self.state_index.get(name).copied()
    }

    /// The state at `id`.
    pub fn state(&self, id: NodeIndex) -> &State {
        &self.graph[id]
    }

    /// The state with this name, with its id.
    pub fn state_by_name(&self, name: &str) -> Option<(NodeIndex, &State)> {
        self.state_id(name).map(|id| (id, &self.graph[id]))
    }

    /// All states, in file order.
    pub fn states(&self) -> impl Iterator<Item = (NodeIndex, &State)> {
        self.graph.node_indices().map(move |i| (i, &self.graph[i]))
    }

    /// Transitions leaving `from`, in file order.
    pub fn outgoing(&self, from: NodeIndex) -> Vec<OutgoingTransition<'_>> {
        self.outgoing_iter(from).collect()
    }

    /// Transitions leaving `from`, in file order, without allocating.
    pub fn outgoing_iter(
        &self,
        from: NodeIndex,
    ) -> impl Iterator<Item = OutgoingTransition<'_>> + '_ {
        let ids = self
            .outgoing
            .get(from.index())
            .map_or(&[][..], Vec::as_slice);
        ids.iter().filter_map(move |&id| {
            let (_, to) = self.graph.edge_endpoints(id)?;
            Some(OutgoingTransition {
                id,
                to,
                transition: &self.graph[id],
            })
        })
    }

    /// The source and target of a transition.
    pub fn endpoints(&self, id: EdgeIndex) -> Option<(NodeIndex, NodeIndex)> {
        self.graph.edge_endpoints(id)
    }

    /// Whether a var is secret (unknown names are not).
    pub fn is_secret(&self, name: &str) -> bool {
        self.vars.get(name).is_some_and(|v| v.secret)
    }

    /// The state incidents in `state` lead to, for a run whose history is `events`: its own
    /// `on_failure`, else the workflow's `rollback` unless the run is already on its rollback
    /// path ([`Workflow::on_rollback_path`]; going back to the rollback state would run its
    /// actions a second time: revert the revert).
    pub fn failure_target(&self, state: NodeIndex, events: &[Event]) -> Option<NodeIndex> {
        self.graph[state].on_failure.or(self
            .rollback
            .filter(|_| !self.on_rollback_path(state, events)))
    }
}

/// A transition seen from its source state.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingTransition<'a> {
    /// The edge.
    pub id: EdgeIndex,
    /// Target state.
    pub to: NodeIndex,
    /// The transition.
    pub transition: &'a Transition,
}
