//! The commands that read: status, runs, history, audit, audit verify.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;
use waygate_core::approval::pending as pending_approvals;
use waygate_core::decide::{apply_overrides, overrides, passage, Passage};
use waygate_core::entry::{action_histories, ActionStatus};
use waygate_core::event::{Event, EventKind};
use waygate_core::outcome::{GuardResult, Outcome};
use waygate_core::run::{Run, RunId, RunStatus};
use waygate_core::store::{EventFilter, RunFilter};
use waygate_core::text::escape_control;
use waygate_executor::engine::Loaded;
use waygate_executor::GuardContext;

use crate::app::run_id;
use crate::cli::{AuditArgs, AuditCommand, Format};
use crate::exit::{CliError, Exit};
use crate::ops::Ops;
use crate::output::{self, event_summary, guard_lines, Table};

/// `status RUN`.
pub async fn status(ops: &Ops, id: &str, follow: bool) -> Result<Exit, CliError> {
    if follow && ops.format() != Format::Human {
        return Err(CliError::Usage(
            "--follow prints lines for people; for scripts, `history --format jsonl` or the \
             API's event stream (docs/api.md)"
                .into(),
        ));
    }
    let (loaded, running) = ops.status(&run_id(id)).await?;
    let mut view = status_view(ops, &loaded, &ops.context(&loaded), running);
    view.lock_holder = lock_holder(ops, &loaded.run).await?;
    match ops.format() {
        Format::Human | Format::Csv => {
            output::print(&status_human(&loaded, &view, ops.workdir_problem(&loaded)))?
        }
        _ => output::json(&view)?,
    }
    if follow && !loaded.run.status.is_ended() {
        let after = loaded.events.last().map(|e| e.seq);
        let mut printed = Ok(());
        ops.follow(&loaded.run.id, after, &mut |e: &Event| {
            if printed.is_ok() {
                printed = output::print_line(&format!(
                    "{}  {}  {}",
                    output::time(e.at),
                    e.actor,
                    event_summary(e)
                ));
            }
        })
        .await?;
        printed?;
    }
    Ok(Exit::Ok)
}

/// The latest result of each guard of the transition to `to` in this visit of the state, with
/// the visit's overrides counted as the engine counts them (`decide::apply_overrides`): an
/// overridden guard reads as passed, its detail saying by whom and why, even after the run ended.
fn last_results(loaded: &Loaded, to: &str) -> Vec<GuardResult> {
    let mut results: Vec<GuardResult> = loaded
        .visit_events()
        .filter_map(|e| match &e.kind {
            EventKind::GuardsEvaluated {
                state,
                to: t,
                guards,
                ..
            } if *state == loaded.run.state && t == to => Some(guards),
            _ => None,
        })
        .last()
        .cloned()
        .unwrap_or_default();
    apply_overrides(&loaded.events, to, &mut results);
    results
}

/// What `status RUN` shows: serialized as is for `--format json` (the field names and order
/// are the documented ones, `docs/cli.md`), rendered by [`status_human`] for people.
#[derive(Debug, Serialize)]
struct StatusView<'a> {
    run_id: &'a RunId,
    workflow: &'a str,
    workflow_description: Option<&'a str>,
    env: &'a str,
    state: &'a str,
    state_description: Option<&'a str>,
    status: RunStatus,
    version: u64,
    initiator: &'a str,
    file: &'a str,
    file_path: Option<&'a str>,
    workdir: Option<&'a str>,
    definition_hash: &'a str,
    started_at: Timestamp,
    state_entered_at: Timestamp,
    ended_at: Option<Timestamp>,
    deadline: Option<Timestamp>,
    terminal: bool,
    transitions: Vec<TransitionView<'a>>,
    pending_approvals: Vec<PendingApproval<'a>>,
    actions: Vec<ActionView>,
    /// Every break-glass override of the run, oldest first.
    overrides: Vec<OverrideView<'a>>,
    /// The shared lock the run's environment names; `null`: the lock of (workflow, env).
    lock: Option<&'a str>,
    /// The unended run holding the run's locks now (the run itself until it ends; after, the
    /// shared lock's holder, else the (workflow, env) lock's); `null` when no run holds either.
    lock_holder: Option<RunId>,
}

/// The unended run holding `run`'s lock, or one of its locks ([`waygate_core::run::LockKeys`]
/// says which runs exclude each other; the shared lock's holder first): the run itself while
/// it has not ended.
async fn lock_holder(ops: &Ops, run: &waygate_core::run::Run) -> Result<Option<RunId>, CliError> {
    if !run.status.is_ended() {
        return Ok(Some(run.id.clone()));
    }
    let filter = waygate_core::store::RunFilter {
        status: Some(RunStatus::Active),
        ..Default::default()
    };
    let active: Vec<_> = ops
        .list_runs_now(&filter)
        .await?
        .into_iter()
        .map(|r| (r.lock_keys(), r.id))
        .collect();
    Ok(run.lock_keys().iter().find_map(|(key, _)| {
        active
            .iter()
            .find(|(keys, _)| keys.contains(key))
            .map(|(_, id)| id.clone())
    }))
}

/// An outgoing transition of the current state and its guards' latest results.
#[derive(Debug, Serialize)]
struct TransitionView<'a> {
    to: &'a str,
    description: Option<&'a str>,
    guards: Vec<GuardView<'a>>,
}

/// A guard and its latest result in this visit; `outcome` is `null` before its first
/// evaluation, `pass` when it is overridden in this visit (`overridden` says by whom and why).
#[derive(Debug, Serialize)]
struct GuardView<'a> {
    name: &'a str,
    kind: &'static str,
    outcome: Option<Outcome>,
    detail: String,
    overridden: Option<OverriddenBy>,
}

/// Who overrode a guard in this visit, and why.
#[derive(Debug, Serialize)]
struct OverriddenBy {
    by: String,
    reason: String,
}

/// An approval guard that does not have enough approvals yet, and how to give one.
#[derive(Debug, Serialize)]
struct PendingApproval<'a> {
    guard: &'a str,
    to: &'a str,
    prompt: String,
    min: u32,
    approved_by: Vec<String>,
    approvers: &'a [String],
    not_by_initiator: bool,
    command: String,
}

/// A recorded `Overridden`; `counts` while the run is in the visit it was given in.
#[derive(Debug, Serialize)]
struct OverrideView<'a> {
    guard: &'a str,
    state: &'a str,
    to: &'a str,
    by: &'a str,
    at: Timestamp,
    reason: &'a str,
    said: &'a str,
    counts: bool,
}

/// An entry action of the current state, numbered from 1 ([`ActionStatus`] owns the status).
#[derive(Debug, Serialize)]
struct ActionView {
    index: usize,
    action: String,
    status: ActionStatus,
    detail: String,
}

/// `ctx` renders approval prompts as the guards do: run values and built-ins
/// (`${run.env}`...) filled in, secrets as `***`.
/// `running`: another process holds the run's lock, so an action started and not finished is
/// running there, not interrupted.
fn status_view<'a>(
    ops: &Ops,
    loaded: &'a Loaded,
    ctx: &GuardContext,
    running: bool,
) -> StatusView<'a> {
    let run = &loaded.run;
    let w = &loaded.workflow;
    let mut transitions = Vec::new();
    let mut pending = Vec::new();
    let overrides = overrides(&loaded.events);
    for t in w.outgoing(loaded.state) {
        let to = w.state(t.to).name.as_str();
        let last = last_results(loaded, to);
        let guards = t
            .transition
            .guards
            .iter()
            .map(|g| {
                let result = last.iter().find(|r| r.name == g.name);
                GuardView {
                    name: &g.name,
                    kind: g.check.kind(),
                    outcome: result.map(|r| r.outcome),
                    detail: result.map_or("not evaluated yet".to_owned(), |r| r.detail.clone()),
                    overridden: overrides
                        .iter()
                        .find(|o| o.to == to && o.guard == g.name)
                        .map(|o| OverriddenBy {
                            by: o.by.clone(),
                            reason: o.reason.clone(),
                        }),
                }
            })
            .collect();
        transitions.push(TransitionView {
            to,
            description: t.transition.description.as_deref(),
            guards,
        });
    }
    for p in pending_approvals(w, loaded.state, &loaded.events, &run.initiator) {
        pending.push(PendingApproval {
            guard: p.guard,
            to: w.state(p.to).name.as_str(),
            prompt: ctx.render_for_display(&p.check.prompt),
            min: p.tally.need,
            approved_by: p.tally.approvers,
            approvers: &p.check.approvers,
            not_by_initiator: p.check.not_by_initiator,
            command: ops.command_line(&["approve", run.id.as_str(), p.guard]),
        });
    }
    let state = w.state(loaded.state);
    let actions = action_histories(loaded.visit_events(), &run.state, state.on_enter.len())
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            let (status, detail) = h.status(running);
            ActionView {
                index: i + 1,
                action: h.description.unwrap_or_default(),
                status,
                detail,
            }
        })
        .collect();
    StatusView {
        run_id: &run.id,
        workflow: &run.workflow,
        workflow_description: w.description.as_deref(),
        env: &run.env,
        state: &run.state,
        state_description: state.description.as_deref(),
        status: run.status,
        version: run.version,
        initiator: &run.initiator,
        file: &run.file,
        file_path: run.file_path.as_deref(),
        workdir: run.workdir.as_deref(),
        definition_hash: &run.definition_hash,
        started_at: run.started_at,
        state_entered_at: run.state_entered_at,
        ended_at: run.ended_at,
        deadline: loaded.deadline(),
        terminal: state.terminal.is_some(),
        transitions,
        pending_approvals: pending,
        actions,
        overrides: override_views(loaded),
        lock: run.lock.as_deref(),
        lock_holder: None,
    }
}

/// Every `Overridden` of the run; those of the current visit count (`decide::overrides`).
fn override_views(loaded: &Loaded) -> Vec<OverrideView<'_>> {
    let visit = waygate_core::visit::visit_number(&loaded.events);
    let active = !loaded.run.status.is_ended();
    loaded
        .events
        .iter()
        .filter_map(|e| {
            let o = e.kind.as_override()?;
            Some(OverrideView {
                guard: &o.guard,
                state: &o.state,
                to: &o.to,
                by: &e.actor,
                at: e.at,
                reason: &o.reason,
                said: &o.said,
                counts: active && o.visit == visit && o.state == loaded.run.state,
            })
        })
        .collect()
}

/// Every stored value is escaped: names, details and prompts print as one line each.
/// `workdir_problem`: why the run's directory cannot be used, when that can be told here.
fn status_human(loaded: &Loaded, view: &StatusView<'_>, workdir_problem: Option<String>) -> String {
    let run = &loaded.run;
    let mut out = format!(
        "run        {}\nworkflow   {} ({}){}\nenv        {}\nstate      {}{}\nstatus     {}\ninitiator  {}\nstarted    {}\nin state   since {}\n",
        escape_control(run.id.as_str()),
        escape_control(&run.workflow),
        escape_control(&run.file),
        described(view.workflow_description),
        escape_control(&run.env),
        escape_control(&run.state),
        described(view.state_description),
        run.status.as_str(),
        escape_control(&run.initiator),
        output::time(run.started_at),
        output::time(run.state_entered_at),
    );
    if let Some(d) = view.deadline {
        out.push_str(&format!("deadline   {d}\n"));
    }
    let pair = format!(
        "environment `{}` of `{}`",
        escape_control(&run.env),
        escape_control(&run.workflow)
    );
    let lock = match view.lock {
        Some(name) => format!("`{}`, shared, and {pair}", escape_control(name)),
        None => pair,
    };
    let holder = match &view.lock_holder {
        Some(id) if *id == run.id => "held by this run".to_owned(),
        Some(id) => format!("released; held now by run {}", escape_control(id.as_str())),
        None => "released".to_owned(),
    };
    out.push_str(&format!("lock       {lock} ({holder})\n"));
    match (&run.workdir, workdir_problem) {
        (Some(dir), Some(problem)) => {
            out.push_str(&format!(
                "directory  {} ({})\n",
                escape_control(dir),
                escape_control(&problem)
            ));
        }
        (Some(dir), _) => out.push_str(&format!("directory  {}\n", escape_control(dir))),
        (None, _) => out.push_str("directory  not recorded (started before waygate kept it): commands run where waygate is typed\n"),
    }
    for o in &view.overrides {
        out.push_str(&format!(
            "OVERRIDDEN `{}` of `{}` -> `{}` by {} at {}{}: {} (the check said {})\n",
            escape_control(o.guard),
            escape_control(o.state),
            escape_control(o.to),
            escape_control(o.by),
            output::time(o.at),
            if o.counts { ", counts now" } else { "" },
            escape_control(o.reason),
            escape_control(o.said),
        ));
    }
    if !view.actions.is_empty() {
        out.push_str("actions\n");
        for a in &view.actions {
            out.push_str(&format!(
                "    {} {:<11} {} {}\n",
                a.index,
                a.status.as_str(),
                escape_control(&a.action),
                escape_control(&a.detail)
            ));
        }
    }
    if run.status.is_ended() {
        return out;
    }
    out.push_str("transitions\n");
    for t in &view.transitions {
        out.push_str(&format!(
            "  -> {}{}\n",
            escape_control(t.to),
            described(t.description)
        ));
        for g in &t.guards {
            let outcome = g.outcome.map_or("-", Outcome::as_str);
            out.push_str(&format!(
                "    {:<8} {} ({}): {}\n",
                outcome,
                escape_control(g.name),
                g.kind,
                escape_control(&g.detail)
            ));
        }
    }
    if !view.pending_approvals.is_empty() {
        out.push_str("pending approvals\n");
        for p in &view.pending_approvals {
            out.push_str(&format!(
                "    {} ({} of {}): {}\n      {}\n",
                escape_control(p.guard),
                p.approved_by.len(),
                p.min,
                escape_control(&p.prompt),
                escape_control(&p.command),
            ));
        }
    }
    out
}

/// `: TEXT` after a name when it has a description, escaped for people.
fn described(description: Option<&str>) -> String {
    description
        .map(|d| format!(": {}", escape_control(d)))
        .unwrap_or_default()
}

/// The columns of `runs`, in the documented order: the CSV header (the JSON field's name) and
/// the human table's shorter one.
const RUN_COLUMNS: [(&str, &str); 10] = [
    ("RUN_ID", "RUN"),
    ("WORKFLOW", "WORKFLOW"),
    ("ENV", "ENV"),
    ("STATE", "STATE"),
    ("STATUS", "STATUS"),
    ("VERSION", "VERSION"),
    ("INITIATOR", "INITIATOR"),
    ("STARTED_AT", "STARTED"),
    ("UPDATED_AT", "UPDATED"),
    ("ENDED_AT", "ENDED"),
];

/// `runs`.
pub fn runs(
    ops: &Ops,
    workflow: Option<String>,
    env: Option<String>,
    status: Option<String>,
) -> Result<Exit, CliError> {
    let status = match status.as_deref() {
        None => None,
        Some(s) => Some(parse_status(s)?),
    };
    // In creation order: the store sorts by start time (ids sort by their second only).
    let runs = ops.list_runs(&RunFilter {
        workflow,
        env,
        status,
    })?;
    #[derive(serde::Serialize)]
    struct Row<'a> {
        run_id: &'a str,
        workflow: &'a str,
        env: &'a str,
        state: &'a str,
        status: RunStatus,
        version: u64,
        initiator: &'a str,
        started_at: jiff::Timestamp,
        updated_at: jiff::Timestamp,
        ended_at: Option<jiff::Timestamp>,
    }
    let rows: Vec<Row> = runs
        .iter()
        .map(|r: &Run| Row {
            run_id: r.id.as_str(),
            workflow: &r.workflow,
            env: &r.env,
            state: &r.state,
            status: r.status,
            version: r.version,
            initiator: &r.initiator,
            started_at: r.started_at,
            updated_at: r.updated_at,
            ended_at: r.ended_at,
        })
        .collect();
    match ops.format() {
        Format::Json => output::json(&rows)?,
        Format::Jsonl => output::jsonl(&rows)?,
        Format::Human | Format::Csv | Format::Svg => {
            // The documented columns, in the documented order, in every format: CSV headers
            // are the JSON field names, the human table shortens them and its times.
            let csv = ops.format() == Format::Csv;
            let headers: Vec<&str> = RUN_COLUMNS
                .iter()
                .map(|&(csv_name, human)| if csv { csv_name } else { human })
                .collect();
            let mut t = Table::new(&headers);
            let time = |t: jiff::Timestamp| {
                if csv {
                    t.to_string()
                } else {
                    output::time(t)
                }
            };
            for r in &runs {
                t.row(vec![
                    r.id.to_string(),
                    r.workflow.clone(),
                    r.env.clone(),
                    r.state.clone(),
                    r.status.as_str().to_owned(),
                    r.version.to_string(),
                    r.initiator.clone(),
                    time(r.started_at),
                    time(r.updated_at),
                    r.ended_at.map(time).unwrap_or_default(),
                ]);
            }
            output::print(&if csv { t.csv() } else { t.human() })?;
        }
    }
    Ok(Exit::Ok)
}

fn parse_status(s: &str) -> Result<RunStatus, CliError> {
    serde_json::from_value(json!(s)).map_err(|_| {
        CliError::Usage(format!(
            "--status {s:?}: one of active, waiting, succeeded, failed, aborted"
        ))
    })
}

/// Prints events in the chosen format.
fn print_events(ops: &Ops, events: &[Event]) -> Result<(), CliError> {
    let format = ops.format();
    match format {
        Format::Json => output::json(events),
        Format::Jsonl => output::jsonl(events),
        Format::Csv => output::print(&waygate_core::summary::events_csv(events)),
        Format::Human | Format::Svg => {
            let mut t = Table::new(&["SEQ", "AT", "RUN", "ACTOR", "KIND", "WHAT"]);
            for e in events {
                t.row(vec![
                    e.seq.to_string(),
                    output::time(e.at),
                    e.run_id.to_string(),
                    e.actor.clone(),
                    e.kind.name().to_owned(),
                    event_summary(e),
                ]);
            }
            let mut text = t.human();
            if format == Format::Human {
                // Guard details under their evaluation, for people reading one run's story.
                let details: Vec<String> = events
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| match &e.kind {
                        EventKind::GuardsEvaluated { guards, to, .. }
                            if passage(guards) != Passage::Passes =>
                        {
                            Some(format!(
                                "  #{}:\n{}{}",
                                e.seq,
                                guard_lines(guards),
                                overridden_after(&events[i..], to, guards)
                            ))
                        }
                        _ => None,
                    })
                    .collect();
                if !details.is_empty() {
                    text.push_str("\nguards that did not pass:\n");
                    text.push_str(&details.concat());
                }
            }
            output::print(&text)
        }
    }
}

/// A line for each guard among `guards` (evaluated by `events[0]`) that did not pass and was
/// overridden later in the same visit of the run (before its next move), so a guard marked
/// passed by a person is never shown only as failed.
fn overridden_after(events: &[Event], to: &str, guards: &[GuardResult]) -> String {
    let Some((evaluated, later)) = events.split_first() else {
        return String::new();
    };
    let mut out = String::new();
    let same_run = later.iter().filter(|e| e.run_id == evaluated.run_id);
    for e in same_run.take_while(|e| !waygate_core::visit::starts_visit(&e.kind)) {
        if let Some(o) = e.kind.as_override() {
            let failed = guards
                .iter()
                .any(|g| g.name == o.guard && g.outcome != Outcome::Pass);
            if o.to == to && failed {
                out.push_str(&format!(
                    "    OVERRIDDEN {} afterwards (#{}) by {}: {}\n",
                    escape_control(&o.guard),
                    e.seq,
                    escape_control(&e.actor),
                    escape_control(&o.reason)
                ));
            }
        }
    }
    out
}

/// `history RUN`.
pub fn history(ops: &Ops, id: &str) -> Result<Exit, CliError> {
    let events = ops.run_events(&run_id(id))?;
    print_events(ops, &events)?;
    Ok(Exit::Ok)
}

/// `audit [filters]` and `audit verify`.
pub fn audit(ops: &Ops, args: &AuditArgs) -> Result<Exit, CliError> {
    match &args.verify {
        Some(AuditCommand::Verify { expect_head }) => return verify(ops, expect_head.as_deref()),
        Some(AuditCommand::Report(report)) => return super::report::run(ops, report),
        None => {}
    }
    let filter = EventFilter {
        workflow: args.workflow.clone(),
        env: args.env.clone(),
        run: args.run.as_deref().map(run_id),
        actor: args.actor.clone(),
        kind: args.kind.clone(),
        since: args.since.as_ref().map(|t| t.at),
        until: args.until.as_ref().map(|t| t.at),
    };
    if let Some(k) = &filter.kind {
        if !EventKind::NAMES.contains(&k.as_str()) {
            return Err(CliError::Usage(format!(
                "--kind {k:?}: one of {}",
                EventKind::NAMES.join(", ")
            )));
        }
    }
    let events = ops.scan_events(&filter)?;
    print_events(ops, &events)?;
    Ok(Exit::Ok)
}

/// `audit verify [--expect-head HASH]`.
fn verify(ops: &Ops, expect_head: Option<&str>) -> Result<Exit, CliError> {
    // Already checked and lower-cased as it was parsed (`cli::parse_head`).
    let report = ops.verify(expect_head)?;
    let bad = report.first_bad.as_ref();
    let unreached = expect_head.is_some() && report.reached.is_none();
    match ops.format() {
        Format::Human | Format::Csv => {
            let mut text = match bad {
                None => format!(
                    "ok: {} events, checksums and hash chain intact\n",
                    report.events
                ),
                Some(b) => format!(
                    "BAD: event {}: {}{}\n({} events checked)\n",
                    b.seq,
                    escape_control(&b.problem),
                    b.location
                        .as_deref()
                        .map(|l| format!(" at {}", escape_control(l)))
                        .unwrap_or_default(),
                    report.events
                ),
            };
            if let Some(head) = &report.head {
                let intact = if bad.is_some() {
                    " (last intact event)"
                } else {
                    ""
                };
                text.push_str(&format!("head: event {} {}{intact}\n", head.seq, head.hash));
            }
            if let Some(note) = &report.unfinished {
                text.push_str(&format!("note: {}\n", escape_control(note)));
            }
            if let Some(hash) = &expect_head {
                // Typed by the user: printed escaped like any other untrusted text.
                let hash = escape_control(hash);
                text.push_str(&match report.reached {
                    Some(seq) => {
                        format!("the chain reaches the expected head {hash} (event {seq})\n")
                    }
                    None => format!(
                        "BAD: the chain does not reach the expected head {hash}: the history was \
                         cut back or rewritten since that head was recorded\n"
                    ),
                });
            }
            output::print(&text)?
        }
        _ => output::json(&json!({
            "ok": bad.is_none() && !unreached,
            "events": report.events,
            "first_bad": bad.map(|b| json!({ "seq": b.seq, "problem": b.problem, "location": b.location })),
            "head": report.head.as_ref().map(|h| json!({ "seq": h.seq, "hash": h.hash })),
            "unfinished": report.unfinished,
            "expected_head": expect_head.as_ref().map(|h| json!({ "hash": h, "reached": report.reached.is_some(), "seq": report.reached })),
        }))?,
    }
    Ok(if bad.is_none() && !unreached {
        Exit::Ok
    } else {
        Exit::Error
    })
}
