//! Values passed between steps, checked like every other name: each `${steps.NAME.KEY}`
//! names a step that publishes KEY, and that step runs before the use on every path a run
//! can take to it (docs/workflow-format.md, "Values passed between steps").
//!
//! "Every path" is a dominance question on a finer graph than the states: each state is a
//! chain of points, one before each `on_enter` action and one after the last, and each
//! transition is a point of its own between its source's last point and its target's first.
//! An action publishes at a point of its own between the points before and after it, passed
//! when it finished well; a check at its transition's point (a
//! transition's guards run together, so none sees another's values). An incident or a
//! `waygate rollback` can leave a state before any of its actions finished, so failure edges
//! leave from a state's first point; in a terminal state every action runs even when an
//! earlier one failed, so the point after an action is also reached from the point before it. A use in an action is
//! at the point before it; a use in a guard at its source state's last point. The use is
//! sound when the publishing point dominates it (petgraph's `simple_fast`).

use std::collections::VecDeque;
use std::ops::Range;

use petgraph::algo::dominators::simple_fast;
use petgraph::graph::{DiGraph, NodeIndex};

use super::suggest::Names;
use super::{Built, Checker, Step, Step::Field, Step::Index};
use crate::diagnostic::Code;
use crate::model::{State, Transition};
use crate::name_hash::NameMap;
use crate::outputs::{valid_part, variable};
use crate::spec::{ActionSpec, CheckSpec, CommandSpec, Spec};

/// Where a template is written, for the dominance check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Site {
    /// In `on_enter` action `index` of `state`.
    Action {
        /// The state.
        state: String,
        /// The action's index.
        index: usize,
    },
    /// In a guard of transition `transition` (its index in the file).
    Guard {
        /// The transition.
        transition: usize,
    },
    /// In a notification hook: any point of a run may be announced, so no step is sure to
    /// have run; a value not published yet is sent as `(none)`.
    Notify,
}

/// One `${steps.NAME.KEY}` in the file.
#[derive(Debug, Clone)]
pub(super) struct StepUse {
    pub(super) step: String,
    pub(super) key: String,
    /// Where it is written; `None` outside actions and guards.
    pub(super) site: Option<Site>,
    /// The `${..}` in the text.
    pub(super) span: Range<usize>,
}

/// A step that publishes values.
struct Publisher<'s> {
    name: &'s str,
    keys: &'s [String],
    /// The point it publishes at.
    point: NodeIndex,
    /// Where its name is written.
    name_span: Range<usize>,
}

/// The graph of points (module docs), with each state's points and each transition's.
struct Points {
    graph: DiGraph<usize, ()>,
    /// By state node index: the points before each action and after the last.
    states: Vec<Vec<NodeIndex>>,
    /// By state node index: the point each action publishes at, when it finished well.
    actions: Vec<Vec<NodeIndex>>,
    /// By transition index in the file.
    transitions: Vec<Option<NodeIndex>>,
    /// The state each point belongs to (a transition's point: its target's), by point index.
    state_of: Vec<NodeIndex>,
}

impl Points {
    fn new(
        spec: &Spec,
        graph: &DiGraph<State, Transition>,
        index: &NameMap<String, NodeIndex>,
        rollback: Option<NodeIndex>,
    ) -> Points {
        let mut points = Points {
            graph: DiGraph::new(),
            states: Vec::new(),
            actions: Vec::new(),
            transitions: vec![None; spec.transitions.len()],
            state_of: Vec::new(),
        };
        for s in graph.node_indices() {
            let chain: Vec<NodeIndex> = (0..=graph[s].on_enter.len())
                .map(|_| points.add(s))
                .collect();
            let done: Vec<NodeIndex> = (0..graph[s].on_enter.len())
                .map(|_| points.add(s))
                .collect();
            points.states.push(chain);
            points.actions.push(done);
        }
        for s in graph.node_indices() {
            let chain = points.states[s.index()].clone();
            let done = points.actions[s.index()].clone();
            let first = chain[0];
            let terminal = graph[s].terminal.is_some();
            for (j, pair) in chain.windows(2).enumerate() {
                points.graph.add_edge(pair[0], done[j], ());
                points.graph.add_edge(done[j], pair[1], ());
                if terminal {
                    points.graph.add_edge(pair[0], pair[1], ());
                }
            }
            if !terminal {
                for target in graph[s].on_failure.into_iter().chain(rollback) {
                    let to = points.states[target.index()][0];
                    points.graph.add_edge(first, to, ());
                }
            }
        }
        for (i, t) in spec.transitions.iter().enumerate() {
            let (Some(&from), Some(&to)) = (index.get(&t.from), index.get(&t.to)) else {
                continue;
            };
            let point = points.add(to);
            let last = *points.states[from.index()].last().unwrap_or(&point);
            points.graph.add_edge(last, point, ());
            points
                .graph
                .add_edge(point, points.states[to.index()][0], ());
            points.transitions[i] = Some(point);
        }
        points
    }

    fn add(&mut self, state: NodeIndex) -> NodeIndex {
        self.state_of.push(state);
        self.graph.add_node(state.index())
    }

    /// The point a use at `site` is evaluated at.
    fn at(
        &self,
        site: &Site,
        spec: &Spec,
        index: &NameMap<String, NodeIndex>,
    ) -> Option<NodeIndex> {
        match site {
            Site::Action { state, index: i } => {
                let s = index.get(state)?;
                self.states.get(s.index())?.get(*i).copied()
            }
            Site::Guard { transition } => {
                let from = index.get(&spec.transitions.get(*transition)?.from)?;
                self.states.get(from.index())?.last().copied()
            }
            Site::Notify => None,
        }
    }

    /// The states along a shortest path from `start` to `to` that avoids `avoid`.
    fn path_avoiding(
        &self,
        start: NodeIndex,
        to: NodeIndex,
        avoid: NodeIndex,
        graph: &DiGraph<State, Transition>,
    ) -> Option<String> {
        let mut came_from: Vec<Option<NodeIndex>> = vec![None; self.graph.node_count()];
        let mut seen = vec![false; self.graph.node_count()];
        let mut queue = VecDeque::from([start]);
        seen[start.index()] = true;
        while let Some(p) = queue.pop_front() {
            if p == to {
                let mut states = vec![self.state_of[p.index()]];
                let mut at = p;
                while let Some(prev) = came_from[at.index()] {
                    let s = self.state_of[prev.index()];
                    if states.last() != Some(&s) {
                        states.push(s);
                    }
                    at = prev;
                }
                states.reverse();
                let names: Vec<String> = states
                    .iter()
                    .map(|s| format!("`{}`", graph[*s].name))
                    .collect();
                return Some(names.join(" -> "));
            }
            for next in self.graph.neighbors(p) {
                if next != avoid && !seen[next.index()] {
                    seen[next.index()] = true;
                    came_from[next.index()] = Some(p);
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

impl Checker<'_> {
    /// Checks who publishes which values and every use of them (module docs).
    pub(super) fn step_outputs(&mut self, spec: &Spec, built: &Built<'_>) {
        let (graph, index, initial, rollback) =
            (built.graph, built.index, built.initial, built.rollback);
        let publishes = spec.states.values().any(|s| {
            s.on_enter.iter().any(|a| match a {
                ActionSpec::Command(c) => !c.outputs.is_empty(),
                ActionSpec::Http(_) => false,
            })
        }) || spec
            .transitions
            .iter()
            .any(|t| t.guards.iter().any(|g| declares(&g.check)));
        let named_check = spec.transitions.iter().any(|t| {
            t.guards.iter().any(|g| match &g.check {
                CheckSpec::Command(c) => c.name.is_some(),
                CheckSpec::Http(h) => h.name.is_some(),
                _ => false,
            })
        });
        if !publishes && !named_check && self.step_uses.is_empty() {
            return;
        }
        let points = Points::new(spec, graph, index, rollback);
        let publishers = self.publishers(spec, index, &points);

        let uses = std::mem::take(&mut self.step_uses);
        let dominators = initial.map(|i| {
            let start = points.states[i.index()][0];
            (start, simple_fast(&points.graph, start))
        });
        let mut step_names: Option<Names> = None;
        for u in uses {
            let reference = format!("${{{}}}", variable(&u.step, &u.key));
            let Some(p) = publishers.iter().find(|p| p.name == u.step) else {
                let names = step_names.get_or_insert_with(|| {
                    Names::new(
                        publishers
                            .iter()
                            .map(|p| p.name.to_owned())
                            .collect::<Vec<_>>()
                            .iter(),
                    )
                });
                let help = match names.closest(&u.step) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None if publishers.is_empty() => "no step of this workflow publishes values: give a Command action a `name` and `outputs`, or a Command check `outputs`".to_owned(),
                    None => format!("steps that publish values are: {}", names.list()),
                };
                self.report(
                    Code::UnknownOutput,
                    u.span,
                    format!("{reference}: no step named `{}` publishes values", u.step),
                )
                .help = Some(help);
                continue;
            };
            if !p.keys.contains(&u.key) {
                let mut keys = Names::new(p.keys.iter());
                let help = match keys.closest(&u.key) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => format!("`{}` publishes: {}", p.name, keys.list()),
                };
                let name_span = p.name_span.clone();
                let d = self.report(
                    Code::UnknownOutput,
                    u.span,
                    format!(
                        "{reference}: step `{}` does not publish `{}`",
                        u.step, u.key
                    ),
                );
                d.help = Some(help);
                d.related.push((name_span, "the step".into()));
                continue;
            }
            let Some(site) = &u.site else {
                self.report(
                    Code::UnknownOutput,
                    u.span,
                    format!("{reference}: published values can be used in actions and guards only"),
                );
                continue;
            };
            if *site == Site::Notify {
                continue;
            }
            let (Some(at), Some((start, dominators))) = (points.at(site, spec, index), &dominators)
            else {
                continue;
            };
            let dominated = dominators
                .dominators(at)
                .is_some_and(|mut d| d.any(|n| n == p.point));
            // An unreachable use is reported as an unreachable state.
            if dominated || dominators.dominators(at).is_none() {
                continue;
            }
            let path = points
                .path_avoiding(*start, at, p.point, graph)
                .unwrap_or_else(|| "a path".to_owned());
            let name_span = p.name_span.clone();
            let where_ = match site {
                Site::Action { state, index } => format!("action {} of `{state}`", index + 1),
                Site::Guard { transition } => {
                    let t = &spec.transitions[*transition];
                    format!("a guard of `{}` -> `{}`", t.from, t.to)
                }
                Site::Notify => continue,
            };
            let d = self.report(
                Code::UnpublishedOutput,
                u.span,
                format!(
                    "{reference} may have no value: a run can reach {where_} by {path} without running `{}`",
                    p.name
                ),
            );
            d.related.push((name_span, "published here".into()));
            d.help = Some(format!(
                "use it only where `{}` has run on every path there (after it in the same state, or in a state every path to which passes through it)",
                p.name
            ));
        }
    }

    /// Every step that publishes values, checking names, keys and where `name` and `outputs`
    /// may be written.
    fn publishers<'s>(
        &mut self,
        spec: &'s Spec,
        index: &NameMap<String, NodeIndex>,
        points: &Points,
    ) -> Vec<Publisher<'s>> {
        let mut out: Vec<Publisher<'s>> = Vec::new();
        for (state, s) in &spec.states {
            let Some(id) = index.get(state) else { continue };
            for (i, action) in s.on_enter.iter().enumerate() {
                let ActionSpec::Command(c) = action else {
                    continue;
                };
                let path = [Field("states"), Field(state), Field("on_enter"), Index(i)];
                if c.outputs.is_empty() {
                    continue;
                }
                let Some(name) = &c.name else {
                    let span = self.span(&[path[0], path[1], path[2], path[3], Field("outputs")]);
                    self.report(
                        Code::BadValue,
                        span,
                        "an action that publishes values needs a `name`: later steps use them as ${steps.NAME.KEY}".into(),
                    )
                    .help = Some("add a name, e.g. Command(name: \"build\", run: [..], outputs: [..])".into());
                    continue;
                };
                // The model leaves out an action it could not read (reported on its own), so
                // the file's action index need not have a point.
                let Some(&point) = points.actions.get(id.index()).and_then(|a| a.get(i)) else {
                    continue;
                };
                let name_span = self.span(&[path[0], path[1], path[2], path[3], Field("name")]);
                let keys_path = [path[0], path[1], path[2], path[3], Field("outputs")];
                self.publisher_parts(name, &c.outputs, name_span.clone(), &keys_path);
                let secret_path = [path[0], path[1], path[2], path[3], Field("secret_outputs")];
                self.secret_outputs(c, &secret_path);
                out.push(Publisher {
                    name,
                    keys: &c.outputs,
                    point,
                    name_span,
                });
            }
        }
        for (t, transition) in spec.transitions.iter().enumerate() {
            for (g, guard) in transition.guards.iter().enumerate() {
                let path = [
                    Field("transitions"),
                    Index(t),
                    Field("guards"),
                    Index(g),
                    Field("check"),
                ];
                self.check_names(&guard.check, &path, false);
                if !declares(&guard.check) {
                    continue;
                }
                let CheckSpec::Command(c) = &guard.check else {
                    continue;
                };
                let name_span = self.span(&[path[0], path[1], path[2], path[3], Field("name")]);
                let keys_path = [
                    path[0],
                    path[1],
                    path[2],
                    path[3],
                    path[4],
                    Field("outputs"),
                ];
                self.publisher_parts(&guard.name, &c.outputs, name_span.clone(), &keys_path);
                let mut secret_path = keys_path.to_vec();
                secret_path.pop();
                secret_path.push(Field("secret_outputs"));
                self.secret_outputs(c, &secret_path);
                if let Some(point) = points.transitions[t] {
                    out.push(Publisher {
                        name: &guard.name,
                        keys: &c.outputs,
                        point,
                        name_span,
                    });
                }
            }
        }
        // A name that publishes is unique in the workflow.
        for i in 0..out.len() {
            if let Some(first) = out[..i].iter().find(|p| p.name == out[i].name) {
                let (span, first_span) = (out[i].name_span.clone(), first.name_span.clone());
                let d = self.report(
                    Code::DuplicateStep,
                    span,
                    format!(
                        "`{}` already names a step that publishes values: `${{steps.{}.KEY}}` would not say which",
                        out[i].name, out[i].name
                    ),
                );
                d.related.push((first_span, "first defined here".into()));
                d.help = Some("give each step that publishes values its own name".into());
            }
        }
        out
    }

    /// A step's name and keys can be written in `${steps.NAME.KEY}`; no key twice.
    fn publisher_parts(
        &mut self,
        name: &str,
        keys: &[String],
        name_span: Range<usize>,
        keys_path: &[Step],
    ) {
        if !valid_part(name) {
            self.report(
                Code::InvalidName,
                name_span,
                format!("step name {name:?} cannot be written in ${{steps.NAME.KEY}}: a step that publishes values is named with letters, digits, `-` and `_`"),
            );
        }
        for (i, key) in keys.iter().enumerate() {
            let mut p = keys_path.to_vec();
            p.push(Index(i));
            if !valid_part(key) {
                let span = self.span(&p);
                self.report(
                    Code::InvalidName,
                    span,
                    format!("output key {key:?} must be letters, digits, `-` and `_`"),
                );
            } else if keys[..i].contains(key) {
                let span = self.span(&p);
                self.report(
                    Code::DuplicateKey,
                    span,
                    format!("output `{key}` is declared twice"),
                );
            }
        }
    }

    /// `secret_outputs` names declared outputs.
    fn secret_outputs(&mut self, c: &CommandSpec, path: &[Step]) {
        for (i, key) in c.secret_outputs.iter().enumerate() {
            if !c.outputs.contains(key) {
                let mut p = path.to_vec();
                p.push(Index(i));
                let span = self.span(&p);
                self.report(
                    Code::BadValue,
                    span,
                    format!("secret output `{key}` is not among `outputs`"),
                )
                .help = Some(format!(
                    "declare it: outputs: [\"{key}\"], secret_outputs: [\"{key}\"]"
                ));
            }
        }
    }

    /// A notification hook publishes nothing: no step runs after it to use its values
    /// (`${steps.NAME.KEY}` names an `on_enter` action or a guard), so `outputs` (and
    /// `secret_outputs`) on a hook's `Command` could only fail the hook when unwritten.
    pub(super) fn hook_publishes_nothing(&mut self, c: &CommandSpec, path: &[Step]) {
        for (field, listed) in [
            ("outputs", &c.outputs),
            ("secret_outputs", &c.secret_outputs),
        ] {
            if listed.is_empty() {
                continue;
            }
            let at: Vec<Step> = path.iter().copied().chain([Field(field)]).collect();
            let span = self.span(&at);
            self.report_newer(
                Code::BadValue,
                span,
                format!(
                    "a notification hook publishes nothing: no step can use its values (`{field}`)"
                ),
            )
            .help = Some(format!(
                "remove `{field}`; a hook's command may still write to a file of its own"
            ));
        }
    }

    /// A check is named by its guard, and a watched check publishes nothing.
    fn check_names(&mut self, check: &CheckSpec, path: &[Step], inside_watch: bool) {
        let at = |field: &'static str| -> Vec<Step> {
            path.iter().copied().chain([Field(field)]).collect()
        };
        match check {
            CheckSpec::Command(c) => {
                if c.name.is_some() {
                    let span = self.span(&at("name"));
                    self.report(
                        Code::BadValue,
                        span,
                        "a check is named by its guard: `name` is for actions".into(),
                    )
                    .help = Some(
                        "remove it; later steps use a check's values as ${steps.GUARD.KEY}".into(),
                    );
                }
                if inside_watch && !c.outputs.is_empty() {
                    let span = self.span(&at("outputs"));
                    self.report(
                        Code::BadValue,
                        span,
                        "a watched check publishes nothing: it runs many times".into(),
                    );
                }
            }
            CheckSpec::Http(h) if h.name.is_some() => {
                let span = self.span(&at("name"));
                self.report(
                    Code::BadValue,
                    span,
                    "a check is named by its guard: `name` is for actions".into(),
                );
            }
            CheckSpec::Watch(w) => {
                let inner = at("check");
                self.check_names(&w.check, &inner, true);
            }
            _ => {}
        }
    }
}

/// `steps.NAME.KEY` of every value a step publishes as a secret (`secret_outputs`).
pub(super) fn secret_variables(spec: &Spec) -> Vec<String> {
    let actions = spec
        .states
        .values()
        .flat_map(|s| &s.on_enter)
        .filter_map(|a| match a {
            ActionSpec::Command(c) => Some((c.name.as_deref()?, c)),
            ActionSpec::Http(_) => None,
        });
    let guards = spec
        .transitions
        .iter()
        .flat_map(|t| &t.guards)
        .filter_map(|g| match &g.check {
            CheckSpec::Command(c) => Some((g.name.as_str(), c)),
            _ => None,
        });
    actions
        .chain(guards)
        .flat_map(|(name, c)| c.secret_outputs.iter().map(move |k| variable(name, k)))
        .collect()
}

/// Whether a guard's check declares values (a `Command` with `outputs`).
fn declares(check: &CheckSpec) -> bool {
    matches!(check, CheckSpec::Command(c) if !c.outputs.is_empty())
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::Code;
    use crate::validate::validate;

    /// A workflow whose states and transitions are `body`, with `build` publishing
    /// `build_id` from its first action and the check `pick` on `build` -> `deploy`
    /// publishing `colour`.
    fn flow(states: &str, transitions: &str) -> String {
        format!(
            r#"Workflow(
    name: "t",
    initial: "build",
    rollback: "undo",
    states: {{
        "build": (on_enter: [Command(name: "build", run: ["b"], outputs: ["build_id"]), Command(run: ["x", "${{steps.build.build_id}}"])]),
        {states}
        "undo": (on_enter: [Command(run: ["u"])], on_failure: "failed"),
        "done": (terminal: Success),
        "failed": (terminal: Failure),
    }},
    transitions: [
        (from: "build", to: "deploy", guards: [(name: "pick", check: Command(run: ["p"], outputs: ["colour"]))]),
        {transitions}
        (from: "undo", to: "failed"),
    ],
)"#
        )
    }

    fn codes(text: &str) -> Vec<(Code, usize, usize)> {
        validate("t.ron", text)
            .diagnostics
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| (d.code, d.line, d.column))
            .collect()
    }

    #[test]
    fn uses_after_their_step_on_every_path_are_accepted() {
        // After the action in its state; in a state every path to which passes through the
        // publishing action and the check; in a loop back to a state the values dominate; in
        // a guard of a later transition.
        let text = flow(
            r#""deploy": (on_enter: [Command(run: ["d", "${steps.build.build_id}", "${steps.pick.colour}"])]),
        "verify": (on_enter: [Command(run: ["v", "${steps.pick.colour}"])]),"#,
            r#"(from: "deploy", to: "verify", guards: [(name: "g", check: Command(run: ["c", "${steps.build.build_id}"]))]),
        (from: "verify", to: "deploy"),
        (from: "verify", to: "done"),"#,
        );
        assert_eq!(codes(&text), vec![]);
        let w = validate("t.ron", &text).workflow.expect("valid");
        let (_, build) = w.state_by_name("build").expect("build");
        assert_eq!(build.action_names, vec![Some("build".to_owned()), None]);
    }

    #[test]
    fn a_use_on_the_rollback_path_is_refused_with_the_path() {
        // `undo` is reached by `waygate rollback` from `build` before anything was published.
        let text = flow(
            r#""deploy": (on_enter: [Command(run: ["d"])]),"#,
            r#"(from: "deploy", to: "done"),"#,
        )
        .replace(
            r#"Command(run: ["u"])"#,
            r#"Command(run: ["u", "${steps.build.build_id}"])"#,
        );
        let v = validate("t.ron", &text);
        let d = v
            .diagnostics
            .iter()
            .find(|d| d.code == Code::UnpublishedOutput)
            .expect("refused");
        assert_eq!((d.line, d.column), (8, 49), "{d:?}");
        assert!(
            d.message
                .contains("by `build` -> `undo` without running `build`"),
            "{}",
            d.message
        );
    }

    #[test]
    fn a_terminal_states_actions_do_not_wait_for_each_other() {
        // Every action of a terminal state runs even when an earlier one failed.
        let text = flow(
            r#""deploy": (on_enter: [Command(run: ["d"])]),
        "end": (terminal: Success, on_enter: [Command(name: "a", run: ["a"], outputs: ["k"]), Command(run: ["b", "${steps.a.k}"])]),"#,
            r#"(from: "deploy", to: "end"),"#,
        );
        assert_eq!(codes(&text), vec![(Code::UnpublishedOutput, 8, 115)]);
    }

    #[test]
    fn names_and_keys_that_cannot_be_written_are_refused() {
        let text = flow(
            r#""deploy": (on_enter: [Command(name: "a.b", run: ["d"], outputs: ["k", "k", "x y"])]),"#,
            r#"(from: "deploy", to: "done", guards: [(name: "n", check: Command(name: "n", run: ["c"])), (name: "w", check: Watch(check: Command(run: ["c"], outputs: ["k"]), duration: "1m", interval: "10s"))]),"#,
        );
        assert_eq!(
            codes(&text),
            vec![
                (Code::InvalidName, 7, 45),
                (Code::DuplicateKey, 7, 79),
                (Code::InvalidName, 7, 84),
                (Code::BadValue, 14, 80),
                (Code::BadValue, 14, 160),
            ]
        );
        let unnamed = flow(
            r#""deploy": (on_enter: [Command(run: ["d"], outputs: ["k"])]),"#,
            r#"(from: "deploy", to: "done"),"#,
        );
        assert_eq!(codes(&unnamed), vec![(Code::BadValue, 7, 60)]);
    }

    #[test]
    fn a_secret_output_is_declared_and_kept_out_of_argv() {
        let text = flow(
            r#""deploy": (on_enter: [Command(name: "login", run: ["l"], outputs: ["tok"], secret_outputs: ["tok", "nope"]), Command(run: ["c", "${steps.login.tok}"])]),"#,
            r#"(from: "deploy", to: "done"),"#,
        );
        let found: Vec<(Code, usize, usize)> = validate("t.ron", &text)
            .diagnostics
            .iter()
            .map(|d| (d.code, d.line, d.column))
            .collect();
        assert_eq!(
            found,
            vec![(Code::BadValue, 7, 108), (Code::SecretInArgv, 7, 138)]
        );
    }

    #[test]
    fn a_notification_hook_publishes_nothing() {
        // No step can use a hook's values (`${steps.hook.k}` is unknown), so declaring them
        // would only fail the hook when the command does not write them.
        let text = flow(
            r#""deploy": (on_enter: [Command(run: ["d"])]),"#,
            r#"(from: "deploy", to: "done"),"#,
        )
        .replace(
            "initial: \"build\",",
            "initial: \"build\",\n    notify: [(on: [RunEnded], action: Command(name: \"hook\", run: [\"n\"], outputs: [\"k\"], secret_outputs: [\"k\"]))],",
        );
        assert_eq!(
            codes(&text),
            vec![(Code::BadValue, 4, 82), (Code::BadValue, 4, 105)]
        );
        let pinned = crate::validate::pinned("t.ron", &text);
        assert!(pinned.workflow.is_some(), "{:?}", pinned.diagnostics);
    }

    #[test]
    fn a_malformed_reference_is_a_bad_template() {
        let text = flow(
            r#""deploy": (on_enter: [Command(run: ["d", "${steps.build}"])]),"#,
            r#"(from: "deploy", to: "done"),"#,
        );
        assert_eq!(codes(&text), vec![(Code::BadTemplate, 7, 51)]);
    }
}
