//! The commands that act on runs: start, run, check, advance, approve, drive, rollback, abort.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use waygate_core::ending::{ending, Ending, How};
use waygate_core::entry::{action_histories, decide_entry, Entry, Rerun};
use waygate_core::event::EventKind;
use waygate_core::model::Workflow;
use waygate_core::run::{RunId, RunStatus};
use waygate_core::text::escape_control;
use waygate_core::vars::parse_assignment;
use waygate_executor::engine::{DriveEnd, DryRun, Loaded, StepOutcome, TransitionReport};
use waygate_executor::{EngineError, Signal};

use crate::app::run_id;
use crate::cli::{Format, StartArgs};
use crate::exit::{CliError, Exit};
use crate::ops::{Approval, GuardOverride, Ops, Start};
use crate::output::{self, guard_lines};

/// `start`: creates the run, prints its id.
pub async fn start(ops: &Ops, args: &StartArgs) -> Result<Exit, CliError> {
    let (id, overrides, workflow) = create(ops, args).await?;
    let Some(workflow) = workflow else {
        return print_run_id(ops, &id);
    };
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
    print_run_id(ops, &id)
}

fn print_run_id(ops: &Ops, id: &str) -> Result<Exit, CliError> {
    match ops.format() {
        Format::Human | Format::Csv => output::print_line(id)?,
        _ => output::json(&json!({ "run_id": id }))?,
    }
    Ok(Exit::Ok)
}

/// Starts the run; returns its id, the `--var` values (secrets among them are needed
/// again by a `drive` in the same process, since they are never stored) and, when some were
/// given, the workflow.
async fn create(
    ops: &Ops,
    args: &StartArgs,
) -> Result<(String, BTreeMap<String, String>, Option<Arc<Workflow>>), CliError> {
    let mut overrides = BTreeMap::new();
    for v in &args.vars {
        let (k, v) = parse_assignment(v).map_err(|e| CliError::BadInput(format!("--var: {e}")))?;
        overrides.insert(k, v);
    }
    let start = Start {
        workflow: &args.file,
        env: &args.env,
        vars: &overrides,
    };
    let run = ops.start(start).await?;
    let workflow = if overrides.is_empty() {
        None
    } else {
        let workflow = ops.load(&run.id).await?.workflow;
        warn_secrets_on_command_line(&workflow, &overrides);
        Some(workflow)
    };
    Ok((run.id.to_string(), overrides, workflow))
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
pub async fn run(ops: &Ops, args: &StartArgs, no_wait: bool) -> Result<Exit, CliError> {
    let (id, overrides, _) = create(ops, args).await?;
    eprintln!("started run {}", escape_control(&id));
    drive_with(ops, &id, no_wait, overrides).await
}

/// `drive`: until the run ends, printing progress to stderr.
pub async fn drive(ops: &Ops, id: &str, no_wait: bool) -> Result<Exit, CliError> {
    drive_with(ops, id, no_wait, BTreeMap::new()).await
}

async fn drive_with(
    ops: &Ops,
    id: &str,
    no_wait: bool,
    vars: BTreeMap<String, String>,
) -> Result<Exit, CliError> {
    let id = run_id(id);
    ops.stop_on_signals();
    let already_ended = ops.load(&id).await?.run.status.is_ended();
    let end = ops.drive(&id, no_wait, vars).await?;
    let (loaded, running) = ops.status(&id).await?;
    let run = &loaded.run;
    let exit = Exit::of_drive(&end);
    let message: Message = match &end {
        DriveEnd::Ended { .. } => match ending(&loaded.workflow, run, &loaded.events) {
            Some(ending) => ending_message(&ending, &id, already_ended),
            None => format!("run {id} is in `{}` ({})", run.state, run.status).into(),
        },
        DriveEnd::Waiting => format!("run {id} is waiting in `{}`", run.state).into(),
        DriveEnd::Blocked { state } => {
            format!("run {id} is stuck in `{state}`: guards fail and the state has no on_failure")
                .into()
        }
        DriveEnd::Interrupted { signal, .. } => {
            interrupted_message(&loaded, *signal, running).into()
        }
    };
    match ops.format() {
        Format::Human | Format::Csv => output::print(&message.human())?,
        _ => output::json(&json!({
            "run_id": id,
            "state": run.state,
            "status": run.status,
            "exit": exit as u8,
            "message": message.text,
            "warnings": message.warnings,
        }))?,
    }
    Ok(exit)
}

/// What a command says: one line, and warnings (each a line of its own). Untrusted text in
/// them (names, reasons, details) is escaped when printed for people, line by line, so none
/// can fake a line; JSON gets them exact (`message`, `warnings`).
#[derive(Debug, Default)]
struct Message {
    text: String,
    warnings: Vec<String>,
}

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message {
            text,
            warnings: Vec::new(),
        }
    }
}

impl Message {
    /// The lines for people, escaped, each ending in a line break.
    fn human(&self) -> String {
        let mut out = format!("{}\n", escape_control(&self.text));
        for w in &self.warnings {
            out.push_str(&format!("warning: {}\n", escape_control(w)));
        }
        out
    }
}

/// How a run ended, for people: the state, the status, who aborted it and why, and as
/// warnings every action of the final state that failed (a terminal state's failed actions
/// do not change how the run ended, but are never silent).
fn ending_message(ending: &Ending, id: &RunId, already: bool) -> Message {
    let state = &ending.state;
    let mut text = if already {
        format!("run {id} had already ended: ")
    } else {
        format!("run {id} ")
    };
    text.push_str(&match (&ending.how, ending.status) {
        (How::Aborted { by, reason }, _) => {
            let by = if by.is_empty() { "someone" } else { by };
            let how = if already { "" } else { " by another command" };
            format!("was aborted in `{state}`{how} (by {by}: {reason})")
        }
        (How::InPlace, _) => {
            format!("failed in `{state}`: there was no on_failure or rollback to go to")
        }
        (How::Terminal, RunStatus::Succeeded) => format!("succeeded in `{state}`"),
        (How::Terminal, status) => format!("ended {status} in `{state}`"),
    });
    let warnings = ending
        .failed_actions
        .iter()
        .map(|failed| {
            format!(
                "action {} of `{state}` ({}) failed: {}",
                failed.number, failed.action, failed.detail
            )
        })
        .collect();
    Message { text, warnings }
}

/// What an operator's signal stopped and exactly what resuming does, from the run as the
/// journal now says ([`decide_entry`] owns the rule). `running_elsewhere`: another process
/// holds the run's lock, running its entry actions.
fn interrupted_message(loaded: &Loaded, signal: Signal, running_elsewhere: bool) -> String {
    let (id, state) = (&loaded.run.id, &loaded.run.state);
    let stopped = format!("interrupted by {signal}; run {id} is in `{state}`");
    if loaded.run.status.is_ended() {
        return format!("{stopped} and has ended ({})", loaded.run.status);
    }
    let node = loaded.workflow.state(loaded.state);
    let histories = action_histories(loaded.visit_events(), state, node.on_enter.len());
    let action = |index: usize| {
        let what = histories[index]
            .description
            .as_deref()
            .map_or_else(String::new, |d| format!(" ({d})"));
        format!("action {} of `{state}`{what}", index + 1)
    };
    let resume = format!("`waygate drive {id}`");
    let next = match decide_entry(&loaded.workflow, loaded.state, &loaded.events, &histories) {
        Entry::Run {
            index,
            rerun: Some(Rerun::Interrupted { .. }),
        } => format!(
            "{} was stopped and is recorded as interrupted, not failed; {resume} runs it again \
             from its start (actions run at least once), then carries on",
            action(index)
        ),
        Entry::Run { .. } if running_elsewhere => format!(
            "another waygate process is running its entry actions; {resume} waits for it, then \
             carries on"
        ),
        Entry::Run { index, .. } => {
            format!("{resume} runs {} next, then carries on", action(index))
        }
        Entry::Complete => format!(
            "its entry is complete; {resume} evaluates the guards of `{state}` again and \
             carries on"
        ),
        _ => format!("{resume} carries on from there"),
    };
    format!("{stopped}: {next}")
}

fn reports_json(reports: &[TransitionReport]) -> serde_json::Value {
    json!(reports
        .iter()
        .map(|r| json!({
            "to": r.to,
            "passed": r.passed(),
            "guards": r.results,
        }))
        .collect::<Vec<_>>())
}

fn reports_human(reports: &[TransitionReport]) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!(
            "  {} -> {}\n",
            escape_control(&r.from),
            escape_control(&r.to)
        ));
        out.push_str(&guard_lines(&r.results));
    }
    out
}

/// `check`: a dry run.
pub async fn check(ops: &Ops, id: &str, to: Option<&str>) -> Result<Exit, CliError> {
    let rid = run_id(id);
    ops.stop_on_signals();
    let DryRun {
        loaded,
        reports,
        decision,
    } = match ops.dry_run(&rid, to).await {
        // Its guards' processes are gone with the evaluation; a dry run leaves nothing else.
        Err(CliError::Engine(EngineError::Interrupted { signal, .. })) => {
            let message = format!("interrupted by {signal}; a dry run, nothing was recorded");
            return print_message(ops, &rid, Exit::of_interrupted(), message.into()).await;
        }
        other => other?,
    };
    let exit = Exit::of_check(&decision);
    match ops.format() {
        Format::Human | Format::Csv => {
            let mut text = format!(
                "run {} in `{}` (dry run, nothing recorded)\n",
                escape_control(loaded.run.id.as_str()),
                escape_control(&loaded.run.state)
            );
            text.push_str(&reports_human(&reports));
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
pub async fn advance(ops: &Ops, id: &str, to: Option<&str>) -> Result<Exit, CliError> {
    let rid = run_id(id);
    ops.stop_on_signals();
    let (outcome, reports) = match ops.advance(&rid, to).await {
        Err(CliError::Engine(EngineError::Interrupted { signal, .. })) => {
            return interrupted(ops, &rid, signal).await
        }
        // Another command ended the run while this one worked (an abort during an entry
        // action): say how, and by whom, rather than "version conflict". Still exit 5.
        Err(e) if e.exit() == Exit::Conflict => {
            let loaded = ops.load(&rid).await?;
            match ending(&loaded.workflow, &loaded.run, &loaded.events) {
                Some(end) => {
                    return print_message(
                        ops,
                        &rid,
                        Exit::Conflict,
                        ending_message(&end, &rid, false),
                    )
                    .await
                }
                None => return Err(e),
            }
        }
        other => other?,
    };
    let (exit, message) = step_message(ops, &rid, &outcome).await?;
    match ops.format() {
        Format::Human | Format::Csv => {
            let mut text = reports_human(&reports);
            text.push_str(&message.human());
            output::print(&text)?;
        }
        _ => {
            let run = ops.load(&rid).await?.run;
            output::json(&json!({
                "run_id": rid,
                "state": run.state,
                "status": run.status,
                "transitions": reports_json(&reports),
                "exit": exit as u8,
                "message": message.text,
                "warnings": message.warnings,
            }))?
        }
    }
    Ok(exit)
}

/// An operator's signal stopped `advance` or `rollback`: say what was stopped and how to
/// resume (exit 4, as for `drive`).
async fn interrupted(ops: &Ops, rid: &RunId, signal: Signal) -> Result<Exit, CliError> {
    let (loaded, running) = ops.status(rid).await?;
    print_message(
        ops,
        rid,
        Exit::of_interrupted(),
        interrupted_message(&loaded, signal, running).into(),
    )
    .await
}

/// What one step did, for people; the exit code is [`Exit::of_step`]'s.
async fn step_message(
    ops: &Ops,
    rid: &RunId,
    outcome: &StepOutcome,
) -> Result<(Exit, Message), CliError> {
    let exit = Exit::of_step(outcome);
    let message: Message = match outcome {
        StepOutcome::Moved { from, to, cause } => {
            let name = cause.as_str();
            // Why a failure moved it, from the journal's record of the last move.
            let loaded = ops.load(rid).await?;
            let reason = loaded.events.iter().rev().find_map(|e| match &e.kind {
                EventKind::Transitioned {
                    to: t,
                    reason: Some(r),
                    ..
                } if t == to && cause.is_failure() => Some(r.clone()),
                _ => None,
            });
            match reason {
                Some(r) => format!("moved `{from}` -> `{to}` ({name}: {r})").into(),
                None => format!("moved `{from}` -> `{to}` ({name})").into(),
            }
        }
        StepOutcome::Ended { .. } => {
            let loaded = ops.load(rid).await?;
            match ending(&loaded.workflow, &loaded.run, &loaded.events) {
                Some(ending) => ending_message(&ending, rid, false),
                None => format!("run is in `{}`", loaded.run.state).into(),
            }
        }
        // The state the step judged: another command may have moved the run since this one
        // began.
        StepOutcome::Waiting {
            state, retry_at, ..
        } => {
            let state = judged(ops, rid, state).await?;
            match retry_at {
                Some(t) => format!(
                    "waiting in `{state}`; look again after {}",
                    output::time(*t)
                )
                .into(),
                None => format!("waiting in `{state}`").into(),
            }
        }
        StepOutcome::Blocked { state } => format!(
            "guards failed; still in `{}`",
            judged(ops, rid, state).await?
        )
        .into(),
    };
    Ok((exit, message))
}

/// The state a step judged, as its outcome names it; a server from before outcomes named it
/// leaves it empty, and then it is the run's state now.
async fn judged(ops: &Ops, rid: &RunId, state: &str) -> Result<String, CliError> {
    match state {
        "" => Ok(ops.load(rid).await?.run.state),
        state => Ok(state.to_owned()),
    }
}

/// `approve` and `approve --withdraw`.
pub async fn approve(ops: &Ops, id: &str, approval: Approval) -> Result<Exit, CliError> {
    let rid = run_id(id);
    let (guard, withdraw) = (approval.guard.clone(), approval.withdraw);
    let (outcome, actor) = ops.approve(&rid, approval).await?;
    let have = outcome.approvers.len();
    let who = if have == 0 {
        String::new()
    } else {
        format!(": {}", outcome.approvers.join(", "))
    };
    match ops.format() {
        Format::Human | Format::Csv => output::print_line(&format!(
            "{} {} `{guard}` on run {rid} ({} of {} needed{who})",
            actor,
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
            "actor": actor,
            "withdrawn": withdraw,
            "approvers": outcome.approvers,
            "min": outcome.min,
        }))?,
    }
    Ok(Exit::Ok)
}

/// `override`: loud on purpose, in every format (`print_line` escapes the reason and the
/// check's words for people).
pub async fn override_guard(
    ops: &Ops,
    id: &str,
    guard: &str,
    reason: &str,
) -> Result<Exit, CliError> {
    let rid = run_id(id);
    let (target, actor) = ops
        .override_guard(&rid, GuardOverride { guard, reason })
        .await?;
    match ops.format() {
        Format::Human | Format::Csv => output::print_line(&format!(
            "OVERRIDDEN: {} marked `{}` (-> `{}`) passed for this visit of run {rid}'s state; \
             the check said {}; reason: {}",
            actor, guard, target.to, target.said, reason,
        ))?,
        _ => output::json(&json!({
            "run_id": rid,
            "guard": guard,
            "to": target.to,
            "actor": actor,
            "reason": reason,
            "said": target.said,
        }))?,
    }
    Ok(Exit::Ok)
}

/// `rollback`.
pub async fn rollback(ops: &Ops, id: &str, reason: &str) -> Result<Exit, CliError> {
    let rid = run_id(id);
    ops.stop_on_signals();
    let outcome = match ops.rollback(&rid, reason).await {
        Err(CliError::Engine(EngineError::Interrupted { signal, .. })) => {
            return interrupted(ops, &rid, signal).await
        }
        other => other?,
    };
    let (exit, message) = step_message(ops, &rid, &outcome).await?;
    print_message(ops, &rid, exit, message).await
}

/// `abort`.
pub async fn abort(ops: &Ops, id: &str, reason: &str) -> Result<Exit, CliError> {
    let rid = run_id(id);
    let run = ops.abort(&rid, reason).await?;
    print_message(
        ops,
        &rid,
        Exit::Ok,
        format!("run {rid} aborted in `{}`", run.state).into(),
    )
    .await
}

/// Prints `message` (for JSON with the run's state and status and the exit code) and returns
/// `exit`.
async fn print_message(
    ops: &Ops,
    rid: &waygate_core::run::RunId,
    exit: Exit,
    message: Message,
) -> Result<Exit, CliError> {
    match ops.format() {
        Format::Human | Format::Csv => output::print(&message.human())?,
        _ => {
            let run = ops.load(rid).await?.run;
            output::json(&json!({
                "run_id": rid,
                "state": run.state,
                "status": run.status,
                "exit": exit as u8,
                "message": message.text,
                "warnings": message.warnings,
            }))?
        }
    }
    Ok(exit)
}
