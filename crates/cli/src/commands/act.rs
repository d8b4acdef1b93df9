//! The commands that act on runs: start, run, check, advance, approve, drive, rollback, abort.

use std::collections::BTreeMap;

use serde_json::json;
use waygate_core::model::Workflow;
use waygate_core::outcome::Outcome;
use waygate_core::run::RunStatus;
use waygate_core::text::escape_control;
use waygate_core::vars::parse_assignment;
use waygate_executor::engine::{DriveEnd, DriveOptions, Engine, StepOutcome, TransitionReport};

use crate::app::{run_id, App};
use crate::cli::{Format, StartArgs};
use crate::exit::{CliError, Exit};
use crate::output::{self, guard_lines};
use crate::progress::Sink;
use crate::workflow;

/// `start`: creates the run, prints its id.
pub async fn start(app: &App, args: &StartArgs) -> Result<Exit, CliError> {
    let (id, overrides, workflow) = create(app, args).await?;
    for name in overrides.keys() {
        let Some(var) = workflow.vars.get(name).filter(|v| v.secret) else {
            continue;
        };
        let later = match &var.from_env {
            Some(e) => format!("later commands need ${e} set"),
            None => "it has no `from_env`, so only `waygate run` can use a value given here".into(),
        };
        eprintln!(
            "{}",
            escape_control(&format!(
                "note: `{name}` is secret and is not stored; {later}"
            ))
        );
    }
    match app.format {
        Format::Human | Format::Csv => output::print_line(&id)?,
        _ => output::json(&json!({ "run_id": id }))?,
    }
    Ok(Exit::Ok)
}

/// Starts the run; returns its id, the `--var` values (secrets among them are needed
/// again by a `drive` in the same process, since they are never stored) and the workflow.
async fn create(
    app: &App,
    args: &StartArgs,
) -> Result<(String, BTreeMap<String, String>, Workflow), CliError> {
    let loaded = workflow::load(&args.file)?;
    let mut overrides = BTreeMap::new();
    for v in &args.vars {
        let (k, v) = parse_assignment(v).map_err(|e| CliError::BadInput(format!("--var: {e}")))?;
        overrides.insert(k, v);
    }
    warn_secrets_on_command_line(&loaded.workflow, &overrides);
    let started = app
        .engine()?
        .start(
            &loaded.workflow,
            &loaded.file,
            &loaded.text,
            &args.env,
            &overrides,
        )
        .await?;
    Ok((started.run.id.to_string(), overrides, loaded.workflow))
}

/// A secret given with `--var` is in this process's arguments, which every local user can
/// read (`ps`) while it runs: said once, with where the value belongs instead.
fn warn_secrets_on_command_line(workflow: &Workflow, overrides: &BTreeMap<String, String>) {
    for name in overrides.keys() {
        let Some(var) = workflow.vars.get(name).filter(|v| v.secret) else {
            continue;
        };
        let instead = match &var.from_env {
            Some(e) => format!("set ${e} (its `from_env`) instead"),
            None => "give it a `from_env` in the workflow and set that variable instead".into(),
        };
        eprintln!(
            "{}",
            escape_control(&format!(
                "warning: `{name}` is secret, and `--var` shows it to every local user in the process list; {instead}"
            ))
        );
    }
}

/// `run`: start, then drive.
pub async fn run(app: &App, args: &StartArgs, no_wait: bool) -> Result<Exit, CliError> {
    let (id, overrides, _) = create(app, args).await?;
    eprintln!("started run {}", escape_control(&id));
    drive_with(app, app.engine()?.with_overrides(overrides), &id, no_wait).await
}

/// `drive`: until the run ends, printing progress to stderr.
pub async fn drive(app: &App, id: &str, no_wait: bool) -> Result<Exit, CliError> {
    drive_with(app, app.engine()?, id, no_wait).await
}

async fn drive_with(app: &App, engine: Engine, id: &str, no_wait: bool) -> Result<Exit, CliError> {
    let id = run_id(id);
    let mut sink = Sink::new();
    let options = DriveOptions {
        no_wait,
        ..DriveOptions::default()
    };
    let shutdown = async {
        // If the signal handler cannot be installed, drive simply cannot be interrupted early.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        // Ctrl-C also ends any wait for a store a neighbour holds: the operator wants out.
        app.stop_waiting.stop();
    };
    let end = engine.drive(&id, options, &mut sink, shutdown).await?;
    sink.finish();
    let run = app.store.load_run(&id)?;
    let (exit, message) = match &end {
        DriveEnd::Ended {
            status: RunStatus::Succeeded,
            state,
            ..
        } => (Exit::Ok, format!("run {id} succeeded in `{state}`")),
        DriveEnd::Ended {
            status: RunStatus::Aborted,
            state,
            ..
        } => (
            Exit::Conflict,
            format!("run {id} was aborted in `{state}` by another command"),
        ),
        DriveEnd::Ended {
            in_place: true,
            state,
            ..
        } => (
            Exit::GuardsFailed,
            format!("run {id} failed in `{state}`: there was no on_failure or rollback to go to"),
        ),
        DriveEnd::Ended { status, state, .. } => (
            Exit::FailedTerminal,
            format!("run {id} ended {} in `{state}`", status.as_str()),
        ),
        DriveEnd::Waiting => (
            Exit::Waiting,
            format!("run {id} is waiting in `{}`", run.state),
        ),
        DriveEnd::Blocked { state } => (
            Exit::GuardsFailed,
            format!("run {id} is stuck in `{state}`: guards fail and the state has no on_failure"),
        ),
        DriveEnd::Interrupted => (
            Exit::Waiting,
            format!(
                "interrupted; run {id} is in `{}`: `waygate drive {id}` resumes it",
                run.state
            ),
        ),
    };
    match app.format {
        Format::Human | Format::Csv => output::print_line(&message)?,
        _ => output::json(&json!({
            "run_id": id,
            "state": run.state,
            "status": run.status,
            "exit": exit as u8,
            "message": message,
        }))?,
    }
    Ok(exit)
}

fn reports_json(reports: &[TransitionReport]) -> serde_json::Value {
    json!(reports
        .iter()
        .map(|r| json!({
            "to": r.to,
            "passed": r.results.iter().all(|g| g.outcome == Outcome::Pass),
            "guards": r.results,
        }))
        .collect::<Vec<_>>())
}

fn reports_human(state: &str, reports: &[TransitionReport]) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!(
            "  {} -> {}\n",
            escape_control(state),
            escape_control(&r.to)
        ));
        out.push_str(&guard_lines(&r.results));
    }
    out
}

/// What a set of evaluations would mean for `advance`: 0 a transition passes, 4 waiting, 3 not.
fn verdict(reports: &[TransitionReport]) -> Exit {
    let passes = |r: &TransitionReport| r.results.iter().all(|g| g.outcome == Outcome::Pass);
    let waits = |r: &TransitionReport| {
        !r.results.iter().any(|g| g.outcome == Outcome::Fail)
            && r.results.iter().any(|g| g.outcome == Outcome::Waiting)
    };
    if reports.iter().any(passes) {
        Exit::Ok
    } else if reports.iter().any(waits) {
        Exit::Waiting
    } else {
        Exit::GuardsFailed
    }
}

/// `check`: a dry run.
pub async fn check(app: &App, id: &str, to: Option<&str>) -> Result<Exit, CliError> {
    let (loaded, reports) = app.reader().check(&run_id(id), to).await?;
    let exit = if loaded.run.status.is_ended() {
        Exit::Error
    } else {
        verdict(&reports)
    };
    match app.format {
        Format::Human | Format::Csv => {
            let mut text = format!(
                "run {} in `{}` (dry run, nothing recorded)\n",
                escape_control(loaded.run.id.as_str()),
                escape_control(&loaded.run.state)
            );
            text.push_str(&reports_human(&loaded.run.state, &reports));
            if reports.is_empty() {
                text.push_str("  no outgoing transitions\n");
            }
            output::print(&text)?;
        }
        _ => output::json(&json!({
            "run_id": loaded.run.id,
            "state": loaded.run.state,
            "transitions": reports_json(&reports),
        }))?,
    }
    Ok(exit)
}

/// `advance`: one step.
pub async fn advance(app: &App, id: &str, to: Option<&str>) -> Result<Exit, CliError> {
    let rid = run_id(id);
    let engine = app.engine()?;
    let before = app.store.load_run(&rid)?;
    let (outcome, reports) = engine.advance(&rid, to).await?;
    let (exit, message) = step_message(&before.state, &outcome);
    match app.format {
        Format::Human | Format::Csv => {
            let mut text = reports_human(&before.state, &reports);
            text.push_str(&escape_control(&message));
            text.push('\n');
            output::print(&text)?;
        }
        _ => {
            let run = app.store.load_run(&rid)?;
            output::json(&json!({
                "run_id": rid,
                "state": run.state,
                "status": run.status,
                "transitions": reports_json(&reports),
                "exit": exit as u8,
                "message": message,
            }))?
        }
    }
    Ok(exit)
}

fn step_message(state: &str, outcome: &StepOutcome) -> (Exit, String) {
    match outcome {
        StepOutcome::Moved { from, to, cause } => {
            let cause = serde_json::to_value(cause)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            (
                Exit::Ok,
                format!("moved `{from}` -> `{to}` ({})", cause.unwrap_or_default()),
            )
        }
        StepOutcome::Ended {
            state,
            status: RunStatus::Succeeded,
            ..
        } => (Exit::Ok, format!("run succeeded in `{state}`")),
        StepOutcome::Ended {
            state,
            in_place: true,
            ..
        } => (
            Exit::GuardsFailed,
            format!("run failed in `{state}` (no on_failure or rollback)"),
        ),
        StepOutcome::Ended { state, status, .. } => (
            Exit::FailedTerminal,
            format!("run ended {} in `{state}`", status.as_str()),
        ),
        StepOutcome::Waiting { retry_at, .. } => (
            Exit::Waiting,
            match retry_at {
                Some(t) => format!(
                    "waiting in `{state}`; look again after {}",
                    output::time(*t)
                ),
                None => format!("waiting in `{state}`"),
            },
        ),
        StepOutcome::Blocked => (
            Exit::GuardsFailed,
            format!("guards failed; still in `{state}`"),
        ),
    }
}

/// `approve` and `approve --withdraw`.
pub async fn approve(
    app: &App,
    id: &str,
    guard: &str,
    comment: Option<String>,
    withdraw: bool,
) -> Result<Exit, CliError> {
    let rid = run_id(id);
    let engine = app.engine()?;
    let outcome = if withdraw {
        engine.withdraw(&rid, guard, comment).await?
    } else {
        engine.approve(&rid, guard, comment).await?
    };
    let have = outcome.approvers.len();
    let who = if have == 0 {
        String::new()
    } else {
        format!(": {}", outcome.approvers.join(", "))
    };
    match app.format {
        Format::Human | Format::Csv => output::print_line(&format!(
            "{} {} `{guard}` on run {rid} ({} of {} needed{who})",
            engine.actor(),
            if withdraw {
                "withdrew the approval of"
            } else {
                "approved"
            },
            have.min(outcome.min as usize),
            outcome.min,
        ))?,
        _ => output::json(&json!({
            "run_id": rid,
            "guard": guard,
            "actor": engine.actor(),
            "withdrawn": withdraw,
            "approvers": outcome.approvers,
            "min": outcome.min,
        }))?,
    }
    Ok(Exit::Ok)
}

/// `rollback`.
pub async fn rollback(app: &App, id: &str, reason: &str) -> Result<Exit, CliError> {
    let rid = run_id(id);
    let before = app.store.load_run(&rid)?;
    let outcome = app.engine()?.rollback(&rid, reason).await?;
    let (exit, message) = step_message(&before.state, &outcome);
    finish_simple(app, &rid, exit, message)
}

/// `abort`.
pub async fn abort(app: &App, id: &str, reason: &str) -> Result<Exit, CliError> {
    let rid = run_id(id);
    let run = app.engine()?.abort(&rid, reason).await?;
    finish_simple(
        app,
        &rid,
        Exit::Ok,
        format!("run {rid} aborted in `{}`", run.state),
    )
}

fn finish_simple(
    app: &App,
    rid: &waygate_core::run::RunId,
    exit: Exit,
    message: String,
) -> Result<Exit, CliError> {
    match app.format {
        Format::Human | Format::Csv => output::print_line(&message)?,
        _ => {
            let run = app.store.load_run(rid)?;
            output::json(
                &json!({ "run_id": rid, "state": run.state, "status": run.status, "message": message }),
            )?
        }
    }
    Ok(exit)
}
