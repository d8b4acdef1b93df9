//! Running one `on_enter` action: a program or a webhook.
//!
//! Actions reuse the guard machinery (process groups, bounded output, the HTTP client) but
//! answer a simpler question, "did it work?", and carry a redacted human description of what
//! was attempted for the `ActionStarted` / `ActionFinished` events. A webhook defaults to
//! POST and sends its JSON body with `${vars}` rendered in every string leaf; it succeeds on
//! `expect_status`, or any 2xx.

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use waygate_core::model::Action;
use waygate_core::outcome::bound_evidence;
use waygate_core::text::{shell_word, ShellReader};

use crate::context::GuardContext;
use crate::guard::{command, http};
use crate::live::Origin;

/// What running an action produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    /// Whether it succeeded; a failed action sends the run to `on_failure`.
    pub ok: bool,
    /// One line for people: "exit status 0", "HTTP 502, expected 2xx".
    pub detail: String,
    /// Bounded, redacted output or response excerpt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Wall time spent.
    pub duration_ms: u64,
    /// What was attempted, secrets redacted: "Command git push origin main".
    pub description: String,
    /// What a named `Command` action published (`waygate_core::outputs`), secrets redacted.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub outputs: std::collections::BTreeMap<String, String>,
}

/// The redacted description of `action`, available before it runs (for `ActionStarted`).
pub fn describe(action: &Action, ctx: &GuardContext) -> String {
    match action {
        Action::Command(c) => {
            let argv: Vec<String> = c
                .run
                .iter()
                .map(|t| shell_word(&ctx.render_for_display(t), ShellReader::Person))
                .collect();
            format!("Command {}", argv.join(" "))
        }
        Action::Http(h) => {
            let method = if h.method.is_empty() {
                "POST"
            } else {
                h.method.as_str()
            };
            format!("Http {method} {}", ctx.render_for_display(&h.url))
        }
    }
}

/// Runs `action`, the state's action at `index`, once.
pub async fn run_action(action: &Action, index: u32, ctx: &GuardContext) -> ActionResult {
    run_named_action(action, index, None, ctx).await
}

/// [`run_action`] for an action named `name`: what a named `Command` publishes is recorded
/// as [`crate::evaluate::record_values`] says.
pub async fn run_named_action(
    action: &Action,
    index: u32,
    name: Option<&str>,
    ctx: &GuardContext,
) -> ActionResult {
    let started = Instant::now();
    let description = describe(action, ctx);
    let mut outputs = Default::default();
    let (ok, detail, evidence) = match (action, &ctx.script) {
        (_, Some(script)) => {
            let (ok, detail) = script.action(&ctx.state, index as usize);
            (ok, detail, None)
        }
        (Action::Command(c), None) => {
            let v = command::check(c, ctx, &Origin::Action { index }).await;
            let step = name.unwrap_or_default();
            outputs = crate::evaluate::record_values(ctx, step, &c.secret_outputs, v.outputs);
            (
                v.outcome == waygate_core::outcome::Outcome::Pass,
                v.detail,
                v.evidence,
            )
        }
        (Action::Http(h), None) => match http::send(h, ctx, http::Sender::Webhook).await {
            Ok(response) => {
                let problem = http::status_problem(h, &response);
                let detail = match &problem {
                    Some(p) => format!("HTTP {}, {p}", response.status),
                    None => format!("HTTP {}", response.status),
                };
                (problem.is_none(), detail, Some(response.evidence))
            }
            Err(v) => (false, v.detail, v.evidence),
        },
    };
    let kind = match action {
        Action::Command(_) => "command",
        Action::Http(_) => "http",
    };
    metrics::histogram!("waygate_action_seconds", "kind" => kind, "ok" => if ok { "true" } else { "false" })
        .record(started.elapsed().as_secs_f64());
    ActionResult {
        ok,
        detail: ctx.redact(&detail),
        evidence: evidence.map(|e| bound_evidence(&ctx.redact(&e))),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        description,
        outputs,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use waygate_core::model::HttpCheck;
    use waygate_core::template::Template;

    use super::*;
    use crate::context::tests::ctx;

    fn command(argv: &[&str]) -> Action {
        Action::Command(crate::test_support::command(argv, Duration::from_secs(10)))
    }

    #[tokio::test]
    async fn command_actions_report_and_redact() {
        let r = run_action(
            &command(&["sh", "-c", "echo pushed ${token}", "${version}"]),
            0,
            &ctx(),
        )
        .await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.description, "Command sh -c 'echo pushed ***' 1.2");
        assert!(r.evidence.expect("stdout").contains("pushed ***"));
        let r = run_action(&command(&["false"]), 0, &ctx()).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "exit status 1");
    }

    #[test]
    fn descriptions_quote_arguments_that_need_it() {
        let action = command(&["printf", "%s|", "it's here", "", "plain-arg_1.txt"]);
        assert_eq!(
            describe(&action, &ctx()),
            r"Command printf '%s|' 'it'\''s here' '' plain-arg_1.txt"
        );
    }

    #[test]
    fn webhook_description_defaults_to_post() {
        let action = Action::Http(HttpCheck {
            url: Template::parse("http://hooks.example/${token}/${run.id}").expect("valid"),
            method: String::new(),
            expect_status: None,
            body_contains: None,
            timeout: Duration::from_secs(1),
            headers: Default::default(),
            body: None,
            cross_origin_redirects: false,
        });
        assert_eq!(
            describe(&action, &ctx()),
            "Http POST http://hooks.example/***/r1"
        );
    }
}
