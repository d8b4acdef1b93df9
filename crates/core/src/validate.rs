//! Static validation: a workflow file's text in, a [`Workflow`] or diagnostics out.
//!
//! This is where the seed's outage (an undefined variable reaching production) is caught:
//! every `${name}` is checked against the declared vars, every state name resolves, every
//! duration, time zone and JSON pointer parses, and the graph is checked for dead ends. All
//! problems are reported, not just the first, each at the position of the offending text (a
//! syntax error is the exception: the parser cannot go on past it).
//!
//! It costs time in proportion to the file however many problems there are (every walk and
//! message is bounded; docs/performance.md), and a file over [`MAX_WORKFLOW_BYTES`] is refused
//! before it is parsed. Submodules own one concern each: `names` the name rule, `suggest`
//! did-you-mean, `duplicates` keys and fields written twice, `ron_error` the parser's errors in
//! the file's terms, `shell` the shell-interpolation lint.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::time::Duration;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::duration::parse_duration;
use crate::locate::{self, LineIndex, Node};
use crate::model::{
    Action, ApprovalCheck, Check, CommandCheck, Environment, Guard, HttpCheck, JsonCheck, Retry,
    State, Transition, Var, WatchCheck, WindowCheck, Workflow, DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_HTTP_TIMEOUT,
};
use crate::name_hash::{NameMap, NameSet};
use crate::spec::{
    ActionSpec, CheckSpec, CommandSpec, HttpSpec, Spec, StateSpec, TransitionSpec, WindowSpec,
};
use crate::template::{Template, BUILTINS};
use suggest::Names;

mod duplicates;
mod names;
mod ron_error;
mod shell;
mod suggest;

/// The result of validating one file: the model when there are no errors, and every
/// diagnostic (errors and warnings) in source order.
#[derive(Debug)]
pub struct Validated {
    /// The workflow, if no error was found.
    pub workflow: Option<Workflow>,
    /// All findings, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Validated {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// The largest workflow file accepted, in bytes: 4 MiB, room for tens of thousands of states
/// (docs/workflow-format.md, "Limits"). Anything larger is refused before it is parsed, so a
/// file that is not a workflow at all (a log, a dump) is refused at once instead of being
/// read for minutes.
pub const MAX_WORKFLOW_BYTES: usize = 4 * 1024 * 1024;

/// The `too-large` finding for a file of `size` bytes (`None`: more than the limit, size
/// unknown, as for a pipe).
pub fn too_large(file: &str, size: Option<u64>) -> Diagnostic {
    let size = match size {
        Some(n) => format!("{n} bytes ({:.1} MiB)", n as f64 / (1024.0 * 1024.0)),
        None => format!("more than {MAX_WORKFLOW_BYTES} bytes long"),
    };
    let mut d = Diagnostic::whole_file(
        file,
        Code::TooLarge,
        format!(
            "is {size}; a workflow file may be at most {} bytes (4 MiB)",
            MAX_WORKFLOW_BYTES
        ),
    );
    d.help = Some(
        "is this the workflow file you meant? Split a workflow this large into several".into(),
    );
    d
}

/// Reads a workflow file as UTF-8 text, never more than [`MAX_WORKFLOW_BYTES`] of it: a
/// larger file (or an endless one such as `/dev/zero`) is refused with `too-large`, and one
/// that cannot be read with `unreadable`.
pub fn read_file(path: &std::path::Path) -> Result<String, Box<Diagnostic>> {
    use std::io::Read;
    let file = path.display().to_string();
    let unreadable = |e: &dyn std::fmt::Display| {
        Box::new(Diagnostic::whole_file(
            &file,
            Code::Unreadable,
            format!("cannot be read: {e}"),
        ))
    };
    let handle = std::fs::File::open(path).map_err(|e| unreadable(&e))?;
    let meta = handle.metadata().map_err(|e| unreadable(&e))?;
    if meta.is_dir() {
        return Err(unreadable(&"it is a directory"));
    }
    let limit = MAX_WORKFLOW_BYTES as u64;
    if meta.is_file() && meta.len() > limit {
        return Err(Box::new(too_large(&file, Some(meta.len()))));
    }
    let mut bytes = Vec::new();
    handle
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(&e))?;
    if bytes.len() as u64 > limit {
        return Err(Box::new(too_large(
            &file,
            meta.is_file().then_some(meta.len()),
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        unreadable(&format_args!(
            "it is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Parses and validates a workflow. `file` is only used to label diagnostics.
pub fn validate(file: &str, text: &str) -> Validated {
    if text.len() > MAX_WORKFLOW_BYTES {
        return Validated {
            workflow: None,
            diagnostics: vec![too_large(file, Some(text.len() as u64))],
        };
    }
    let mut cx = Cx::new(file, text);
    // A plain file is read once, by the fast reader, and the span tree is built only if there
    // is something to report. Anything else (and every syntax or type error) is read by ron,
    // which words the diagnostic, and checked for duplicate keys on the span tree.
    let parsed = match crate::fast_spec::spec(text) {
        Some(spec) => Ok(spec),
        None => {
            cx.check_duplicates = true;
            crate::spec::ron_options().from_str::<Spec>(text)
        }
    };
    let workflow = match parsed {
        Ok(spec) => cx.workflow(&spec),
        Err(err) => {
            // ron stops at the first field written twice; the span tree finds them all.
            let all_found =
                matches!(err.code, ron::Error::DuplicateStructField { .. }) && cx.duplicates();
            if !all_found {
                cx.ron_error(&err);
            }
            None
        }
    };
    let mut diagnostics = cx.diags;
    diagnostics.sort_by_key(|d| (d.line, d.column));
    let workflow = workflow.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    Validated {
        workflow,
        diagnostics,
    }
}

/// A step of a path into the span tree.
#[derive(Clone, Copy)]
enum K<'a> {
    F(&'a str),
    I(usize),
}
use K::{F, I};

struct Cx<'a> {
    file: &'a str,
    text: &'a str,
    /// Line starts, indexed on first use (only diagnostics need them).
    lines: std::cell::OnceCell<LineIndex>,
    /// The span tree, built on first use: a valid file without findings never needs it.
    tree: std::cell::OnceCell<Option<Node<'a>>>,
    /// Whether keys written twice must be looked for (the fast reader rules them out).
    check_duplicates: bool,
    diags: Vec<Diagnostic>,
    declared: NameSet<String>,
    /// The declared vars with `secret: true`.
    secrets: NameSet<String>,
    used: NameSet<String>,
    /// The string whose `${` positions were last looked up: where its content starts, and the
    /// positions as written when escapes make them differ from the parsed text's.
    braces: std::cell::RefCell<Option<(usize, Option<Vec<usize>>)>>,
    /// State and variable names for suggestions, sorted on first use.
    state_names: Option<Names>,
    var_names: Option<Names>,
}

impl<'a> Cx<'a> {
    fn new(file: &'a str, text: &'a str) -> Self {
        Cx {
            file,
            text,
            lines: std::cell::OnceCell::new(),
            tree: std::cell::OnceCell::new(),
            check_duplicates: false,
            diags: Vec::new(),
            declared: NameSet::default(),
            secrets: NameSet::default(),
            used: NameSet::default(),
            braces: std::cell::RefCell::new(None),
            state_names: None,
            var_names: None,
        }
    }

    // ---- positions -------------------------------------------------------------------

    fn lines(&self) -> &LineIndex {
        self.lines.get_or_init(|| LineIndex::new(self.text))
    }

    fn node(&self, path: &[K]) -> Option<&Node<'a>> {
        let text = self.text;
        let mut node = self.tree.get_or_init(|| locate::parse(text)).as_ref()?;
        for step in path {
            node = match *step {
                F(name) => node.get(name)?,
                I(i) => node.at(i)?,
            };
        }
        Some(node)
    }

    /// The span at `path`, or of its longest prefix that exists.
    fn span(&self, path: &[K]) -> Range<usize> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.node(&path[..n]).map(|node| node.span.clone()))
            .unwrap_or(0..0)
    }

    /// The span of key `key` in the map or struct at `path`.
    fn key_span(&self, path: &[K], key: &str) -> Range<usize> {
        self.node(path)
            .and_then(|n| n.key_span(key))
            .unwrap_or_else(|| self.span(path))
    }

    fn push(&mut self, severity: Severity, code: Code, span: Range<usize>, message: String) {
        let (line, column) = self.lines().position(self.text, span.start);
        self.diags.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            severity,
            code,
            label: code.label().to_owned(),
            message,
            help: None,
            span,
            related: Vec::new(),
        });
    }

    fn error(&mut self, code: Code, span: Range<usize>, message: String) -> &mut Diagnostic {
        self.push(Severity::Error, code, span, message);
        self.diags.last_mut().expect("just pushed")
    }

    fn warn(&mut self, code: Code, span: Range<usize>, message: String) -> &mut Diagnostic {
        self.push(Severity::Warning, code, span, message);
        self.diags.last_mut().expect("just pushed")
    }

    fn ron_error(&mut self, err: &ron::error::SpannedError) {
        let start = self
            .lines()
            .offset(self.text, err.span.start.line, err.span.start.col);
        let end = self
            .lines()
            .offset(self.text, err.span.end.line, err.span.end.col)
            .max(start);
        let worded = crate::validate::ron_error::word(&err.code, self.text, start);
        self.error(worded.code, start..end, worded.message).help = worded.help;
    }

    // ---- the workflow ------------------------------------------------------------------

    fn workflow(&mut self, spec: &Spec) -> Option<Workflow> {
        self.declared = spec.vars.keys().cloned().collect();
        self.secrets = spec
            .vars
            .iter()
            .filter(|(_, v)| v.secret)
            .map(|(name, _)| name.clone())
            .collect();
        if self.check_duplicates {
            self.duplicates();
        }

        let name_ok = !spec.name.is_empty()
            && spec
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            let span = self.span(&[F("name")]);
            self.error(
                Code::InvalidName,
                span,
                format!("workflow name {:?} must match [a-z0-9_-]+", spec.name),
            )
            .help = Some(
                "use lower-case letters, digits, `-` and `_`, e.g. \"production-deploy\"".into(),
            );
        }

        let state_names: Vec<&str> = spec.states.keys().map(String::as_str).collect();
        self.names(
            "state",
            &state_names,
            |name| vec![F("states"), F(name)],
            true,
        );
        let env_names: Vec<&str> = spec.environments.keys().map(String::as_str).collect();
        self.names(
            "environment",
            &env_names,
            |name| vec![F("environments"), F(name)],
            true,
        );

        let mut graph: DiGraph<State, Transition> = DiGraph::new();
        let mut index = NameMap::with_capacity_and_hasher(spec.states.len(), Default::default());
        for name in spec.states.keys() {
            let id = graph.add_node(State {
                name: name.clone(),
                description: None,
                on_enter: Vec::new(),
                on_failure: None,
                deadline: None,
                terminal: None,
            });
            index.insert(name.clone(), id);
        }

        let initial = self.state_ref(&index, &spec.initial, &[F("initial")], "initial state");
        let rollback = spec
            .rollback
            .as_ref()
            .and_then(|r| self.state_ref(&index, r, &[F("rollback")], "rollback state"));

        for (name, state) in &spec.states {
            let filled = self.state(&index, name, state);
            let id = index[name];
            graph[id] = filled;
        }

        let environments = self.environments(spec);
        self.transitions(spec, &index, &mut graph);
        self.graph_checks(spec, &graph, &index, initial, rollback);

        let vars = spec
            .vars
            .iter()
            .map(|(name, v)| {
                let var = Var {
                    default: v.default.clone(),
                    secret: v.secret,
                    from_env: v.from_env.clone(),
                    description: v.description.clone(),
                };
                (name.clone(), var)
            })
            .collect();
        for name in spec.vars.keys() {
            if !self.used.contains(name) {
                let span = self.key_span(&[F("vars")], name);
                self.warn(
                    Code::UnusedVar,
                    span,
                    format!("variable `{name}` is declared but never used"),
                )
                .help = Some("remove it, or use it as ${".to_owned() + name + "}");
            }
        }

        let initial = initial?;
        Some(Workflow {
            name: spec.name.clone(),
            description: spec.description.clone(),
            initial,
            rollback,
            vars,
            environments,
            state_index: index,
            outgoing: crate::model::outgoing_in_file_order(&graph),
            rollback_path: crate::model::rollback_path(&graph, initial, rollback),
            graph,
        })
    }

    /// Keys and fields written twice, anywhere in the file (`duplicates` owns the rule). Only
    /// needed when the fast reader gave up: it accepts no file with a key written twice.
    /// Returns whether any was found.
    fn duplicates(&mut self) -> bool {
        let Some(root) = self.node(&[]) else {
            return false;
        };
        let found = crate::validate::duplicates::find(root, self.text);
        let any = !found.is_empty();
        for d in found {
            self.error(d.code, d.span, d.message)
                .related
                .push((d.first, "first defined here".into()));
        }
        any
    }

    /// The name rule (`names` owns it) for names of one kind: each valid, no two alike.
    /// `path` gives where a name is: a map key (`key`) or a `name:` value.
    fn names<'n>(
        &mut self,
        kind: &str,
        names: &[&'n str],
        path: impl Fn(&'n str) -> Vec<K<'n>>,
        key: bool,
    ) {
        let place = |cx: &Self, name: &'n str| {
            let p = path(name);
            if key {
                let (last, parent) = p.split_last().expect("a path to a key");
                match last {
                    F(k) => cx.key_span(parent, k),
                    I(_) => cx.span(&p),
                }
            } else {
                cx.span(&p)
            }
        };
        for &name in names {
            if let Some(problem) = crate::validate::names::problem(name) {
                let span = place(self, name);
                self.error(
                    Code::InvalidName,
                    span,
                    format!("{kind} name {name:?} {problem}"),
                )
                .help = Some(
                    "a name is not empty, has no white space at its ends and no control or invisible characters".into(),
                );
            }
        }
        for (first, second) in crate::validate::names::lookalikes(names.iter().copied()) {
            let (a, b) = (names[first], names[second]);
            let span = place(self, b);
            let first_span = place(self, a);
            let d = self.error(
                Code::LookalikeName,
                span,
                format!(
                    "{kind} `{b}` looks the same as {kind} `{a}` but is written with other characters ({} against {})",
                    crate::validate::names::spelled(b),
                    crate::validate::names::spelled(a)
                ),
            );
            d.related
                .push((first_span, "looks the same as this".into()));
            d.help = Some(format!(
                "names that differ only by Unicode normalization are one name written two ways: write both as `{a}`, or rename one"
            ));
        }
    }

    fn state_ref(
        &mut self,
        index: &NameMap<String, NodeIndex>,
        name: &str,
        path: &[K],
        what: &str,
    ) -> Option<NodeIndex> {
        if let Some(&id) = index.get(name) {
            return Some(id);
        }
        let span = self.span(path);
        let names = self
            .state_names
            .get_or_insert_with(|| Names::new(index.keys()));
        let help = if let Some(same) = names.written_otherwise(name) {
            format!(
                "state `{same}` looks the same but is written with other characters ({} against {}): write it the same way",
                crate::validate::names::spelled(same),
                crate::validate::names::spelled(name)
            )
        } else {
            match names.closest(name) {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("states are: {}", names.list()),
            }
        };
        self.error(
            Code::UnknownState,
            span,
            format!("{what} `{name}` is not a state of this workflow"),
        )
        .help = Some(help);
        None
    }

    fn state(&mut self, index: &NameMap<String, NodeIndex>, name: &str, spec: &StateSpec) -> State {
        let base = [F("states"), F(name)];
        let on_failure = spec.on_failure.as_ref().and_then(|f| {
            self.state_ref(
                index,
                f,
                &[base[0], base[1], F("on_failure")],
                "on_failure state",
            )
        });
        let deadline = spec.deadline.as_ref().and_then(|d| {
            self.duration(
                d,
                &[base[0], base[1], F("deadline")],
                Some("would send every run to its on_failure the moment it enters the state"),
            )
        });
        let mut on_enter = Vec::new();
        for (i, action) in spec.on_enter.iter().enumerate() {
            let path = [base[0], base[1], F("on_enter"), I(i)];
            let action = match action {
                ActionSpec::Command(c) => self.command(c, &path).map(Action::Command),
                ActionSpec::Http(h) => self.http(h, &path, "POST").map(Action::Http),
            };
            on_enter.extend(action);
        }
        State {
            name: name.to_owned(),
            description: spec.description.clone(),
            on_enter,
            on_failure,
            deadline,
            terminal: spec.terminal,
        }
    }

    fn environments(&mut self, spec: &Spec) -> indexmap::IndexMap<String, Environment> {
        let mut out = indexmap::IndexMap::new();
        for (env, e) in &spec.environments {
            for var in e.vars.keys() {
                if !self.declared.contains(var) {
                    let span = self.key_span(&[F("environments"), F(env), F("vars")], var);
                    let d = self.error(
                        Code::UndeclaredEnvVar,
                        span,
                        format!(
                            "environment `{env}` sets `{var}`, which is not declared in `vars`"
                        ),
                    );
                    d.help = Some(format!("declare it: vars: {{ \"{var}\": () }}"));
                } else {
                    self.used.insert(var.clone());
                }
            }
            out.insert(
                env.clone(),
                Environment {
                    vars: e.vars.clone(),
                    description: e.description.clone(),
                },
            );
        }
        out
    }

    fn transitions(
        &mut self,
        spec: &Spec,
        index: &NameMap<String, NodeIndex>,
        graph: &mut DiGraph<State, Transition>,
    ) {
        let mut seen: NameMap<(&str, &str), usize> =
            NameMap::with_capacity_and_hasher(spec.transitions.len(), Default::default());
        // Approval guards by (state, name): `waygate approve RUN NAME` names a guard out of
        // the run's state by its name alone, and an approval is recorded and counted by it,
        // so two Approval guards of one name out of one state would share every approval.
        let mut approvals: NameMap<(&str, &str), (usize, usize)> = NameMap::default();
        for (i, t) in spec.transitions.iter().enumerate() {
            for (g, guard) in t.guards.iter().enumerate() {
                if !matches!(guard.check, crate::spec::CheckSpec::Approval(_)) {
                    continue;
                }
                match approvals.get(&(t.from.as_str(), guard.name.as_str())) {
                    Some(&(fi, fg)) if fi != i => {
                        let span =
                            self.span(&[F("transitions"), I(i), F("guards"), I(g), F("name")]);
                        let first_span =
                            self.span(&[F("transitions"), I(fi), F("guards"), I(fg), F("name")]);
                        let d = self.error(
                            Code::DuplicateGuard,
                            span,
                            format!(
                                "Approval guard `{}` also guards `{}` -> `{}`: an approval names \
                                 its guard by state and name, so one approval would count for both",
                                guard.name, spec.transitions[fi].from, spec.transitions[fi].to
                            ),
                        );
                        d.related.push((first_span, "first defined here".into()));
                        d.help = Some(format!(
                            "give the Approval guards out of `{}` different names",
                            t.from
                        ));
                    }
                    Some(_) => {}
                    None => {
                        approvals.insert((t.from.as_str(), guard.name.as_str()), (i, g));
                    }
                }
            }
            let from = self.state_ref(
                index,
                &t.from,
                &[F("transitions"), I(i), F("from")],
                "transition source",
            );
            let to = self.state_ref(
                index,
                &t.to,
                &[F("transitions"), I(i), F("to")],
                "transition target",
            );
            if let Some(&first) = seen.get(&(t.from.as_str(), t.to.as_str())) {
                let span = self.span(&[F("transitions"), I(i), F("from")]);
                let first_span = self.span(&[F("transitions"), I(first), F("from")]);
                self.error(
                    Code::DuplicateTransition,
                    span,
                    format!("transition `{}` -> `{}` is defined twice", t.from, t.to),
                )
                .related
                .push((first_span, "first defined here".into()));
            } else {
                seen.insert((t.from.as_str(), t.to.as_str()), i);
            }
            if let Some(from) = from {
                if let Some(kind) = spec.states[&t.from].terminal {
                    let span = self.span(&[F("transitions"), I(i), F("from")]);
                    self.error(
                        Code::TransitionFromTerminal,
                        span,
                        format!(
                            "`{}` is a terminal state ({kind:?}); no transition may leave it",
                            t.from
                        ),
                    );
                }
                let guards = self.guards(t, i);
                if let Some(to) = to {
                    graph.add_edge(
                        from,
                        to,
                        Transition {
                            order: i,
                            guards,
                            description: t.description.clone(),
                        },
                    );
                }
            }
        }
    }

    fn guards(&mut self, t: &TransitionSpec, i: usize) -> Vec<Guard> {
        let guard_names: Vec<&str> = t.guards.iter().map(|g| g.name.as_str()).collect();
        let position: HashMap<&str, usize> = guard_names
            .iter()
            .enumerate()
            .rev()
            .map(|(g, n)| (*n, g))
            .collect();
        self.names(
            "guard",
            &guard_names,
            |name| {
                vec![
                    F("transitions"),
                    I(i),
                    F("guards"),
                    I(position[name]),
                    F("name"),
                ]
            },
            false,
        );
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::new();
        for (g, guard) in t.guards.iter().enumerate() {
            let path = [F("transitions"), I(i), F("guards"), I(g)];
            if let Some(&first) = names.get(guard.name.as_str()) {
                let span = self.span(&[path[0], path[1], path[2], path[3], F("name")]);
                let first_span = self.span(&[path[0], path[1], path[2], I(first), F("name")]);
                self.error(
                    Code::DuplicateGuard,
                    span,
                    format!(
                        "guard `{}` appears twice on `{}` -> `{}`",
                        guard.name, t.from, t.to
                    ),
                )
                .related
                .push((first_span, "first defined here".into()));
            } else {
                names.insert(&guard.name, g);
            }
            let retry = match &guard.retry {
                None => Some(Retry::default()),
                Some(r) => {
                    let rp = [path[0], path[1], path[2], path[3], F("retry")];
                    let delay = match &r.delay {
                        Some(d) => {
                            // Zero is what no `delay` means: try again at once.
                            self.duration(d, &[rp[0], rp[1], rp[2], rp[3], rp[4], F("delay")], None)
                        }
                        None => Some(Duration::ZERO),
                    };
                    if r.attempts == 0 {
                        let span = self.span(&[rp[0], rp[1], rp[2], rp[3], rp[4], F("attempts")]);
                        self.error(
                            Code::BadValue,
                            span,
                            "`attempts` counts every try and must be at least 1".into(),
                        );
                    }
                    delay.map(|delay| Retry {
                        attempts: r.attempts.max(1),
                        delay,
                    })
                }
            };
            let check_path = [path[0], path[1], path[2], path[3], F("check")];
            let check = self.check(&guard.check, &check_path, false);
            if let (Some(check), Some(retry)) = (check, retry) {
                out.push(Guard {
                    name: guard.name.clone(),
                    check,
                    retry,
                });
            }
        }
        out
    }

    fn check<'p>(
        &mut self,
        spec: &'p CheckSpec,
        path: &[K<'p>],
        inside_watch: bool,
    ) -> Option<Check> {
        let at =
            |field: &'p str| -> Vec<K<'p>> { path.iter().copied().chain([F(field)]).collect() };
        match spec {
            CheckSpec::Command(c) => self.command(c, path).map(Check::Command),
            CheckSpec::Http(h) => self.http(h, path, "GET").map(Check::Http),
            CheckSpec::Json(j) => {
                let file = self.template(&j.file, &at("file"));
                let pointer_ok = pointer_valid(&j.pointer);
                if !pointer_ok {
                    let span = self.span(&at("pointer"));
                    self.error(Code::BadPointer, span, format!("{:?} is not a JSON pointer (RFC 6901)", j.pointer))
                        .help = Some("a pointer is empty or starts with `/`, e.g. \"/first_impression_fsm\"; write `~0` for `~` and `~1` for `/`".into());
                }
                Some(Check::Json(JsonCheck {
                    file: file?,
                    pointer: j.pointer.clone(),
                    equals: j.equals.clone(),
                }))
                .filter(|_| pointer_ok)
            }
            CheckSpec::Approval(a) => {
                let min = a.min.unwrap_or(1);
                if min == 0 {
                    let span = self.span(&at("min"));
                    self.error(Code::BadValue, span, "`min` must be at least 1".into());
                } else if !a.approvers.is_empty() && (min as usize) > a.approvers.len() {
                    let span = self.span(&at("min"));
                    self.error(
                        Code::BadValue,
                        span,
                        format!(
                            "`min` is {min} but only {} approvers are allowed",
                            a.approvers.len()
                        ),
                    );
                }
                for (i, name) in a.approvers.iter().enumerate() {
                    // The actor-name rule is `actor`'s: a name outside it can never act.
                    if let Err(e) = crate::actor::check_actor_name(name) {
                        let mut p = at("approvers");
                        p.push(I(i));
                        let span = self.span(&p);
                        self.error(
                            Code::BadValue,
                            span,
                            format!("approver `{name}` can never approve: {e}"),
                        )
                        .help = Some("write the name as the approver gives it to `--as`".into());
                    }
                }
                let prompt = self.template(&a.prompt, &at("prompt"))?;
                Some(Check::Approval(ApprovalCheck {
                    prompt,
                    min: min.max(1),
                    approvers: a.approvers.clone(),
                    not_by_initiator: a.not_by_initiator,
                }))
            }
            CheckSpec::Wait(w) => self
                .duration(
                    &w.duration,
                    &at("duration"),
                    Some("is no bake time at all: the guard would always pass"),
                )
                .map(Check::Wait),
            CheckSpec::Window(w) => self.window(w, path).map(Check::Window),
            CheckSpec::Watch(w) => {
                let inner_path = at("check");
                if inside_watch || matches!(*w.check, CheckSpec::Approval(_) | CheckSpec::Wait(_)) {
                    let span = self.span(&inner_path);
                    let kind = check_kind(&w.check);
                    self.error(
                        Code::BadValue,
                        span,
                        format!("a Watch cannot watch a {kind} check"),
                    )
                    .help = Some("watch a Command, Http, Json or Window check".into());
                }
                let inner = self.check(&w.check, &inner_path, true);
                let duration = self.duration(
                    &w.duration,
                    &at("duration"),
                    Some("would watch nothing: the guard would always pass"),
                );
                let interval = self.duration(
                    &w.interval,
                    &at("interval"),
                    Some("would check without pause"),
                );
                if let (Some(d), Some(i)) = (duration, interval) {
                    if i > d {
                        let span = self.span(&at("interval"));
                        self.error(
                            Code::BadValue,
                            span,
                            "`interval` must be at most `duration`".into(),
                        );
                        return None;
                    }
                }
                Some(Check::Watch(WatchCheck {
                    check: Box::new(inner?),
                    duration: duration?,
                    interval: interval?,
                }))
            }
        }
    }

    fn command<'p>(&mut self, c: &'p CommandSpec, path: &[K<'p>]) -> Option<CommandCheck> {
        let at =
            |field: &'p str| -> Vec<K<'p>> { path.iter().copied().chain([F(field)]).collect() };
        if c.run.is_empty() || c.run[0].trim().is_empty() {
            let span = self.span(&at("run"));
            self.error(
                Code::BadValue,
                span,
                "`run` needs a program to run: an empty argv".into(),
            )
            .help = Some("write the argv, e.g. run: [\"python3\", \"-m\", \"pytest\"]".into());
        }
        let mut run = Vec::new();
        for (i, arg) in c.run.iter().enumerate() {
            let mut p = at("run");
            p.push(I(i));
            run.push(self.template(arg, &p));
        }
        self.shell_interpolation(&c.run, &at("run"));
        self.secret_in_argv(&c.run, &at("run"));
        let timeout = match &c.timeout {
            Some(t) => self.duration(
                t,
                &at("timeout"),
                Some("would give up before anything could answer"),
            ),
            None => Some(DEFAULT_COMMAND_TIMEOUT),
        };
        let mut env = indexmap::IndexMap::new();
        for (k, v) in &c.env {
            let mut p = at("env");
            p.push(F(k));
            env.insert(k.clone(), self.template(v, &p));
        }
        let cwd = c.cwd.as_ref().map(|d| self.template(d, &at("cwd")));
        if c.run.is_empty() {
            return None;
        }
        Some(CommandCheck {
            run: run.into_iter().collect::<Option<_>>()?,
            timeout: timeout?,
            env: env
                .into_iter()
                .map(|(k, v)| v.map(|v| (k, v)))
                .collect::<Option<_>>()?,
            cwd: cwd.transpose_opt()?,
        })
    }

    /// Warns about `${var}` inside an argument that a shell or interpreter reads as code
    /// (`sh -c SCRIPT`, `sudo bash -lc SCRIPT`, `ssh HOST CMD`, `python3 -c PROGRAM`; the
    /// rules are [`shell::code_arguments`]'s): the value is pasted into code, so quotes,
    /// spaces or `$(...)` in it (a `--var`, a name) run as commands. One warning per such
    /// argument, at its first `${`.
    fn shell_interpolation(&mut self, run: &[String], path: &[K]) {
        for code in shell::code_arguments(run) {
            let script = &run[code.index];
            // A malformed template was reported already.
            let Ok(template) = Template::parse(script) else {
                continue;
            };
            let Some((first, offset)) = template.vars().next() else {
                continue;
            };
            let mut names: Vec<&str> = Vec::new();
            for (name, _) in template.vars() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            let mut p = path.to_vec();
            p.push(I(code.index));
            let start = self.reference_offset(script, &p, offset, 0);
            let listed = names
                .iter()
                .map(|n| format!("`${{{n}}}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let reader = &code.reader;
            let (message, help) = match code.kind {
                shell::CodeKind::Script => {
                    let shell = reader.trim_end_matches(" -c");
                    (
                        format!("{listed} pasted into a `{reader}` script: a value with quotes, spaces or `$(...)` would run as shell code"),
                        format!("pass values as arguments after the script and use \"$1\", \"$2\" in it: [\"{shell}\", \"-c\", \"echo \\\"$1\\\"\", \"{shell}\", \"${{{first}}}\"]"),
                    )
                }
                shell::CodeKind::ShellLine => (
                    format!("{listed} pasted into the command line `{reader}` hands to a shell: a value with quotes, spaces or `$(...)` would run as shell code"),
                    if reader == "ssh" {
                        "ssh joins everything after the host into one line for the remote shell: run a script there that takes the value on standard input, or check the value before it is used".to_owned()
                    } else {
                        format!("`{reader}` runs this text with a shell: give it a script that takes the value as an argument (\"$1\"), or pass the value in `env` and use \"$NAME\"")
                    },
                ),
                shell::CodeKind::Program => (
                    format!("{listed} pasted into the inline `{reader}` program: a value with quotes would run as code"),
                    "pass values as arguments after the program and read them there: sys.argv[1] (Python), ARGV[0] (Ruby, Perl), process.argv[1] (Node), `-v name=${..}` (awk)".to_owned(),
                ),
            };
            self.warn(
                Code::ShellInterpolation,
                start..start + first.len() + 3,
                message,
            )
            .help = Some(help);
        }
    }

    /// Warns about a secret var in a command's argv: argv is in the process list
    /// (`ps`, `/proc/PID/cmdline`) of every local user while the command runs, unlike its
    /// environment, which only its owner can read. One warning per argument, at its first
    /// secret `${`.
    fn secret_in_argv(&mut self, run: &[String], path: &[K]) {
        for (index, arg) in run.iter().enumerate() {
            let Ok(template) = Template::parse(arg) else {
                continue;
            };
            let Some((nth, (name, offset))) = template
                .vars()
                .enumerate()
                .find(|(_, (name, _))| self.secrets.contains(*name))
            else {
                continue;
            };
            let mut p = path.to_vec();
            p.push(I(index));
            let start = self.reference_offset(arg, &p, offset, nth);
            let env_name = name.to_ascii_uppercase();
            self.warn(
                Code::SecretInArgv,
                start..start + name.len() + 3,
                format!("secret `${{{name}}}` in a command's arguments: every local user can read it in the process list while the command runs"),
            )
            .help = Some(format!(
                "pass it in the command's `env` instead, env: {{ \"{env_name}\": \"${{{name}}}\" }}, and read ${env_name} in the program (\"${env_name}\" in a `sh -c` script)"
            ));
        }
    }

    fn http<'p>(
        &mut self,
        h: &'p HttpSpec,
        path: &[K<'p>],
        default_method: &str,
    ) -> Option<HttpCheck> {
        let at =
            |field: &'p str| -> Vec<K<'p>> { path.iter().copied().chain([F(field)]).collect() };
        let url = self.template(&h.url, &at("url"));
        let method = h
            .method
            .clone()
            .unwrap_or_else(|| default_method.to_owned())
            .to_ascii_uppercase();
        let method_ok =
            ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&method.as_str());
        if !method_ok {
            let span = self.span(&at("method"));
            self.error(
                Code::BadValue,
                span,
                format!(
                    "unknown HTTP method {:?}",
                    h.method.as_deref().unwrap_or("")
                ),
            );
        }
        if let Some(status) = h.expect_status {
            if !(100..=599).contains(&status) {
                let span = self.span(&at("expect_status"));
                self.error(
                    Code::BadValue,
                    span,
                    format!("{status} is not an HTTP status code"),
                );
            }
        }
        let body_contains = h
            .body_contains
            .as_ref()
            .map(|b| self.template(b, &at("body_contains")));
        let timeout = match &h.timeout {
            Some(t) => self.duration(
                t,
                &at("timeout"),
                Some("would give up before anything could answer"),
            ),
            None => Some(DEFAULT_HTTP_TIMEOUT),
        };
        let mut headers = indexmap::IndexMap::new();
        for (k, v) in &h.headers {
            let mut p = at("headers");
            p.push(F(k));
            headers.insert(k.clone(), self.template(v, &p));
        }
        if let Some(body) = &h.body {
            let body_path = at("body");
            self.json_templates(body, &body_path);
        }
        if h.cross_origin_redirects && default_method == "POST" {
            // A webhook: following would resend its body and headers to another server.
            let span = self.span(&at("cross_origin_redirects"));
            self.error(
                Code::BadValue,
                span,
                "a webhook action never follows a redirect to another origin".to_owned(),
            )
            .help = Some(
                "point the webhook at the final URL; `cross_origin_redirects` is for Http checks"
                    .into(),
            );
        }
        Some(HttpCheck {
            url: url?,
            method,
            expect_status: h.expect_status,
            body_contains: body_contains.transpose_opt()?,
            timeout: timeout?,
            headers: headers
                .into_iter()
                .map(|(k, v)| v.map(|v| (k, v)))
                .collect::<Option<_>>()?,
            body: h.body.clone(),
            cross_origin_redirects: h.cross_origin_redirects,
        })
        .filter(|_| method_ok)
    }

    /// Checks `${vars}` in the string leaves of a webhook body.
    fn json_templates<'p>(&mut self, value: &'p serde_json::Value, path: &[K<'p>]) {
        match value {
            serde_json::Value::String(s) => {
                self.template(s, path);
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p: Vec<K> = path.iter().copied().chain([I(i)]).collect();
                    self.json_templates(item, &p);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    let p: Vec<K> = path.iter().copied().chain([F(k.as_str())]).collect();
                    self.json_templates(item, &p);
                }
            }
            _ => {}
        }
    }

    fn window<'p>(&mut self, w: &'p WindowSpec, path: &[K<'p>]) -> Option<WindowCheck> {
        let at =
            |field: &'p str| -> Vec<K<'p>> { path.iter().copied().chain([F(field)]).collect() };
        if w.days.is_empty() {
            let span = self.span(&at("days"));
            self.error(
                Code::BadValue,
                span,
                "a window needs at least one day".into(),
            );
        }
        let start = self.time_of_day(&w.start, &at("start"));
        let end = self.time_of_day(&w.end, &at("end"));
        let tz = match jiff::tz::TimeZone::get(&w.tz) {
            Ok(tz) => Some(tz),
            Err(_) => {
                let span = self.span(&at("tz"));
                self.error(
                    Code::BadTimezone,
                    span,
                    format!("{:?} is not an IANA time zone", w.tz),
                )
                .help = Some(
                    "use a name like \"Europe/London\", \"America/New_York\" or \"UTC\"".into(),
                );
                None
            }
        };
        if w.days.is_empty() {
            return None;
        }
        Some(WindowCheck {
            days: w.days.clone(),
            start: start?,
            end: end?,
            tz_name: w.tz.clone(),
            tz: tz?,
        })
    }

    fn time_of_day(&mut self, text: &str, path: &[K]) -> Option<jiff::civil::Time> {
        let parsed = text.split_once(':').and_then(|(h, m)| {
            let ok = h.len() == 2 && m.len() == 2;
            let (h, m) = (h.parse::<i8>().ok()?, m.parse::<i8>().ok()?);
            jiff::civil::Time::new(h, m, 0, 0).ok().filter(|_| ok)
        });
        if parsed.is_none() {
            let span = self.span(path);
            self.error(
                Code::BadTime,
                span,
                format!("{text:?} is not a time of day (HH:MM, 00:00-23:59)"),
            );
        }
        parsed
    }

    /// Parses a duration; `zero` says why zero makes no sense for this field, if it does not.
    fn duration(&mut self, text: &str, path: &[K], zero: Option<&str>) -> Option<Duration> {
        match parse_duration(text) {
            Ok(d) if d.is_zero() && zero.is_some() => {
                let field = match path.last() {
                    Some(F(name)) => *name,
                    _ => "duration",
                };
                let why = zero.unwrap_or_default();
                let span = self.span(path);
                let d = self.error(
                    Code::BadDuration,
                    span,
                    format!("`{field}` must be above zero: {text:?} {why}"),
                );
                d.label = "zero".into();
                d.help = Some(format!("write a length of time, e.g. {field}: \"30s\""));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                let span = self.span(path);
                self.error(Code::BadDuration, span, e.to_string());
                None
            }
        }
    }

    /// Parses a string as a template, checking every variable it names.
    fn template(&mut self, text: &str, path: &[K]) -> Option<Template> {
        match Template::parse(text) {
            Err(e) => {
                let nth = text[..e.offset].matches("${").count();
                let start = self.reference_offset(text, path, e.offset, nth);
                self.error(Code::BadTemplate, start..start + e.len, e.message);
                None
            }
            Ok(t) => {
                for (nth, (name, offset)) in t.vars().enumerate() {
                    if BUILTINS.contains(&name) {
                        continue;
                    }
                    if self.declared.contains(name) {
                        if !self.used.contains(name) {
                            self.used.insert(name.to_owned());
                        }
                        continue;
                    }
                    let start = self.reference_offset(text, path, offset, nth);
                    let declared = &self.declared;
                    let suggestion = self
                        .var_names
                        .get_or_insert_with(|| Names::new(declared.iter()))
                        .closest(name)
                        .map(str::to_owned);
                    let d = self.error(
                        Code::UndeclaredVar,
                        start..start + name.len() + 3,
                        format!("variable `{name}` is used but not declared"),
                    );
                    d.help = Some(match suggestion {
                        Some(c) => {
                            format!("did you mean `${{{c}}}`? Otherwise declare it in `vars`")
                        }
                        None => format!("declare it in `vars`: \"{name}\": ()"),
                    });
                }
                Some(t)
            }
        }
    }

    /// Source offset of the `nth` reference, at `offset` in the parsed string at `path`.
    /// Looked up only when there is something to report: finding a node costs a walk.
    fn reference_offset(&self, text: &str, path: &[K], offset: usize, nth: usize) -> usize {
        let span = self.span(path);
        let Some(raw) = self.node(path).and_then(Node::raw) else {
            return span.start;
        };
        // Worked out once per string, not per reference: a long string with many references
        // would otherwise cost its length for each (docs/performance.md).
        let mut cache = self.braces.borrow_mut();
        if cache.as_ref().is_none_or(|(start, _)| *start != raw.start) {
            let raw_text = &self.text[raw.clone()];
            // Escapes shift offsets: then the n-th `${` in the text as written is used instead.
            let offsets = (raw_text != text).then(|| dollar_braces(raw_text));
            *cache = Some((raw.start, offsets));
        }
        match cache.as_ref().map(|(_, offsets)| offsets) {
            Some(Some(offsets)) => offsets.get(nth).map_or(span.start, |p| raw.start + p),
            _ => raw.start + offset,
        }
    }

    // ---- the graph -------------------------------------------------------------------

    fn graph_checks(
        &mut self,
        spec: &Spec,
        graph: &DiGraph<State, Transition>,
        index: &NameMap<String, NodeIndex>,
        initial: Option<NodeIndex>,
        rollback: Option<NodeIndex>,
    ) {
        let terminals: Vec<NodeIndex> = graph
            .node_indices()
            .filter(|&i| graph[i].terminal.is_some())
            .collect();
        if terminals.is_empty() {
            let span = self.key_span(&[], "states");
            self.error(
                Code::NoTerminal,
                span,
                "no state is terminal, so no run can ever end".into(),
            )
            .help = Some("mark end states, e.g. \"done\": (terminal: Success)".into());
        }
        // Successors a run can move to: transitions and on_failure.
        let succ = |i: NodeIndex| {
            graph
                .edges_directed(i, Direction::Outgoing)
                .map(|e| e.target())
                .chain(graph[i].on_failure)
        };
        // Reachable from the initial state, and the rollback state (`waygate rollback`).
        // Node sets are bit vectors by node index: hashing every node cost more than the walk.
        let n = graph.node_count();
        if let Some(initial) = initial {
            let mut seen = vec![false; n];
            let mut queue: VecDeque<NodeIndex> = [initial].into_iter().chain(rollback).collect();
            while let Some(i) = queue.pop_front() {
                if !std::mem::replace(&mut seen[i.index()], true) {
                    queue.extend(succ(i));
                }
            }
            for (name, _) in &spec.states {
                if !seen[index[name].index()] {
                    let span = self.key_span(&[F("states")], name);
                    self.warn(
                        Code::UnreachableState,
                        span,
                        format!(
                            "state `{name}` cannot be reached from the initial state `{}`",
                            spec.initial
                        ),
                    );
                }
            }
        }
        if terminals.is_empty() {
            return;
        }
        // States from which some terminal is reachable: search backwards from the terminals.
        let mut preds: Vec<Vec<NodeIndex>> = vec![Vec::new(); n];
        for i in graph.node_indices() {
            for j in succ(i) {
                preds[j.index()].push(i);
            }
        }
        let mut good = vec![false; n];
        let mut queue: VecDeque<NodeIndex> = terminals.into_iter().collect();
        while let Some(i) = queue.pop_front() {
            if !std::mem::replace(&mut good[i.index()], true) {
                queue.extend(preds[i.index()].iter().copied());
            }
        }
        for (name, _) in &spec.states {
            let id = index[name];
            if good[id.index()] {
                continue;
            }
            // The first few states a run is trapped among, breadth first. Bounded: listing
            // every one made a chain of n such states cost n^2 (docs/performance.md).
            let mut trapped: Vec<&str> = vec![&graph[id].name];
            let mut seen = HashSet::from([id]);
            let mut queue = VecDeque::from([id]);
            let mut budget = 16 * TRAPPED_SHOWN;
            let mut more = false;
            'walk: while let Some(i) = queue.pop_front() {
                for j in succ(i) {
                    if budget == 0 {
                        more = true;
                        break 'walk;
                    }
                    budget -= 1;
                    if seen.contains(&j) {
                        continue;
                    }
                    if trapped.len() == TRAPPED_SHOWN {
                        more = true;
                        break 'walk;
                    }
                    seen.insert(j);
                    trapped.push(&graph[j].name);
                    queue.push_back(j);
                }
            }
            let span = self.key_span(&[F("states")], name);
            let message = if trapped.len() == 1 {
                format!("state `{name}` is a dead end: it has no transition or on_failure and is not terminal")
            } else {
                format!(
                    "state `{name}` cannot reach any terminal state; from it a run can only reach {}{}",
                    trapped.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" -> "),
                    if more { " -> ..." } else { "" }
                )
            };
            self.error(Code::NoPathToTerminal, span, message).help =
                Some("add a transition towards a terminal state, or an on_failure".into());
        }
        // States after the rollback state fall back to nowhere: going back to `rollback`
        // would run the rollback again (see `Workflow::failure_target`).
        let after_rollback = initial
            .map(|i| crate::model::rollback_path(graph, i, rollback))
            .unwrap_or_default();
        for (name, state) in &spec.states {
            if state.terminal.is_some() || state.on_enter.is_empty() || state.on_failure.is_some() {
                continue;
            }
            let id = index.get(name).copied();
            let after = id.is_some_and(|i| {
                Some(i) != rollback && after_rollback.get(i.index()).copied().unwrap_or(false)
            });
            let (why, help) = if rollback.is_none() {
                (
                    "the workflow has no rollback",
                    "add on_failure: \"<state>\" or a workflow-level rollback",
                )
            } else if after {
                (
                    "it is on the rollback path, so a failure there does not go back to the rollback state",
                    "add on_failure: \"<state>\", e.g. an escalation state for people",
                )
            } else {
                continue;
            };
            let span = self.key_span(&[F("states")], name);
            self.warn(
                Code::MissingFailurePath,
                span,
                format!("state `{name}` runs actions on entry but has no on_failure and {why}: a failed action leaves the run failed in place"),
            )
            .help = Some(help.into());
        }
        // An on_failure from the rollback path back into the rollback state runs the rollback
        // actions again on every failure there: reverting the revert, and for a failure that
        // persists, without end.
        let Some(rollback) = rollback else { return };
        let rollback_name = &graph[rollback].name;
        for (name, state) in &spec.states {
            let on_path = index
                .get(name)
                .is_some_and(|i| after_rollback.get(i.index()).copied().unwrap_or(false));
            if !on_path || state.on_failure.as_deref() != Some(rollback_name.as_str()) {
                continue;
            }
            let span = self.key_span(&[F("states")], name);
            self.warn(
                Code::RollbackLoop,
                span,
                format!("state `{name}` is on the rollback path and its on_failure goes back to `{rollback_name}`: every failure there runs the rollback actions again (reverting the revert), and a failure that persists loops without end"),
            )
            .help = Some(
                "send failures after the rollback to a state for people, e.g. on_failure: \"escalate\"".into(),
            );
        }
    }
}

trait TransposeOpt<T> {
    fn transpose_opt(self) -> Option<Option<T>>;
}

impl<T> TransposeOpt<T> for Option<Option<T>> {
    /// `None` (field absent) is fine; `Some(None)` (present but invalid) is not.
    fn transpose_opt(self) -> Option<Option<T>> {
        match self {
            None => Some(None),
            Some(Some(t)) => Some(Some(t)),
            Some(None) => None,
        }
    }
}

/// Byte offsets of each `${` in raw string text, skipping `$$`.
fn dollar_braces(raw: &str) -> Vec<usize> {
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'$' && bytes[i + 1] == b'$' {
            i += 2;
        } else if bytes[i] == b'$' && bytes[i + 1] == b'{' {
            out.push(i);
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

fn pointer_valid(p: &str) -> bool {
    if p.is_empty() {
        return true;
    }
    if !p.starts_with('/') {
        return false;
    }
    let b = p.as_bytes();
    b.iter()
        .enumerate()
        .all(|(i, &c)| c != b'~' || matches!(b.get(i + 1), Some(b'0' | b'1')))
}

/// States named in a `no-path-to-terminal` message before "...".
const TRAPPED_SHOWN: usize = 6;

fn check_kind(c: &CheckSpec) -> &'static str {
    match c {
        CheckSpec::Command(_) => "Command",
        CheckSpec::Http(_) => "Http",
        CheckSpec::Json(_) => "Json",
        CheckSpec::Approval(_) => "Approval",
        CheckSpec::Wait(_) => "Wait",
        CheckSpec::Window(_) => "Window",
        CheckSpec::Watch(_) => "Watch",
    }
}
