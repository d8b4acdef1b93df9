//! Where a run's variable values come from, and which of them may be stored.
//!
//! Precedence, highest first: `--var K=V`, the environment's `vars`, the process environment
//! variable named by `from_env`, the `default`. A run is refused if any declared var is left
//! without a value, naming each one. Secret values are resolved the same way but are never
//! part of what is stored: [`Resolved::storable`] leaves them out, and commands that evaluate
//! guards later resolve them again from the process environment.

use std::collections::BTreeMap;

use crate::model::Workflow;

/// Values for every declared var plus the built-ins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Every value, secrets included; never store or print this map as a whole.
    pub values: BTreeMap<String, String>,
    /// The names of secret vars.
    pub secret_names: Vec<String>,
}

impl Resolved {
    /// The values that may be written to the store: no secrets, no built-ins.
    pub fn storable(&self) -> BTreeMap<String, String> {
        self.values
            .iter()
            .filter(|(k, _)| !self.secret_names.contains(k) && !k.starts_with("run."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The secret values, for redaction. Empty values are left out: they redact nothing.
    pub fn secret_values(&self) -> Vec<String> {
        self.secret_names
            .iter()
            .filter_map(|n| self.values.get(n))
            .filter(|v| !v.is_empty())
            .cloned()
            .collect()
    }
}

/// Why values could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarsError {
    /// The environment is not one the workflow declares.
    #[error("workflow `{workflow}` has no environment `{env}` (it has: {known})")]
    UnknownEnvironment {
        /// The workflow.
        workflow: String,
        /// The environment asked for.
        env: String,
        /// The declared ones, comma-separated.
        known: String,
    },
    /// `--var` named a var the workflow does not declare.
    #[error("--var {0}: the workflow declares no such variable")]
    UnknownVar(String),
    /// Declared vars without a value, each with where it could have come from.
    #[error("{} without a value:\n{}", if .0.len() == 1 { "a variable is" } else { "variables are" }, .0.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Missing(Vec<String>),
}

/// Resolves every declared var for a run in `env`.
///
/// `overrides` are the `--var` pairs; `getenv` reads the process environment (injected so
/// tests need not touch the real one); `stored` are values already pinned on the run, used
/// for non-secret vars when a later command re-resolves (the run must not change under a
/// changed environment).
pub fn resolve(
    workflow: &Workflow,
    env: &str,
    overrides: &BTreeMap<String, String>,
    stored: Option<&BTreeMap<String, String>>,
    getenv: impl Fn(&str) -> Option<String>,
) -> Result<Resolved, VarsError> {
    let environment = match workflow.environments.get(env) {
        Some(e) => Some(e),
        None if workflow.environments.is_empty() => None,
        None => {
            return Err(VarsError::UnknownEnvironment {
                workflow: workflow.name.clone(),
                env: env.to_owned(),
                known: workflow
                    .environments
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    };
    if let Some(unknown) = overrides.keys().find(|k| !workflow.vars.contains_key(*k)) {
        return Err(VarsError::UnknownVar(unknown.clone()));
    }
    let mut resolved = Resolved::default();
    let mut missing = Vec::new();
    for (name, var) in &workflow.vars {
        if var.secret {
            resolved.secret_names.push(name.clone());
        }
        let pinned = stored
            .filter(|_| !var.secret)
            .and_then(|s| s.get(name))
            .cloned();
        let value = pinned
            .or_else(|| overrides.get(name).cloned())
            .or_else(|| environment.and_then(|e| e.vars.get(name)).cloned())
            .or_else(|| var.from_env.as_deref().and_then(&getenv))
            .or_else(|| var.default.clone());
        match value {
            Some(v) => {
                resolved.values.insert(name.clone(), v);
            }
            None => missing.push(match (&var.from_env, stored.is_some() && var.secret) {
                // A later command re-resolving: secrets were never stored.
                (Some(e), true) => format!(
                    "`{name}` is secret and never stored: set ${e} in the environment of every command that evaluates guards or runs actions"
                ),
                (None, true) => format!(
                    "`{name}` is secret and never stored, and it has no `from_env`: only `waygate run` (one process) can use a value given with --var"
                ),
                (Some(e), false) => {
                    format!("`{name}`: set ${e} in the environment, or pass --var {name}=VALUE")
                }
                (None, false) => format!(
                    "`{name}`: pass --var {name}=VALUE, or give it a default or an environment value"
                ),
            }),
        }
    }
    if missing.is_empty() {
        Ok(resolved)
    } else {
        Err(VarsError::Missing(missing))
    }
}

/// Adds the built-ins `run.id`, `run.env`, `run.initiator`.
pub fn with_builtins(mut resolved: Resolved, run_id: &str, env: &str, initiator: &str) -> Resolved {
    resolved.values.insert("run.id".into(), run_id.into());
    resolved.values.insert("run.env".into(), env.into());
    resolved
        .values
        .insert("run.initiator".into(), initiator.into());
    resolved
}

/// Parses `K=V` from `--var`. The error does not repeat the text: without a name it cannot be
/// told from a secret (`--var "$DEPLOY_TOKEN"` with the `token=` forgotten), and errors end up
/// in CI logs.
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        Some(_) => Err(
            "expected NAME=VALUE, got a value with no name before `=` (the value is \
                        not shown: it may be a secret)"
                .to_owned(),
        ),
        None => Err(format!(
            "expected NAME=VALUE, got {} characters with no `=` (not shown: it may be a secret)",
            text.chars().count()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::validate;

    const FLOW: &str = r#"Workflow(
        name: "t", initial: "a",
        vars: {
            "url": (),
            "version": (default: "HEAD"),
            "token": (secret: true, from_env: "T_TOKEN"),
            "region": (from_env: "T_REGION", default: "eu"),
        },
        environments: { "staging": (vars: { "url": "http://s" }), "prod": () },
        states: { "a": (on_enter: [Command(run: ["x", "${url}", "${version}", "${token}", "${region}"])], on_failure: "z"), "z": (terminal: Failure) },
        transitions: [(from: "a", to: "z")],
    )"#;

    fn wf() -> Workflow {
        let v = validate("t.ron", FLOW);
        v.workflow.unwrap_or_else(|| panic!("{:#?}", v.diagnostics))
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn precedence_and_storable() {
        let w = wf();
        let mut over = BTreeMap::new();
        over.insert("version".to_owned(), "v2".to_owned());
        let r = resolve(
            &w,
            "staging",
            &over,
            None,
            env(&[("T_TOKEN", "s3cret"), ("T_REGION", "us")]),
        )
        .expect("resolves");
        assert_eq!(r.values["url"], "http://s");
        assert_eq!(r.values["version"], "v2");
        assert_eq!(r.values["region"], "us");
        assert_eq!(r.values["token"], "s3cret");
        assert!(
            !r.storable().contains_key("token"),
            "secrets are never storable"
        );
        assert_eq!(r.secret_values(), vec!["s3cret".to_owned()]);
    }

    #[test]
    fn missing_vars_are_each_named() {
        let err = resolve(&wf(), "prod", &BTreeMap::new(), None, env(&[])).expect_err("missing");
        let VarsError::Missing(list) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(list.len(), 2);
        assert!(
            list[0].contains("`url`") && list[1].contains("T_TOKEN"),
            "{list:?}"
        );
    }

    #[test]
    fn unknown_environment_and_var_are_refused() {
        let w = wf();
        assert!(matches!(
            resolve(&w, "qa", &BTreeMap::new(), None, env(&[])),
            Err(VarsError::UnknownEnvironment { .. })
        ));
        let mut over = BTreeMap::new();
        over.insert("nope".to_owned(), "1".to_owned());
        assert_eq!(
            resolve(&w, "staging", &over, None, env(&[])),
            Err(VarsError::UnknownVar("nope".into()))
        );
    }

    #[test]
    fn pinned_values_win_but_secrets_are_reread() {
        let w = wf();
        let mut pinned = BTreeMap::new();
        pinned.insert("url".to_owned(), "http://pinned".to_owned());
        pinned.insert("version".to_owned(), "v1".to_owned());
        pinned.insert("region".to_owned(), "eu".to_owned());
        let r = resolve(
            &w,
            "staging",
            &BTreeMap::new(),
            Some(&pinned),
            env(&[("T_TOKEN", "new")]),
        )
        .expect("resolves");
        assert_eq!(r.values["url"], "http://pinned");
        assert_eq!(r.values["token"], "new");

        // A later command without the secret in its environment is told why it must be there.
        let err = resolve(&w, "staging", &BTreeMap::new(), Some(&pinned), env(&[]))
            .expect_err("secret missing");
        assert_eq!(
            err,
            VarsError::Missing(vec![
                "`token` is secret and never stored: set $T_TOKEN in the environment of every command that evaluates guards or runs actions".into()
            ])
        );
    }

    #[test]
    fn assignments_parse() {
        assert_eq!(parse_assignment("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_assignment("=x").is_err());
        assert!(parse_assignment("novalue").is_err());
    }
}
