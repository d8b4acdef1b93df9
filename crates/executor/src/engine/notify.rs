//! Sending a workflow's `notify` hooks: what is due is `waygate_core::notify::due`'s to say;
//! here it is sent, under the run's lock so two processes never both send it, and recorded
//! as `Notified`. A notification never blocks or fails a run: a failed one is recorded and
//! logged, and a problem sending any (the lock busy, the store) leaves it for the next
//! command that looks at the run.

use std::collections::HashMap;
use std::sync::Arc;

use waygate_core::event::EventKind;
use waygate_core::model::Check;
use waygate_core::notify::{due, notification_id, NotifyOn, Occurrence};
use waygate_core::run::RunId;

use super::{Engine, EngineError, Loaded};
use crate::action::{run_action, ActionResult};
use crate::context::GuardContext;

/// The longest a notification may take, whatever its action's `timeout`.
const NOTIFY_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How a notification names the command that approves a guard: run and guard in, command
/// line out. The CLI gives one that names its store; the default is `waygate approve RUN
/// GUARD`.
pub type ApproveCommand = Arc<dyn Fn(&str, &str) -> String + Send + Sync>;

/// The default [`ApproveCommand`].
pub(crate) fn plain_approve_command() -> ApproveCommand {
    Arc::new(|run, guard| format!("waygate approve {run} {guard}"))
}

impl Engine {
    /// Names the approve command in notifications with `command`.
    pub fn with_approve_command(mut self, command: ApproveCommand) -> Engine {
        self.approve_command = command;
        self
    }

    /// Sends every notification due for run `id` and returns how many events that recorded.
    /// Never fails: a problem is logged, and what was not sent is due again next time.
    pub(crate) async fn notify(&self, id: &RunId) -> usize {
        match self.try_notify(id).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("run {id}: notifications not sent now: {e}");
                0
            }
        }
    }

    /// [`Engine::notify`] by a process that holds the run's lock already (running its entry
    /// actions, where a failed one moved the run to its rollback).
    pub(crate) async fn notify_holding_lock(&self, id: &RunId) -> usize {
        match self.send_due(id).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("run {id}: notifications not sent now: {e}");
                0
            }
        }
    }

    async fn try_notify(&self, id: &RunId) -> Result<usize, EngineError> {
        // A run whose definition or history cannot be read has nothing known to be due (an
        // abort of such a run must not warn about notifications).
        let Ok(loaded) = self.load(id).await else {
            return Ok(0);
        };
        if due(&loaded.workflow, &loaded.events).is_empty() {
            return Ok(0);
        }
        // Whoever holds the run's lock sends; a process without it leaves the rest to that
        // one, or to the next command.
        let _held = match &self.locks {
            Some(locks) => {
                let (locks, owned) = (locks.clone(), id.clone());
                let taken = tokio::task::spawn_blocking(move || locks.take(&owned))
                    .await
                    .map_err(|e| EngineError::Join(e.to_string()))?
                    .map_err(|e| EngineError::Lock(e.to_string()))?;
                match taken {
                    Some(lock) => Some(lock),
                    None => return Ok(0),
                }
            }
            None => None,
        };
        self.send_due(id).await
    }

    /// Sends and records what is due, the run's lock held by this process.
    async fn send_due(&self, id: &RunId) -> Result<usize, EngineError> {
        let loaded = self.load(id).await?;
        let mut recorded = 0;
        for (hook, occurrence) in due(&loaded.workflow, &loaded.events) {
            let Some(action) = loaded.workflow.notify.get(hook).map(|n| &n.action) else {
                continue;
            };
            let ctx = self.notify_context(&loaded, hook, &occurrence);
            // In a scenario (`waygate test`) nothing is sent, and the results scripted for
            // the state's entry actions are theirs, not a notification's.
            let result = if self.script.is_some() {
                ActionResult {
                    ok: true,
                    detail: "scripted: not sent".into(),
                    evidence: None,
                    duration_ms: 0,
                    description: crate::action::describe(action, &ctx),
                    outputs: Default::default(),
                }
            } else {
                // Never longer than the limit, and not past an operator's stop: a
                // notification must not hold the run up (dropping it kills its process
                // group).
                let sent = tokio::select! {
                    biased;
                    signal = self.shutdown.wait() => {
                        tracing::warn!(
                            "run {id}: notification {} ({}) not sent: stopped by {}; the next `waygate drive {id}` sends it",
                            hook + 1,
                            occurrence.on.as_str(),
                            signal.name()
                        );
                        return Ok(recorded);
                    }
                    r = tokio::time::timeout(NOTIFY_LIMIT, run_action(action, hook as u32, &ctx)) => r,
                };
                sent.unwrap_or_else(|_| ActionResult {
                    ok: false,
                    detail: format!(
                        "gave up after {} (a notification never takes longer)",
                        crate::clock::human(NOTIFY_LIMIT)
                    ),
                    evidence: None,
                    duration_ms: u64::try_from(NOTIFY_LIMIT.as_millis()).unwrap_or(u64::MAX),
                    description: crate::action::describe(action, &ctx),
                    outputs: Default::default(),
                })
            };
            if !result.ok {
                tracing::warn!(
                    "run {id}: notification {} ({}) failed: {}",
                    hook + 1,
                    occurrence.on.as_str(),
                    result.detail
                );
            }
            self.append(
                &loaded.run,
                vec![EventKind::Notified {
                    hook: hook as u32,
                    on: occurrence.on.as_str().to_owned(),
                    occurrence: occurrence.key,
                    action: result.description,
                    ok: result.ok,
                    detail: result.detail,
                }],
            )
            .await?;
            recorded += 1;
        }
        Ok(recorded)
    }

    /// The run's context with `${notify.*}` for `occurrence`, quiet (a notification's output
    /// is not the run's), and every value a step may publish but has not as `(none)`.
    fn notify_context(
        &self,
        loaded: &Loaded,
        hook: usize,
        occurrence: &Occurrence,
    ) -> GuardContext {
        let mut ctx = self.context(loaded);
        ctx.live = None;
        let run = &loaded.run;
        let guard = occurrence.guard.as_deref().unwrap_or("");
        let prompt = loaded
            .workflow
            .outgoing_iter(loaded.state)
            .flat_map(|t| &t.transition.guards)
            .find_map(|g| match &g.check {
                Check::Approval(a) if g.name == guard => Some(ctx.render_for_display(&a.prompt)),
                _ => None,
            })
            .unwrap_or_default();
        let command = match occurrence.on {
            NotifyOn::ApprovalWaiting => (self.approve_command)(run.id.as_str(), guard),
            _ => String::new(),
        };
        let head = format!("Run {} of {} ({})", run.id, run.workflow, run.env);
        let detail = &occurrence.detail;
        let state = &occurrence.state;
        let message = match occurrence.on {
            NotifyOn::ApprovalWaiting => format!(
                "{head} waits for approval `{guard}` in `{state}`: {prompt} (to approve: {command})"
            ),
            NotifyOn::WindowClosed => {
                format!("{head} waits in `{state}`: deploy window `{guard}` is {detail}")
            }
            NotifyOn::RollbackStarted => format!(
                "{head} is rolling back from `{state}`{}",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            ),
            NotifyOn::RunEnded => format!("{head} ended in `{state}`: {detail}"),
        };
        let mut vars: HashMap<String, String> = (*ctx.vars).clone();
        for (name, value) in [
            ("notify.on", occurrence.on.as_str().to_owned()),
            ("notify.message", message),
            ("notify.state", state.clone()),
            ("notify.guard", guard.to_owned()),
            ("notify.prompt", prompt),
            ("notify.command", command),
            ("notify.detail", detail.clone()),
            (
                "notify.id",
                notification_id(run.id.as_str(), hook, occurrence),
            ),
        ] {
            vars.insert(name.to_owned(), value);
        }
        for (_, s) in loaded.workflow.states() {
            for (i, name) in s.action_names.iter().enumerate() {
                let (Some(name), Some(waygate_core::model::Action::Command(c))) =
                    (name, s.on_enter.get(i))
                else {
                    continue;
                };
                for key in &c.outputs {
                    vars.entry(waygate_core::outputs::variable(name, key))
                        .or_insert_with(|| "(none)".to_owned());
                }
            }
        }
        for (from, _) in loaded.workflow.states() {
            for t in loaded.workflow.outgoing_iter(from) {
                for g in &t.transition.guards {
                    for key in waygate_core::outputs::declared(&g.check) {
                        vars.entry(waygate_core::outputs::variable(&g.name, key))
                            .or_insert_with(|| "(none)".to_owned());
                    }
                }
            }
        }
        ctx.vars = Arc::new(vars);
        ctx
    }
}
