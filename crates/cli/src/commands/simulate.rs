//! `waygate simulate FILE --env ENV`: every path from the initial state to each terminal
//! state, with the guards each step needs and its least and most time (`core::simulate` owns
//! the rules; this renders them). Nothing runs and no store is opened.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use waygate_core::duration::format_duration;
use waygate_core::model::{Check, Guard, Workflow};
use waygate_core::simulate::{simulate, Limits, Move, Simulation, Span, Step};
use waygate_core::template::Template;
use waygate_core::text::escape_control;
use waygate_core::vars::{self, VarsError};

use waygate_core::text::{shell_word, ShellReader};

use crate::cli::Format;
use crate::exit::{CliError, Exit};
use crate::workflow;
use waygate_view::labels::guard_label;

/// Runs the command.
pub fn run(file: &Path, env: &str, format: Format) -> Result<Exit, CliError> {
    let loaded = workflow::load(file)?;
    let w = &loaded.workflow;
    // The environment must be one of the workflow's; its values show in the guards. A value
    // read from the process environment at run time shows as that variable (`$TEAM_CHAT_ID`);
    // with a value missing altogether, every `${var}` shows as written.
    let values = match vars::resolve(w, env, &BTreeMap::new(), None, |e| Some(format!("${e}"))) {
        Ok(r) => vars::with_builtins(r, "${run.id}", env, "${run.initiator}").values,
        Err(e @ VarsError::UnknownEnvironment { .. }) => {
            return Err(CliError::BadInput(e.to_string()))
        }
        Err(_) => BTreeMap::from([("run.env".to_owned(), env.to_owned())]),
    };
    let shown = Shown { w, values };
    let sim = simulate(w, Limits::default());
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&shown.json(&sim, env)).map_err(std::io::Error::from)?
        )?,
        _ => out.write_all(shown.human(&sim, env).as_bytes())?,
    }
    if sim.truncated.is_some() {
        eprintln!(
            "note: stopped at the limit of {} paths or {} steps looked at; more paths exist \
             (a graph with this many paths has too many to list)",
            Limits::default().paths,
            Limits::default().steps
        );
    }
    Ok(Exit::Ok)
}

/// What the output needs to name things.
struct Shown<'w> {
    w: &'w Workflow,
    values: BTreeMap<String, String>,
}

fn time(d: Option<Duration>) -> String {
    d.map_or_else(|| "unbounded".to_owned(), format_duration)
}

fn millis(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| {
        json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    })
}

fn by(m: Move) -> &'static str {
    match m {
        Move::Transition(_) => "transition",
        Move::OnFailure => "on_failure",
        Move::Fallback => "rollback",
    }
}

impl Shown<'_> {
    /// A template with the environment's values, secrets masked; as written where a value is
    /// not known here.
    fn render(&self, t: &Template) -> String {
        t.render_redacted(
            |n| self.values.get(n).map(String::as_str),
            |n| self.w.is_secret(n),
        )
        .unwrap_or_else(|_| t.source().to_owned())
    }

    /// A guard as the graph shows it, with where it looks in this environment.
    fn guard(&self, g: &Guard) -> String {
        let label = guard_label(g);
        let target = match &g.check {
            Check::Http(h) => Some(format!("{} {}", h.method, self.render(&h.url))),
            Check::Command(c) => Some(
                c.run
                    .iter()
                    .map(|a| shell_word(&self.render(a), ShellReader::Person))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => None,
        };
        let retry = (g.retry.attempts > 1).then(|| {
            format!(
                ", {} tries {} apart",
                g.retry.attempts,
                format_duration(g.retry.delay)
            )
        });
        match target {
            Some(t) => format!(
                "{label}: {}{}",
                escape_control(&t),
                retry.unwrap_or_default()
            ),
            None => label,
        }
    }

    fn guards(&self, step: &Step) -> Vec<&Guard> {
        match step.by {
            Move::Transition(e) => self.w.graph[e].guards.iter().collect(),
            _ => Vec::new(),
        }
    }

    fn json(&self, sim: &Simulation, env: &str) -> Value {
        let span = |t: Span| {
            json!({
                "least": format_duration(t.least),
                "most": time(t.most),
                "least_ms": millis(Some(t.least)),
                "most_ms": millis(t.most),
            })
        };
        let paths: Vec<Value> = sim
            .paths
            .iter()
            .map(|p| {
                let steps: Vec<Value> = p
                    .steps
                    .iter()
                    .map(|s| {
                        let mut v = json!({
                            "from": self.w.state(s.from).name,
                            "to": self.w.state(s.to).name,
                            "by": by(s.by),
                            "guards": self.guards(s).iter().map(|g| json!({
                                "name": g.name,
                                "kind": g.check.kind(),
                                "detail": self.guard(g),
                            })).collect::<Vec<_>>(),
                            "time": span(s.time),
                        });
                        if let Some(why) = &s.impossible {
                            v["impossible"] = json!(why);
                        }
                        v
                    })
                    .collect();
                json!({
                    "end": self.w.state(p.end).name,
                    "terminal": format!("{:?}", p.terminal),
                    "time": span(p.time),
                    "impossible": p.impossible(),
                    "steps": steps,
                })
            })
            .collect();
        json!({
            "workflow": self.w.name,
            "env": env,
            "paths": paths,
            "loops": sim.loops.iter().map(|&(a, b, m)| json!({
                "from": self.w.state(a).name,
                "to": self.w.state(b).name,
                "by": by(m),
            })).collect::<Vec<_>>(),
            "truncated": sim.truncated.map(|l| json!({"paths": l.paths, "steps": l.steps})),
        })
    }

    fn human(&self, sim: &Simulation, env: &str) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} in {}: {} path{} from `{}` to a terminal state{}",
            escape_control(&self.w.name),
            escape_control(env),
            sim.paths.len(),
            if sim.paths.len() == 1 { "" } else { "s" },
            escape_control(&self.w.state(self.w.initial).name),
            if sim.truncated.is_some() {
                " (stopped at the limit: more exist)"
            } else {
                ""
            }
        );
        for (i, p) in sim.paths.iter().enumerate() {
            let _ = writeln!(
                out,
                "\npath {}: to `{}` ({:?}), {} .. {}{}",
                i + 1,
                escape_control(&self.w.state(p.end).name),
                p.terminal,
                format_duration(p.time.least),
                time(p.time.most),
                if p.impossible() { ", IMPOSSIBLE" } else { "" }
            );
            for s in &p.steps {
                let how = match s.by {
                    Move::Transition(_) => "",
                    Move::OnFailure => " (on_failure)",
                    Move::Fallback => " (incident, to the rollback)",
                };
                let _ = writeln!(
                    out,
                    "  {} -> {}{how}   {} .. {}",
                    escape_control(&self.w.state(s.from).name),
                    escape_control(&self.w.state(s.to).name),
                    format_duration(s.time.least),
                    time(s.time.most)
                );
                for g in self.guards(s) {
                    let _ = writeln!(out, "      {}", self.guard(g));
                }
                if let Some(why) = &s.impossible {
                    let _ = writeln!(out, "      impossible: {why}");
                }
            }
        }
        if !sim.loops.is_empty() {
            let _ = writeln!(out, "\nloops, not followed:");
            for &(a, b, m) in &sim.loops {
                let _ = writeln!(
                    out,
                    "  {} -> {} ({})",
                    escape_control(&self.w.state(a).name),
                    escape_control(&self.w.state(b).name),
                    by(m)
                );
            }
        }
        out
    }
}
