//! Values passed between steps: what a `Command` action or check publishes, and which of a
//! run's published values a later step sees as `${steps.NAME.KEY}`.
//!
//! A command that declares `outputs: ["build_id"]` is given a fresh, private file named by
//! `$WAYGATE_OUTPUT` and writes `key=value` lines to it. [`parse`] is the one rule for what
//! that file means (`docs/workflow-format.md`, "Values passed between steps"); the value is
//! recorded with the step's event (`ActionFinished`, or the guard's result in
//! `GuardsEvaluated`), and [`published`] reads a run's events back into the values later steps
//! see. Validation proves every use comes after its publishing step on every path
//! (`validate/outputs.rs`), so a value is only missing at run time when the step that
//! publishes it never ran, which [`crate::template::Template::render`] reports as a missing
//! variable.

use std::collections::BTreeMap;

use crate::event::{Event, EventKind};
use crate::model::{Action, Check, Workflow};
use crate::outcome::Outcome;

/// What a `${..}` reference to a published value starts with.
pub const PREFIX: &str = "steps.";

/// The environment variable naming the file a command writes its values to.
pub const OUTPUT_ENV: &str = "WAYGATE_OUTPUT";

/// The most bytes of a published value: values are recorded in the history with the step.
pub const MAX_VALUE: usize = 1024;

/// The most bytes read from a command's output file; a larger file fails the step.
pub const MAX_FILE: usize = 64 * 1024;

/// The template variable a published value is known by: `steps.NAME.KEY`.
pub fn variable(step: &str, key: &str) -> String {
    format!("{PREFIX}{step}.{key}")
}

/// A `${steps.NAME.KEY}` reference split into its step and key; `None` for any other name.
/// `Err` holds what is malformed about a name that starts with `steps.`.
pub fn reference(name: &str) -> Option<Result<(&str, &str), &'static str>> {
    let rest = name.strip_prefix(PREFIX)?;
    Some(match rest.split_once('.') {
        Some((step, key)) if !step.is_empty() && !key.is_empty() && !key.contains('.') => {
            Ok((step, key))
        }
        _ => Err("a published value is written `${steps.NAME.KEY}`"),
    })
}

/// Whether `name` can be a step name or an output key: `[A-Za-z0-9_-]+`, so that
/// `${steps.NAME.KEY}` splits unambiguously.
pub fn valid_part(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Why a command's output file does not give every declared value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// A declared key was never written.
    #[error("declared output{} {} not written to ${OUTPUT_ENV} (write `key=value` lines to the file it names)", if .0.len() == 1 { "" } else { "s" }, .0.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))]
    Missing(Vec<String>),
    /// A declared value is too long to record.
    #[error("output `{key}` is {len} bytes; a published value may be at most {MAX_VALUE}")]
    TooLong {
        /// The key.
        key: String,
        /// Its value's length.
        len: usize,
    },
    /// A declared value holds a control character (a NUL cannot be in an argument at all,
    /// an escape sequence would reach terminals through `history`).
    #[error("output `{0}` holds a control character; a published value is one line of text")]
    Control(String),
    /// The file is larger than [`MAX_FILE`], or not UTF-8 text.
    #[error("${OUTPUT_ENV} file {0}")]
    Unreadable(String),
}

/// The declared values in a command's output file `text`: one `key=value` per line (a
/// trailing `\r` is dropped; a line without `=` or with an undeclared key is ignored, as CI
/// systems do, so one script can serve several steps). A key written twice keeps its last
/// value. Every declared key must be there.
pub fn parse(text: &str, declared: &[String]) -> Result<BTreeMap<String, String>, OutputError> {
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if declared.iter().any(|d| d == key) {
            if value.len() > MAX_VALUE {
                return Err(OutputError::TooLong {
                    key: key.to_owned(),
                    len: value.len(),
                });
            }
            if value.chars().any(char::is_control) {
                return Err(OutputError::Control(key.to_owned()));
            }
            values.insert(key.to_owned(), value.to_owned());
        }
    }
    let missing: Vec<String> = declared
        .iter()
        .filter(|k| !values.contains_key(*k))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(values)
    } else {
        Err(OutputError::Missing(missing))
    }
}

/// The values a run's steps have published, as template variables (`steps.NAME.KEY`): for
/// each step its latest publication, from an `on_enter` action that finished well or a guard
/// that passed on a transition the run took. Validation guarantees that the step publishing
/// a value a step uses ran before it on every path, so the latest value is the one of the
/// path the run took.
pub fn published(workflow: &Workflow, events: &[Event]) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for event in events {
        match &event.kind {
            EventKind::ActionFinished {
                state,
                index,
                ok: true,
                outputs,
                ..
            } if !outputs.is_empty() => {
                let Some((_, s)) = workflow.state_by_name(state) else {
                    continue;
                };
                let i = *index as usize;
                let name = s.action_names.get(i).and_then(Option::as_deref);
                let secret = match s.on_enter.get(i) {
                    Some(Action::Command(c)) => c.secret_outputs.as_slice(),
                    _ => &[],
                };
                if let Some(name) = name {
                    for (k, v) in outputs.iter().filter(|(k, _)| !secret.contains(k)) {
                        values.insert(variable(name, k), v.clone());
                    }
                }
            }
            EventKind::GuardsEvaluated {
                state,
                to,
                passed: true,
                guards,
            } => {
                for g in guards.iter().filter(|g| g.outcome == Outcome::Pass) {
                    let secret = secret_of_guard(workflow, state, to, &g.name);
                    for (k, v) in g.outputs.iter().filter(|(k, _)| !secret.contains(k)) {
                        values.insert(variable(&g.name, k), v.clone());
                    }
                }
            }
            _ => {}
        }
    }
    values
}

/// The secret keys of guard `guard` of the transition `state` -> `to`.
fn secret_of_guard<'w>(workflow: &'w Workflow, state: &str, to: &str, guard: &str) -> &'w [String] {
    let Some((from, _)) = workflow.state_by_name(state) else {
        return &[];
    };
    workflow
        .outgoing_iter(from)
        .filter(|t| workflow.state(t.to).name == to)
        .flat_map(|t| &t.transition.guards)
        .find(|g| g.name == guard)
        .map_or(&[], |g| match &g.check {
            Check::Command(c) => c.secret_outputs.as_slice(),
            _ => &[],
        })
}

/// The keys `check` publishes (only a `Command` check can).
pub fn declared(check: &Check) -> &[String] {
    match check {
        Check::Command(c) => &c.outputs,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn declared_keys_are_read_and_others_ignored() {
        let got = parse(
            "noise\nbuild_id=42\r\ncolour=blue\nother=x\ncolour=green=ish\n",
            &keys(&["build_id", "colour"]),
        )
        .expect("all there");
        assert_eq!(got["build_id"], "42");
        assert_eq!(
            got["colour"], "green=ish",
            "the last write wins, split at the first ="
        );
        assert!(!got.contains_key("other"));
    }

    #[test]
    fn a_missing_key_is_named() {
        let e = parse("a=1\n", &keys(&["a", "b", "c"])).expect_err("missing");
        assert_eq!(
            e.to_string(),
            "declared outputs `b`, `c` not written to $WAYGATE_OUTPUT (write `key=value` lines to the file it names)"
        );
    }

    #[test]
    fn a_long_value_is_refused() {
        let text = format!("a={}", "x".repeat(MAX_VALUE + 1));
        assert!(matches!(
            parse(&text, &keys(&["a"])),
            Err(OutputError::TooLong { len, .. }) if len == MAX_VALUE + 1
        ));
        let text = format!("a={}", "x".repeat(MAX_VALUE));
        assert!(parse(&text, &keys(&["a"])).is_ok());
    }

    #[test]
    fn a_value_with_a_control_character_is_refused() {
        for text in ["a=x\0y", "a=\u{1b}[2J", "a=tab\there"] {
            assert_eq!(
                parse(text, &keys(&["a"])),
                Err(OutputError::Control("a".into()))
            );
        }
    }

    #[test]
    fn references_split_into_step_and_key() {
        assert_eq!(reference("steps.build.id"), Some(Ok(("build", "id"))));
        assert_eq!(reference("version"), None);
        assert!(matches!(reference("steps.build"), Some(Err(_))));
        assert!(matches!(reference("steps.a.b.c"), Some(Err(_))));
        assert!(valid_part("build-1_x") && !valid_part("a.b") && !valid_part(""));
    }
}
