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
//! before it is parsed.
//!
//! This module reads the file (with ron), walks the spec into the model
//! (workflow, states, environments, transitions, guards) and places findings in the source.
//! Submodules own one concern each:
//! - `names`: the name rule and look-alike names; `suggest`: did-you-mean;
//! - `duplicates`: keys and fields written twice; `ron_error`: the parser's errors in the
//!   file's terms;
//! - `checks`: each check kind's fields; `values`: durations, times of day, `${..}` templates;
//! - `shell`: the shell-interpolation lint; `graph`: the graph of states (terminal states,
//!   dead ends, reachability, failure paths).

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::line_index::LineIndex;
use crate::model::{Action, Environment, Guard, Retry, State, Transition, Var, Workflow};
use crate::name_hash::{NameMap, NameSet};
use crate::spec::span_tree::{self, Node};
use crate::spec::{ActionSpec, Spec, StateSpec, TransitionSpec};
use suggest::Names;

mod cache;
mod checks;
mod duplicates;
mod graph;
mod names;
mod outputs;
pub(crate) mod ron_error;
mod shell;
pub(crate) mod suggest;
mod values;

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

/// Which rules a reading applies: every rule to a file being written, or only the rules that
/// make a model to a definition a run has pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// A workflow file: every rule, as `validate` and `start` apply them.
    File,
    /// A run's pinned definition: a run started by an earlier waygate must stay readable, so
    /// the rules added since runs began pinning (the name rule, look-alike names, zero
    /// durations, keys written twice in a map, approver names no actor can have, two Approval
    /// guards of one name out of one state, the size limit, names past 128 characters) warn
    /// instead of refusing, and the definition means what it meant when the run started
    /// (docs/storage.md, "Pinned definitions").
    Pinned,
}

/// Parses and validates a workflow. `file` is only used to label diagnostics.
pub fn validate(file: &str, text: &str) -> Validated {
    if text.len() > MAX_WORKFLOW_BYTES {
        return Validated {
            workflow: None,
            diagnostics: vec![too_large(file, Some(text.len() as u64))],
        };
    }
    read(file, text, Rules::File)
}

/// Reads the definition a run pinned when it started, with the rules that make a model only
/// (see [`Rules::Pinned`]): a run started by an earlier waygate under rules that were looser
/// then stays readable by `status`, `history`, `abort` and `drive`.
pub fn pinned(file: &str, text: &str) -> Validated {
    read(file, text, Rules::Pinned)
}

/// The model of a run's pinned definition `text` (read as [`pinned`] reads it), whose SHA-256
/// the run records as `hash` ([`crate::run::Run::definition_hash`]); or, when it makes none,
/// every diagnostic of the reading. A definition never changes once pinned, so the model is
/// read once per process and kept (at most 32 of them and 16 MiB of text, the least recently
/// used dropped); it is served only for the very text it was read from, whatever the hash says.
pub fn pinned_workflow(
    hash: &str,
    file: &str,
    text: &str,
) -> Result<std::sync::Arc<Workflow>, Vec<Diagnostic>> {
    cache::PINNED.read(hash, file, text)
}

fn read(file: &str, text: &str, rules: Rules) -> Validated {
    let mut checker = Checker::new(file, text, rules);
    // ron reads the file and words syntax and type errors; the span tree places every other
    // finding and finds the keys ron lets through written twice. (A second, faster reader did
    // not earn its place: docs/performance.md, "One reader".)
    let workflow = match crate::spec::ron_options().from_str::<Spec>(text) {
        Ok(spec) => checker.workflow(&spec),
        Err(err) => {
            // ron stops at the first field written twice; the span tree finds them all.
            let all_found = matches!(err.code, ron::Error::DuplicateStructField { .. })
                && checker.duplicates(false);
            if !all_found {
                checker.ron_error(&err);
            }
            None
        }
    };
    let mut diagnostics = checker.diags;
    diagnostics.sort_by_key(|d| (d.line, d.column));
    let workflow = workflow.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    Validated {
        workflow,
        diagnostics,
    }
}

use crate::spec::span_tree::Step::{self, Field, Index};

/// The graph of states as validation built it, and the two states a run starts from (the
/// initial and the rollback state; `None` where the file names no such state): what the
/// checks on the graph and on published values walk.
struct Built<'a> {
    graph: &'a DiGraph<State, Transition>,
    index: &'a NameMap<String, NodeIndex>,
    initial: Option<NodeIndex>,
    rollback: Option<NodeIndex>,
}

/// One reading of a workflow: walks the spec, builds the model and collects the findings, each
/// placed by a path into the span tree.
struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    /// Line starts, indexed on first use (only diagnostics need them).
    lines: std::cell::OnceCell<LineIndex>,
    /// The span tree, built on first use (the duplicate-key check always uses it).
    tree: std::cell::OnceCell<Option<Node<'a>>>,
    /// Every rule, or those of a pinned definition.
    rules: Rules,
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
    /// The action or guard whose templates are being read, for `${steps.NAME.KEY}`.
    site: Option<outputs::Site>,
    /// A notification hook's templates are being read: `${notify.*}` is known there.
    in_notify: bool,
    /// Every `${steps.NAME.KEY}`, checked once the graph is built (`outputs`).
    step_uses: Vec<outputs::StepUse>,
}

impl<'a> Checker<'a> {
    fn new(file: &'a str, text: &'a str, rules: Rules) -> Self {
        Checker {
            rules,
            file,
            text,
            lines: std::cell::OnceCell::new(),
            tree: std::cell::OnceCell::new(),
            diags: Vec::new(),
            declared: NameSet::default(),
            secrets: NameSet::default(),
            used: NameSet::default(),
            braces: std::cell::RefCell::new(None),
            state_names: None,
            var_names: None,
            site: None,
            in_notify: false,
            step_uses: Vec::new(),
        }
    }

    // ---- positions -------------------------------------------------------------------

    fn lines(&self) -> &LineIndex {
        self.lines.get_or_init(|| LineIndex::new(self.text))
    }

    fn node(&self, path: &[Step]) -> Option<&Node<'a>> {
        let text = self.text;
        self.tree
            .get_or_init(|| span_tree::parse(text))
            .as_ref()?
            .find(path)
    }

    /// The span at `path`, or of its longest prefix that exists.
    fn span(&self, path: &[Step]) -> Range<usize> {
        self.node(&[]).map_or(0..0, |root| root.span_at(path))
    }

    /// The span of key `key` in the map or struct at `path`.
    fn key_span(&self, path: &[Step], key: &str) -> Range<usize> {
        self.node(path)
            .and_then(|n| n.key_span(key))
            .unwrap_or_else(|| self.span(path))
    }

    fn push(&mut self, severity: Severity, code: Code, span: Range<usize>, message: String) {
        let mut d = Diagnostic::at(self.file, self.text, self.lines(), code, span, message);
        d.severity = severity;
        self.diags.push(d);
    }

    /// Reports a finding with its code's severity.
    fn report(&mut self, code: Code, span: Range<usize>, message: String) -> &mut Diagnostic {
        self.push(code.severity(), code, span, message);
        self.diags.last_mut().expect("just pushed")
    }

    /// Reports a finding of a rule added after runs began pinning their definitions: with its
    /// code's severity in a file, as a warning in a pinned definition ([`Rules::Pinned`]).
    fn report_newer(&mut self, code: Code, span: Range<usize>, message: String) -> &mut Diagnostic {
        let severity = match self.rules {
            Rules::File => code.severity(),
            Rules::Pinned => Severity::Warning,
        };
        self.push(severity, code, span, message);
        self.diags.last_mut().expect("just pushed")
    }

    /// A workflow's own `policies` stay under its directory: `validate` reads them, often in
    /// CI on a change someone proposes, and shows what does not parse, so `/etc/shadow` or
    /// `../../secrets.txt` would put another file's lines in the log. Files elsewhere are
    /// given with `--policy`.
    fn policy_paths(&mut self, spec: &Spec) {
        use std::path::Component;
        for (i, p) in spec.policies.iter().enumerate() {
            let outside = p.is_empty()
                || std::path::Path::new(p)
                    .components()
                    .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
            if outside {
                let span = self.span(&[Field("policies"), Index(i)]);
                self.report(
                    Code::BadValue,
                    span,
                    format!("policy path {p:?} must be relative to the workflow's directory and stay under it (no `..`, not absolute)"),
                )
                .help = Some("give a policy kept elsewhere with `waygate validate --policy FILE`".into());
            }
        }
    }

    fn ron_error(&mut self, err: &ron::error::SpannedError) {
        let d = ron_error::diagnostic(self.file, self.text, self.lines(), err);
        self.diags.push(d);
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
        // A secret a step publishes is a secret like a secret var (`secret-in-argv`).
        let published_secrets = crate::validate::outputs::secret_variables(spec);
        self.secrets.extend(published_secrets);
        // ron read the file, so these are map keys written twice (the last one wins): a rule
        // newer than pinning.
        self.duplicates(true);

        let span = self.span(&[Field("name")]);
        self.slug(
            "workflow",
            &spec.name,
            span,
            "use lower-case letters, digits, `-` and `_`, e.g. \"production-deploy\"",
        );

        let state_names: Vec<&str> = spec.states.keys().map(String::as_str).collect();
        self.names(
            "state",
            &state_names,
            |name| vec![Field("states"), Field(name)],
            true,
        );
        let env_names: Vec<&str> = spec.environments.keys().map(String::as_str).collect();
        self.names(
            "environment",
            &env_names,
            |name| vec![Field("environments"), Field(name)],
            true,
        );

        let mut graph: DiGraph<State, Transition> = DiGraph::new();
        let mut index = NameMap::with_capacity_and_hasher(spec.states.len(), Default::default());
        for name in spec.states.keys() {
            let id = graph.add_node(State {
                name: name.clone(),
                description: None,
                on_enter: Vec::new(),
                action_names: Vec::new(),
                on_failure: None,
                deadline: None,
                terminal: None,
            });
            index.insert(name.clone(), id);
        }

        let initial = self.state_ref(&index, &spec.initial, &[Field("initial")], "initial state");
        let rollback = spec
            .rollback
            .as_ref()
            .and_then(|r| self.state_ref(&index, r, &[Field("rollback")], "rollback state"));

        for (name, state) in &spec.states {
            let filled = self.state(&index, name, state);
            let id = index[name];
            graph[id] = filled;
        }

        let environments = self.environments(spec);
        self.actor_names(
            &spec.overridable_by,
            &[Field("overridable_by")],
            "overrider",
            "override",
        );
        self.policy_paths(spec);
        self.transitions(spec, &index, &mut graph);
        let built = Built {
            graph: &graph,
            index: &index,
            initial,
            rollback,
        };
        self.graph_checks(spec, &built);
        let notify = self.notify(spec);
        self.step_outputs(spec, &built);

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
                let span = self.key_span(&[Field("vars")], name);
                self.report(
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
            overridable_by: spec.overridable_by.clone(),
            notify,
            policies: spec.policies.clone(),
            state_index: index,
            outgoing: crate::model::outgoing_in_file_order(&graph),
            rollback_path: crate::model::rollback_path(&graph, initial, rollback),
            graph,
        })
    }

    /// The notification hooks: each announces something and its action is a valid action,
    /// whose templates may use `${notify.*}`.
    fn notify(&mut self, spec: &Spec) -> Vec<crate::model::Notify> {
        let mut out = Vec::new();
        for (i, hook) in spec.notify.iter().enumerate() {
            let path = [Field("notify"), Index(i)];
            if hook.on.is_empty() {
                let span = self.span(&[path[0], path[1], Field("on")]);
                self.report(
                    Code::BadValue,
                    span,
                    "a notification hook announces nothing: `on` is empty".into(),
                )
                .help = Some(
                    "list what it is for: ApprovalWaiting, WindowClosed, RollbackStarted, RunEnded"
                        .into(),
                );
            }
            let action_path = [path[0], path[1], Field("action")];
            self.in_notify = true;
            self.site = Some(outputs::Site::Notify);
            let action = match &hook.action {
                ActionSpec::Command(c) => {
                    self.hook_publishes_nothing(c, &action_path);
                    self.command(c, &action_path).map(Action::Command)
                }
                ActionSpec::Http(h) => self.http(h, &action_path, "POST").map(Action::Http),
            };
            self.site = None;
            self.in_notify = false;
            if let Some(action) = action {
                out.push(crate::model::Notify {
                    on: hook.on.clone(),
                    action,
                });
            }
        }
        out
    }

    /// Keys and fields written twice, anywhere in the file (`duplicates` owns the rule).
    /// `newer`: the file parsed, so these are map keys ron let through, a rule newer than
    /// pinning ([`Checker::report_newer`]). Returns whether any was found.
    fn duplicates(&mut self, newer: bool) -> bool {
        let Some(root) = self.node(&[]) else {
            return false;
        };
        let found = crate::validate::duplicates::find(root, self.text);
        let any = !found.is_empty();
        for d in found {
            let reported = if newer {
                self.report_newer(d.code, d.span, d.message)
            } else {
                self.report(d.code, d.span, d.message)
            };
            reported
                .related
                .push((d.first, "first defined here".into()));
        }
        any
    }

    /// The rule for a workflow's or a shared lock's name (`kind`, at `span`): `[a-z0-9_-]+`
    /// (`help` says how to write one), and at most [`names::MAX_CHARS`] characters. The
    /// length limit is newer than pinning: a run that pinned a longer name warns.
    fn slug(&mut self, kind: &str, name: &str, span: Range<usize>, help: &str) {
        let (problem, help, newer) = if !crate::run::valid_lock_name(name) {
            ("must match [a-z0-9_-]+".to_owned(), help, false)
        } else if let Some(long) = names::too_long(name) {
            (long, names::SHORTEN, true)
        } else {
            return;
        };
        let message = format!("{kind} name {} {problem}", names::shown(name));
        let d = if newer {
            self.report_newer(Code::InvalidName, span, message)
        } else {
            self.report(Code::InvalidName, span, message)
        };
        d.help = Some(help.into());
    }

    /// The name rule (`names` owns it) for names of one kind: each valid, no two alike.
    /// `path` gives where a name is: a map key (`key`) or a `name:` value.
    fn names<'n>(
        &mut self,
        kind: &str,
        names: &[&'n str],
        path: impl Fn(&'n str) -> Vec<Step<'n>>,
        key: bool,
    ) {
        let place = |checker: &Self, name: &'n str| {
            let p = path(name);
            if key {
                let (last, parent) = p.split_last().expect("a path to a key");
                match last {
                    Field(k) => checker.key_span(parent, k),
                    Index(_) => checker.span(&p),
                }
            } else {
                checker.span(&p)
            }
        };
        for &name in names {
            if let Some(problem) = crate::validate::names::problem(name) {
                let span = place(self, name);
                self.report_newer(
                    Code::InvalidName,
                    span,
                    format!("{kind} name {} {problem}", names::shown(name)),
                )
                .help = Some(format!(
                    "a name is not empty, has at most {} characters, no white space at its ends and no control or invisible characters",
                    names::MAX_CHARS
                ));
            }
        }
        for (first, second) in crate::validate::names::lookalikes(names.iter().copied()) {
            let (a, b) = (names[first], names[second]);
            let span = place(self, b);
            let first_span = place(self, a);
            let d = self.report_newer(
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
        path: &[Step],
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
        self.report(
            Code::UnknownState,
            span,
            format!("{what} `{name}` is not a state of this workflow"),
        )
        .help = Some(help);
        None
    }

    fn state(&mut self, index: &NameMap<String, NodeIndex>, name: &str, spec: &StateSpec) -> State {
        let base = [Field("states"), Field(name)];
        let on_failure = spec.on_failure.as_ref().and_then(|f| {
            self.state_ref(
                index,
                f,
                &[base[0], base[1], Field("on_failure")],
                "on_failure state",
            )
        });
        let deadline = spec.deadline.as_ref().and_then(|d| {
            self.duration(
                d,
                &[base[0], base[1], Field("deadline")],
                Some("would send every run to its on_failure the moment it enters the state"),
            )
        });
        let mut on_enter = Vec::new();
        let mut action_names = Vec::new();
        for (i, action) in spec.on_enter.iter().enumerate() {
            let path = [base[0], base[1], Field("on_enter"), Index(i)];
            self.site = Some(outputs::Site::Action {
                state: name.to_owned(),
                index: i,
            });
            let (action, action_name) = match action {
                ActionSpec::Command(c) => (self.command(c, &path).map(Action::Command), &c.name),
                ActionSpec::Http(h) => (self.http(h, &path, "POST").map(Action::Http), &h.name),
            };
            self.site = None;
            if action.is_some() {
                action_names.push(action_name.clone());
            }
            on_enter.extend(action);
        }
        State {
            name: name.to_owned(),
            description: spec.description.clone(),
            on_enter,
            action_names,
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
                    let span =
                        self.key_span(&[Field("environments"), Field(env), Field("vars")], var);
                    let d = self.report(
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
            if let Some(lock) = &e.lock {
                let span = self.span(&[Field("environments"), Field(env), Field("lock")]);
                self.slug(
                    "lock",
                    lock,
                    span,
                    "name it after the system it protects, e.g. \"chatbot-production\"",
                );
            }
            out.insert(
                env.clone(),
                Environment {
                    vars: e.vars.clone(),
                    description: e.description.clone(),
                    lock: e.lock.clone(),
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
                        let span = self.span(&[
                            Field("transitions"),
                            Index(i),
                            Field("guards"),
                            Index(g),
                            Field("name"),
                        ]);
                        let first_span = self.span(&[
                            Field("transitions"),
                            Index(fi),
                            Field("guards"),
                            Index(fg),
                            Field("name"),
                        ]);
                        // A rule newer than pinning: two such guards shared their approvals before.
                        let d = self.report_newer(
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
                &[Field("transitions"), Index(i), Field("from")],
                "transition source",
            );
            let to = self.state_ref(
                index,
                &t.to,
                &[Field("transitions"), Index(i), Field("to")],
                "transition target",
            );
            if let Some(&first) = seen.get(&(t.from.as_str(), t.to.as_str())) {
                let span = self.span(&[Field("transitions"), Index(i), Field("from")]);
                let first_span = self.span(&[Field("transitions"), Index(first), Field("from")]);
                self.report(
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
                    let span = self.span(&[Field("transitions"), Index(i), Field("from")]);
                    self.report(
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
                    Field("transitions"),
                    Index(i),
                    Field("guards"),
                    Index(position[name]),
                    Field("name"),
                ]
            },
            false,
        );
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::new();
        for (g, guard) in t.guards.iter().enumerate() {
            let path = [Field("transitions"), Index(i), Field("guards"), Index(g)];
            if let Some(&first) = names.get(guard.name.as_str()) {
                let span = self.span(&[path[0], path[1], path[2], path[3], Field("name")]);
                let first_span =
                    self.span(&[path[0], path[1], path[2], Index(first), Field("name")]);
                self.report(
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
                    let rp = [path[0], path[1], path[2], path[3], Field("retry")];
                    let delay = match &r.delay {
                        Some(d) => {
                            // Zero is what no `delay` means: try again at once.
                            self.duration(
                                d,
                                &[rp[0], rp[1], rp[2], rp[3], rp[4], Field("delay")],
                                None,
                            )
                        }
                        None => Some(Duration::ZERO),
                    };
                    if r.attempts == 0 {
                        let span =
                            self.span(&[rp[0], rp[1], rp[2], rp[3], rp[4], Field("attempts")]);
                        self.report(
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
            let overriders = [path[0], path[1], path[2], path[3], Field("overridable_by")];
            self.actor_names(&guard.overridable_by, &overriders, "overrider", "override");
            let check_path = [path[0], path[1], path[2], path[3], Field("check")];
            self.site = Some(outputs::Site::Guard { transition: i });
            let check = self.check(&guard.check, &check_path, false);
            self.site = None;
            if let (Some(check), Some(retry)) = (check, retry) {
                out.push(Guard {
                    name: guard.name.clone(),
                    check,
                    retry,
                    overridable_by: guard.overridable_by.clone(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
