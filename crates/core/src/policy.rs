//! Policies: rules every path of a workflow must obey, proved over its graph before anything
//! runs (docs/policies.md).
//!
//! A policy file is read like a workflow ([`read`]: ron, then the span tree to place each
//! finding) and checked against a validated [`Workflow`] ([`check`]). A rule naming a state the
//! workflow does not have is an `unknown-state` error at its place in the policy; a broken rule
//! is an error at the offending state or transition in the workflow, with a counterexample:
//! the states of a path from the initial state that breaks it.
//!
//! The paths considered are the moves a run can make on its own ([`crate::moves`]). Every rule
//! is a walk of the graph, linear in its size.

pub mod spec;

use std::ops::Range;
use std::time::Duration;

use petgraph::graph::NodeIndex;

use crate::diagnostic::{Code, Diagnostic};
use crate::duration::{format_duration, parse_duration};
use crate::model::{Check, Guard, Workflow};
use crate::moves::{Move, Moves};
use crate::place::Place;
use crate::spec::span_tree::Step::{Field, Index};
use crate::validate::suggest::Names;
pub use spec::{GuardPattern, RuleKind, Scope};

/// A policy file that read without errors.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file as named on the command line (diagnostics about a rule point into it).
    pub file: String,
    /// Its text.
    pub text: String,
    /// The policy's name.
    pub name: String,
    /// Its rules, in file order.
    pub rules: Vec<Rule>,
}

/// One rule of a [`Policy`].
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name.
    pub name: String,
    /// What it says.
    pub kind: RuleKind,
    /// For `DeadlineAtMost`: `max`, parsed.
    max: Option<Duration>,
}

/// The result of reading a policy file: the policy when it has no error, and every finding.
#[derive(Debug)]
pub struct Read {
    /// The policy, if no error was found.
    pub policy: Option<Policy>,
    /// Every finding, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads and checks a policy file on its own: its syntax, field names and rule kinds (an
/// unknown one is `unknown-variant` at its place), durations, and rule names written twice.
/// `file` only labels diagnostics.
pub fn read(file: &str, text: &str) -> Read {
    let place = Place::new(file, text);
    let spec = match crate::spec::ron_options().from_str::<spec::PolicySpec>(text) {
        Ok(spec) => spec,
        Err(err) => {
            let d = crate::validate::ron_error::diagnostic(file, text, place.lines(), &err);
            return Read {
                policy: None,
                diagnostics: vec![d],
            };
        }
    };
    let mut diagnostics = Vec::new();
    let mut rules = Vec::with_capacity(spec.rules.len());
    let mut seen = std::collections::HashMap::new();
    for (i, r) in spec.rules.iter().enumerate() {
        let at = |field: &'static str| [Field("rules"), Index(i), Field(field)];
        if let Some(first) = seen.insert(r.name.as_str(), i) {
            let mut d = place.diagnostic(
                Code::DuplicateKey,
                place.span(&at("name")),
                format!(
                    "rule `{}` is defined twice in policy `{}`",
                    r.name, spec.name
                ),
            );
            d.related.push((
                place.span(&[Field("rules"), Index(first), Field("name")]),
                "first defined here".into(),
            ));
            diagnostics.push(d);
        }
        let mut max = None;
        if let RuleKind::DeadlineAtMost { max: text, .. } = &r.rule {
            let path = [Field("rules"), Index(i), Field("rule"), Field("max")];
            match parse_duration(text) {
                Ok(d) if !d.is_zero() => max = Some(d),
                Ok(_) => diagnostics.push(place.diagnostic(
                    Code::BadDuration,
                    place.span(&path),
                    "a deadline of at most zero allows no deadline at all".into(),
                )),
                Err(e) => diagnostics.push(place.diagnostic(
                    Code::BadDuration,
                    place.span(&path),
                    e.to_string(),
                )),
            }
        }
        rules.push(Rule {
            name: r.name.clone(),
            kind: r.rule.clone(),
            max,
        });
    }
    diagnostics.sort_by_key(|d| (d.line, d.column));
    let policy = diagnostics.is_empty().then(|| Policy {
        file: file.to_owned(),
        text: text.to_owned(),
        name: spec.name,
        rules,
    });
    Read {
        policy,
        diagnostics,
    }
}

/// Whether a guard is one `pattern` asks for.
pub fn guard_matches(pattern: &GuardPattern, guard: &Guard) -> bool {
    let named = |name: &Option<String>| name.as_deref().is_none_or(|p| glob(p, &guard.name));
    match (pattern, &guard.check) {
        (
            GuardPattern::Approval {
                name,
                not_by_initiator,
                min,
            },
            Check::Approval(a),
        ) => {
            named(name)
                && (!*not_by_initiator || a.not_by_initiator)
                && min.is_none_or(|m| a.min >= m)
        }
        (GuardPattern::Command { name, program }, Check::Command(c)) => {
            named(name)
                && program
                    .as_deref()
                    .is_none_or(|p| c.run.first().is_some_and(|prog| glob(p, prog.source())))
        }
        (GuardPattern::Http { name }, Check::Http(_))
        | (GuardPattern::Json { name }, Check::Json(_))
        | (GuardPattern::Wait { name }, Check::Wait(_))
        | (GuardPattern::Window { name }, Check::Window(_))
        | (GuardPattern::Watch { name }, Check::Watch(_)) => named(name),
        _ => false,
    }
}

/// How a guard pattern reads after "no": `Approval guard with not_by_initiator: true`.
fn describe(pattern: &GuardPattern) -> String {
    let mut parts = Vec::new();
    let (kind, name) = match pattern {
        GuardPattern::Approval {
            name,
            not_by_initiator,
            min,
        } => {
            if *not_by_initiator {
                parts.push("not_by_initiator: true".to_owned());
            }
            if let Some(m) = min {
                parts.push(format!("min of at least {m}"));
            }
            ("Approval", name)
        }
        GuardPattern::Command { name, program } => {
            if let Some(p) = program {
                parts.push(format!("a program matching `{p}`"));
            }
            ("Command", name)
        }
        GuardPattern::Http { name } => ("Http", name),
        GuardPattern::Json { name } => ("Json", name),
        GuardPattern::Wait { name } => ("Wait", name),
        GuardPattern::Window { name } => ("Window", name),
        GuardPattern::Watch { name } => ("Watch", name),
    };
    if let Some(n) = name {
        parts.insert(0, format!("a name matching `{n}`"));
    }
    if parts.is_empty() {
        format!("{kind} guard")
    } else {
        format!("{kind} guard with {}", parts.join(" and "))
    }
}

/// `wanted` with its indefinite article: "an Approval guard", "a Window guard".
fn article(wanted: &str) -> String {
    let vowel = wanted.starts_with(['A', 'E', 'I', 'O', 'U']);
    format!("{} {wanted}", if vowel { "an" } else { "a" })
}

/// Whether `name` matches `pattern`, where `*` stands for any characters and `?` for one.
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the name position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Checks `workflow` (the file `workflow_file` with text `workflow_text`) against `policy`:
/// an `unknown-state` error in the policy for each state a rule names that the workflow does
/// not have, and an error in the workflow for each broken rule, with its counterexample.
pub fn check(
    policy: &Policy,
    workflow: &Workflow,
    workflow_file: &str,
    workflow_text: &str,
) -> Vec<Diagnostic> {
    let mut checking = Checking {
        policy,
        w: workflow,
        moves: Moves::new(workflow),
        wf: Place::new(workflow_file, workflow_text),
        pol: Place::new(&policy.file, &policy.text),
        names: None,
        from_initial: std::cell::OnceCell::new(),
        out: Vec::new(),
    };
    for (i, rule) in policy.rules.iter().enumerate() {
        checking.rule(i, rule);
    }
    checking.out
}

/// One workflow being checked against one policy.
struct Checking<'a> {
    policy: &'a Policy,
    w: &'a Workflow,
    moves: Moves,
    wf: Place<'a>,
    pol: Place<'a>,
    names: Option<Names>,
    /// The shortest-path tree from the initial state, for counterexamples, built on first use.
    from_initial: std::cell::OnceCell<Vec<Option<NodeIndex>>>,
    out: Vec<Diagnostic>,
}

/// Violations of one rule listed, each with its counterexample, before the rest are counted.
const SHOWN: usize = 20;

impl Checking<'_> {
    /// The state a rule names at `field` of its `rule`, or an `unknown-state` error there.
    fn state(&mut self, i: usize, field: &'static str, name: &str) -> Option<NodeIndex> {
        if let Some(id) = self.w.state_id(name) {
            return Some(id);
        }
        let span = self
            .pol
            .span(&[Field("rules"), Index(i), Field("rule"), Field(field)]);
        let names = self
            .names
            .get_or_insert_with(|| Names::new(self.w.states().map(|(_, s)| &s.name)));
        let help = match names.closest(name) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("states are: {}", names.list()),
        };
        let mut d = self.pol.diagnostic(
            Code::UnknownState,
            span,
            format!(
                "rule `{}` names state `{name}`, which is not a state of workflow `{}` ({})",
                self.policy.rules[i].name, self.w.name, self.wf.file
            ),
        );
        d.help = Some(help);
        self.out.push(d);
        None
    }

    fn names(&self, path: &[NodeIndex]) -> Vec<String> {
        path.iter().map(|&n| self.w.state(n).name.clone()).collect()
    }

    /// A violation of rule `rule` at `span` of the workflow, with `path` as its counterexample.
    fn violation(
        &mut self,
        code: Code,
        rule: &Rule,
        span: Range<usize>,
        message: String,
        path: &[NodeIndex],
        help: String,
    ) {
        let shown = self.names(path).join(" -> ");
        let mut d = self.wf.diagnostic(
            code,
            span,
            format!(
                "{message} (policy `{}`, rule `{}`)",
                self.policy.name, rule.name
            ),
        );
        d.help = Some(if path.is_empty() {
            help
        } else {
            format!("counterexample: {shown}; {help}")
        });
        d.counterexample = self.names(path);
        self.out.push(d);
    }

    fn state_span(&self, state: NodeIndex) -> Range<usize> {
        self.wf
            .key_span(&[Field("states")], &self.w.state(state).name)
    }

    /// A shortest path from the initial state to `to`, if there is one.
    fn path_to(&self, to: NodeIndex) -> Option<Vec<NodeIndex>> {
        let tree = self
            .from_initial
            .get_or_init(|| self.moves.tree(self.w.initial, |_, _, _| true));
        Moves::path_in(tree, to)
    }

    /// Whether rule `rule` has been reported [`SHOWN`] times already: then the violation is
    /// counted in the last one's message instead (a graph where thousands of states break a
    /// rule gets a bounded answer, in time linear in its size).
    fn enough(&mut self, reported: &mut usize) -> bool {
        *reported += 1;
        if *reported <= SHOWN {
            return false;
        }
        if let Some(last) = self.out.last_mut() {
            let more = *reported - SHOWN;
            let note = format!(" [and {more} more like it, not listed]");
            match last.message.rfind(" [and ") {
                Some(at) => last.message.replace_range(at.., &note),
                None => last.message.push_str(&note),
            }
        }
        true
    }

    fn rule(&mut self, i: usize, rule: &Rule) {
        match &rule.kind {
            RuleKind::PassesThrough { state, through } => {
                let (Some(x), Some(y)) = (
                    self.state(i, "state", state),
                    self.state(i, "through", through),
                ) else {
                    return;
                };
                if x == y {
                    return;
                }
                let path = self
                    .moves
                    .path(self.w.initial, |_, m, _| m != y, |n| n == x);
                if let Some(path) = path {
                    self.violation(
                        Code::PolicyPassesThrough,
                        rule,
                        self.state_span(x),
                        format!("a run can reach `{state}` without passing through `{through}`"),
                        &path,
                        format!("make every way into `{state}` come after `{through}`"),
                    );
                }
            }
            RuleKind::GuardedBy { state, guard, on } => {
                let Some(x) = self.state(i, "state", state) else {
                    return;
                };
                self.guarded_by(rule, x, guard, *on);
            }
            RuleKind::CanReach { from, state } => {
                let Some(f) = self.state(i, "from", from) else {
                    return;
                };
                let target = match state {
                    Some(s) => self.state(i, "state", s),
                    None => {
                        if self.w.rollback.is_none() {
                            let span = self.wf.key_span(&[], "states");
                            self.violation(
                                Code::PolicyCanReach,
                                rule,
                                span,
                                format!(
                                    "the rule asks that the rollback state can be reached from `{from}` on, but the workflow has no `rollback`"
                                ),
                                &[],
                                "add `rollback: \"<state>\"` to the workflow".into(),
                            );
                        }
                        self.w.rollback
                    }
                };
                let Some(target) = target else { return };
                self.can_reach(rule, f, target);
            }
            RuleKind::FailurePath { from } => {
                let from = match from {
                    Some(f) => match self.state(i, "from", f) {
                        Some(id) => id,
                        None => return,
                    },
                    None => self.w.initial,
                };
                self.failure_path(rule, from);
            }
            RuleKind::DeadlineAtMost { states, .. } => {
                let Some(max) = rule.max else { return };
                // A pattern without `*` or `?` names one state, which must exist, as in
                // every other rule (a typo must not make the rule check nothing).
                if !states.contains(['*', '?']) && self.state(i, "states", states).is_none() {
                    return;
                }
                self.deadlines(rule, states, max);
            }
        }
    }

    fn guarded_by(&mut self, rule: &Rule, x: NodeIndex, pattern: &GuardPattern, on: Scope) {
        let wanted = describe(pattern);
        let x_name = self.w.state(x).name.clone();
        let guarded = |w: &Workflow, how: Move| match how {
            Move::Transition(e) => w.graph[e].guards.iter().any(|g| guard_matches(pattern, g)),
            Move::OnFailure | Move::Fallback => false,
        };
        match on {
            Scope::Path => {
                let w = self.w;
                let path = self
                    .moves
                    .path(w.initial, |_, _, how| !guarded(w, how), |n| n == x);
                if let Some(path) = path {
                    self.violation(
                        Code::PolicyGuardedBy,
                        rule,
                        self.state_span(x),
                        format!("a run can reach `{x_name}` without passing any {wanted}"),
                        &path,
                        format!(
                            "add {} to a transition on every way to `{x_name}`",
                            article(&wanted)
                        ),
                    );
                }
            }
            Scope::Entry => {
                // Every move into `x`, in file order of its source.
                let mut into: Vec<(NodeIndex, Move)> = Vec::new();
                for (n, out) in self.moves.succ.iter().enumerate() {
                    for &(m, how) in out {
                        if m == x && !guarded(self.w, how) {
                            into.push((NodeIndex::new(n), how));
                        }
                    }
                }
                into.sort_by_key(|&(n, how)| match how {
                    Move::Transition(e) => (self.w.graph[e].order, 0),
                    _ => (usize::MAX, n.index()),
                });
                let mut reported = 0;
                // A run starts in the initial state: a way into it that passes no guard.
                if x == self.w.initial {
                    reported += 1;
                    self.violation(
                        Code::PolicyGuardedBy,
                        rule,
                        self.state_span(x),
                        format!(
                            "a run starts in `{x_name}` (the initial state), passing no guard at all, so no {wanted}"
                        ),
                        &[x],
                        format!(
                            "start in another state, with {} on every way into `{x_name}`",
                            article(&wanted)
                        ),
                    );
                }
                for (from, how) in into {
                    if self.enough(&mut reported) {
                        continue;
                    }
                    let from_name = self.w.state(from).name.clone();
                    let mut path = self.path_to(from).unwrap_or_else(|| vec![from]);
                    path.push(x);
                    let (span, what) = match how {
                        Move::Transition(e) => (
                            self.wf.span(&[
                                Field("transitions"),
                                Index(self.w.graph[e].order),
                                Field("from"),
                            ]),
                            format!("transition `{from_name}` -> `{x_name}` has no {wanted}"),
                        ),
                        Move::OnFailure => (
                            self.wf.span(&[
                                Field("states"),
                                Field(&from_name),
                                Field("on_failure"),
                            ]),
                            format!(
                                "state `{from_name}` goes to `{x_name}` on failure, passing no guard at all, so no {wanted}"
                            ),
                        ),
                        Move::Fallback => (
                            self.state_span(from),
                            format!(
                                "an incident in `{from_name}` falls back to `{x_name}` (the workflow's rollback), passing no guard at all, so no {wanted}"
                            ),
                        ),
                    };
                    self.violation(
                        Code::PolicyGuardedBy,
                        rule,
                        span,
                        what,
                        &path,
                        format!("every way into `{x_name}` needs {}", article(&wanted)),
                    );
                }
            }
        }
    }

    fn can_reach(&mut self, rule: &Rule, from: NodeIndex, target: NodeIndex) {
        let after = self.moves.reach(from, Some(target));
        let reaching = self.moves.reaching(target);
        let target_name = self.w.state(target).name.clone();
        let from_name = self.w.state(from).name.clone();
        let onwards = self.moves.tree(from, |_, m, _| m != target);
        let mut reported = 0;
        for (id, state) in self.w.states() {
            let n = id.index();
            if !after[n] || reaching[n] || state.terminal.is_some() {
                continue;
            }
            if self.enough(&mut reported) {
                continue;
            }
            let mut path = self.path_to(from).unwrap_or_else(|| vec![from]);
            let rest = Moves::path_in(&onwards, id).unwrap_or_default();
            path.extend(rest.into_iter().skip(1));
            let name = state.name.clone();
            self.violation(
                Code::PolicyCanReach,
                rule,
                self.state_span(id),
                format!(
                    "from `{name}` (on or after `{from_name}`) a run can never reach `{target_name}`"
                ),
                &path,
                format!("give `{name}` an on_failure or a transition that leads to `{target_name}`"),
            );
        }
    }

    fn failure_path(&mut self, rule: &Rule, from: NodeIndex) {
        let after = self.moves.reach(from, None);
        let w = self.w;
        let mut reported = 0;
        for (id, state) in w.states() {
            if !after[id.index()] || state.terminal.is_some() || state.on_failure.is_some() {
                continue;
            }
            let on_path = w.rollback_path.get(id.index()).copied().unwrap_or(false);
            if w.rollback.is_some() && !on_path {
                continue;
            }
            if self.enough(&mut reported) {
                continue;
            }
            let why = if w.rollback.is_none() {
                "the workflow has no rollback"
            } else {
                "it is on the rollback path, where failures do not go back to the rollback state"
            };
            let path = self.path_to(id).unwrap_or_else(|| vec![id]);
            let name = state.name.clone();
            self.violation(
                Code::PolicyFailurePath,
                rule,
                self.state_span(id),
                format!("state `{name}` has no failure path: no on_failure, and {why}"),
                &path,
                format!("add on_failure: \"<state>\" to `{name}`"),
            );
        }
    }

    fn deadlines(&mut self, rule: &Rule, pattern: &str, max: Duration) {
        let w = self.w;
        let mut reported = 0;
        for (id, state) in w.states() {
            // A run in a terminal state has ended: no deadline of its applies.
            if state.terminal.is_some() || !glob(pattern, &state.name) {
                continue;
            }
            if state.deadline.is_some_and(|d| d <= max) || self.enough(&mut reported) {
                continue;
            }
            let name = state.name.clone();
            let (span, message) = match state.deadline {
                Some(d) if d <= max => continue,
                Some(d) => (
                    self.wf
                        .span(&[Field("states"), Field(&name), Field("deadline")]),
                    format!(
                        "state `{name}` has a deadline of {}, longer than the {} allowed for states matching `{pattern}`",
                        format_duration(d),
                        format_duration(max)
                    ),
                ),
                None => (
                    self.state_span(id),
                    format!(
                        "state `{name}` has no deadline; states matching `{pattern}` need one of at most {}",
                        format_duration(max)
                    ),
                ),
            };
            let path = self.path_to(id).unwrap_or_else(|| vec![id]);
            self.violation(
                Code::PolicyDeadline,
                rule,
                span,
                message,
                &path,
                format!("set deadline: \"{}\" or shorter", format_duration(max)),
            );
        }
    }
}

#[cfg(test)]
mod tests;
