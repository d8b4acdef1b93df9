//! Keys and fields written twice, found on the span tree: the one rule for every map and every
//! construct in the file.
//!
//! serde keeps the last of two equal map keys without a word (`env: {"MODE": "safe", "MODE":
//! "danger"}` would run with `danger`), and ron stops at the first field written twice. Both
//! readers leave the question to this walk over the whole span tree, so every map (states,
//! vars, environments and their vars, a Command's `env`, an Http `headers`, the objects of a
//! Json `equals` or a webhook `body`) gets the same rule, and every duplicate is reported, not
//! only the first.

use std::collections::HashMap;
use std::ops::Range;

use crate::diagnostic::Code;
use crate::spec::span_tree::{Node, NodeKind};

/// One key or field written twice.
pub(crate) struct Duplicate {
    /// `duplicate-key` or `duplicate-field`.
    pub code: Code,
    pub message: String,
    /// The second occurrence.
    pub span: Range<usize>,
    /// The first.
    pub first: Range<usize>,
}

/// Where a node sits, as far as naming it needs.
#[derive(Clone, Copy, Default)]
struct At<'a> {
    /// The struct field it is the value of (kept through lists: a transition is in the list
    /// of the field `transitions`).
    field: Option<&'a str>,
    /// The map key it is the value of, and what that map's entries are.
    key: Option<(&'static str, &'a str)>,
    /// It is the workflow itself.
    root: bool,
    /// It is the value of one of the workflow's own fields.
    workflow_field: bool,
    /// It is inside an environment.
    in_environment: bool,
}

/// Every key and field written twice in the tree, in source order.
pub(crate) fn find(root: &Node<'_>, text: &str) -> Vec<Duplicate> {
    let mut out = Vec::new();
    let at = At {
        root: true,
        ..At::default()
    };
    walk(root, at, text, &mut out);
    out.sort_by_key(|d| d.span.start);
    out
}

fn walk<'a>(node: &Node<'a>, at: At<'a>, text: &str, out: &mut Vec<Duplicate>) {
    match &node.kind {
        NodeKind::Map(entries, _) => {
            let (what, fold_case) = map_entry_name(at);
            let mut first: HashMap<String, (Range<usize>, &str)> =
                HashMap::with_capacity(entries.len());
            for (key, value) in entries {
                let NodeKind::Str { text: k, .. } = &key.kind else {
                    continue;
                };
                let unescaped = crate::spec::span_tree::unescape(k);
                let folded = if fold_case {
                    unescaped.to_ascii_lowercase()
                } else {
                    unescaped.into_owned()
                };
                match first.get(&folded) {
                    Some((span, written)) => out.push(Duplicate {
                        code: Code::DuplicateKey,
                        message: if written != k {
                            format!(
                                "{what} `{k}` is defined twice (as `{written}` first; header names ignore case)"
                            )
                        } else {
                            format!("{what} `{k}` is defined twice")
                        },
                        span: key.span.clone(),
                        first: span.clone(),
                    }),
                    None => {
                        first.insert(folded, (key.span.clone(), k));
                    }
                }
                let child = At {
                    key: Some((what, k)),
                    in_environment: at.in_environment || at.is_workflow_field("environments"),
                    ..At::default()
                };
                walk(value, child, text, out);
            }
        }
        NodeKind::Struct(fields) => {
            let mut first: HashMap<&str, Range<usize>> = HashMap::with_capacity(fields.len());
            for f in fields {
                match first.get(f.name) {
                    Some(span) => out.push(Duplicate {
                        code: Code::DuplicateField,
                        message: format!(
                            "field `{}` is written twice in {}",
                            f.name,
                            construct_name(node, at, text)
                        ),
                        span: f.name_span.clone(),
                        first: span.clone(),
                    }),
                    None => {
                        first.insert(f.name, f.name_span.clone());
                    }
                }
                let child = At {
                    field: Some(f.name),
                    workflow_field: at.root,
                    in_environment: at.in_environment,
                    ..At::default()
                };
                walk(&f.value, child, text, out);
            }
        }
        NodeKind::List(items) | NodeKind::Tuple(items) => {
            for item in items {
                walk(item, at, text, out);
            }
        }
        NodeKind::Str { .. } | NodeKind::Atom => {}
    }
}

impl At<'_> {
    fn is_workflow_field(&self, name: &str) -> bool {
        self.workflow_field && self.field == Some(name)
    }
}

/// What the entries of the map at `at` are, and whether their keys ignore case.
fn map_entry_name(at: At<'_>) -> (&'static str, bool) {
    if at.is_workflow_field("states") {
        return ("state", false);
    }
    if at.is_workflow_field("vars") {
        return ("variable", false);
    }
    if at.is_workflow_field("environments") {
        return ("environment", false);
    }
    match at.field {
        Some("vars") if at.in_environment => ("variable value", false),
        Some("env") => ("environment variable", false),
        Some("headers") => ("header", true),
        _ => ("key", false),
    }
}

/// The construct a struct node is, as the file writes it: `Command`, state `build`, a guard.
fn construct_name(node: &Node<'_>, at: At<'_>, text: &str) -> String {
    let ident: String = text[node.span.clone()]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if !ident.is_empty() {
        return format!("`{ident}`");
    }
    if at.root {
        return "`Workflow`".into();
    }
    if let Some((what, key)) = at.key {
        return format!("{what} `{key}`");
    }
    match at.field {
        Some("transitions") => "a transition".into(),
        Some("guards") => "a guard".into(),
        Some(field) => format!("`{field}`"),
        None => "this value".into(),
    }
}
