//! Evaluating guards: one with its retries, or all of a transition's at once.
//!
//! This is the one place that turns a raw [`Verdict`] into the [`GuardResult`] that is
//! recorded and shown: it applies `retry`, measures time, counts attempts, and redacts and
//! bounds every detail and piece of evidence. Guards of a transition run concurrently on a
//! `JoinSet`, so 50 one-second checks take about a second; results come back in guard order.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio::time::Instant;
use waygate_core::model::Guard;
use waygate_core::outcome::{bound_evidence, GuardResult, Outcome};

use crate::context::GuardContext;
use crate::guard::{try_check, Verdict};

/// Evaluates one guard, retrying a failing check as its `retry` says.
///
/// `attempts` counts every try, the first included; the delay separates tries. Only `Fail`
/// is retried: `Waiting` is a state of the world (approval missing, window closed) that
/// retrying now cannot change, and `Pass` is final.
pub async fn evaluate_guard(guard: &Guard, ctx: &GuardContext) -> GuardResult {
    let started = Instant::now();
    let max = guard.retry.attempts.max(1);
    let mut attempts = 0;
    let verdict = loop {
        attempts += 1;
        let verdict = match &ctx.script {
            Some(script) => script.guard(&ctx.state, guard, ctx.now()),
            None => try_check(&guard.check, ctx, &guard.name).await,
        };
        if verdict.outcome != Outcome::Fail || attempts >= max {
            break verdict;
        }
        tracing::debug!(guard = %guard.name, attempts, detail = %ctx.redact(&verdict.detail), "retrying");
        tokio::time::sleep(guard.retry.delay).await;
    };
    let kind = guard.check.kind();
    metrics::counter!("waygate_guard_evaluations_total", "kind" => kind, "outcome" => verdict.outcome.as_str())
        .increment(1);
    metrics::histogram!("waygate_guard_seconds", "kind" => kind)
        .record(started.elapsed().as_secs_f64());
    result(guard, ctx, verdict, attempts, started)
}

fn result(
    guard: &Guard,
    ctx: &GuardContext,
    verdict: Verdict,
    attempts: u32,
    started: Instant,
) -> GuardResult {
    let mut detail = ctx.redact(&verdict.detail);
    if attempts > 1 {
        detail.push_str(&format!(" (after {attempts} attempts)"));
    }
    GuardResult {
        name: guard.name.clone(),
        outcome: verdict.outcome,
        detail,
        evidence: verdict.evidence.map(|e| bound_evidence(&ctx.redact(&e))),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        attempts,
        retry_at: verdict.retry_at,
        incident: verdict.incident,
        outputs: record_values(
            ctx,
            &guard.name,
            secret_outputs(&guard.check),
            verdict.outputs,
        ),
    }
}

/// Evaluates all `guards` concurrently; the results are in the order of `guards`.
///
/// Dropping the returned future (cancellation) aborts every task, and each running command's
/// process group is killed by its drop guard.
pub async fn evaluate_transition(guards: &[Guard], ctx: &GuardContext) -> Vec<GuardResult> {
    let shared = Arc::new(ctx.clone());
    let mut set = JoinSet::new();
    for (i, guard) in guards.iter().enumerate() {
        let (guard, ctx) = (guard.clone(), Arc::clone(&shared));
        set.spawn(async move { (i, evaluate_guard(&guard, &ctx).await) });
    }
    let mut results: Vec<Option<GuardResult>> = vec![None; guards.len()];
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => results[i] = Some(r),
            Err(e) => tracing::error!("guard task ended abnormally: {e}"),
        }
    }
    results
        .into_iter()
        .zip(guards)
        .map(|(r, g)| r.unwrap_or_else(|| crashed(g)))
        .collect()
}

/// The result recorded for a guard whose task panicked: a failure, never a silent pass.
fn crashed(guard: &Guard) -> GuardResult {
    GuardResult::immediate(
        guard.name.clone(),
        Outcome::Fail,
        "the guard's evaluation crashed",
    )
}

/// The keys `check` publishes as secrets.
fn secret_outputs(check: &waygate_core::model::Check) -> &[String] {
    match check {
        waygate_core::model::Check::Command(c) => &c.secret_outputs,
        _ => &[],
    }
}

/// Published values as they are recorded and passed on: a secret's value in one is masked,
/// like everywhere else text leaves the executor; a value step `step` publishes as a secret
/// (one of `secret`) is recorded as `***` and kept, in clear, for later steps of this process
/// only ([`GuardContext::keep_secrets`]).
pub(crate) fn record_values(
    ctx: &GuardContext,
    step: &str,
    secret: &[String],
    values: std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    let (kept, recorded): (
        std::collections::BTreeMap<_, _>,
        std::collections::BTreeMap<_, _>,
    ) = values.into_iter().partition(|(k, _)| secret.contains(k));
    let masked: Vec<(String, String)> = kept
        .keys()
        .map(|k| (k.clone(), crate::context::REDACTED.to_owned()))
        .collect();
    ctx.keep_secrets(step, kept);
    recorded
        .into_iter()
        .map(|(k, v)| (k, ctx.redact(&v)))
        .chain(masked)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use jiff::Timestamp;
    use waygate_core::model::{Check, Retry, WatchCheck};
    use waygate_core::template::Template;

    use super::*;
    use crate::clock::TokioClock;
    use crate::context::tests::ctx;

    fn guard(name: &str, check: Check, attempts: u32, delay_s: u64) -> Guard {
        Guard {
            name: name.into(),
            check,
            retry: Retry {
                attempts,
                delay: Duration::from_secs(delay_s),
            },
            overridable_by: Vec::new(),
        }
    }

    fn command(argv: &[&str]) -> Check {
        Check::Command(crate::test_support::command(argv, Duration::from_secs(10)))
    }

    fn paused_ctx(entered_ago: Duration) -> GuardContext {
        let mut c = ctx();
        let now: Timestamp = "2026-03-02T10:00:00Z".parse().expect("valid");
        c.clock = Arc::new(TokioClock::starting_at(now));
        c.state_entered_at = now - jiff::SignedDuration::try_from(entered_ago).expect("small");
        c
    }

    #[tokio::test(start_paused = true)]
    async fn wait_is_not_retried() {
        let c = paused_ctx(Duration::from_secs(10));
        let r = evaluate_guard(
            &guard("bake", Check::Wait(Duration::from_secs(60)), 5, 30),
            &c,
        )
        .await;
        assert_eq!((r.outcome, r.attempts), (Outcome::Waiting, 1));
        assert_eq!(
            r.retry_at.map(|t| t.to_string()).as_deref(),
            Some("2026-03-02T10:00:50Z")
        );
        assert_eq!(r.duration_ms, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn watch_fail_is_retried_with_delays_and_stays_an_incident() {
        // A watch whose inner check is a closed window cannot fail, so use an impossible Json
        // file: it fails on every try without touching real time.
        let inner = Check::Json(waygate_core::model::JsonCheck {
            file: Template::parse("/nonexistent/waygate.json").expect("valid"),
            pointer: "/x".into(),
            equals: serde_json::json!(1),
        });
        let watch = Check::Watch(WatchCheck {
            check: Box::new(inner),
            duration: Duration::from_secs(900),
            interval: Duration::from_secs(30),
        });
        let mut c = paused_ctx(Duration::from_secs(60));
        // Earlier looks were recorded, so the whole minute in the state was watched.
        c.looks.insert(
            "error-rate".into(),
            vec![
                "2026-03-02T09:59:30Z".parse().expect("valid"),
                "2026-03-02T10:00:00Z".parse().expect("valid"),
            ],
        );
        let r = evaluate_guard(&guard("error-rate", watch, 3, 30), &c).await;
        assert_eq!(
            (r.outcome, r.attempts, r.incident),
            (Outcome::Fail, 3, true)
        );
        assert_eq!(r.duration_ms, 60_000, "two 30 s delays between three tries");
        assert!(r.detail.contains("watch broken after 2m"), "{}", r.detail);
        assert!(r.detail.ends_with("(after 3 attempts)"), "{}", r.detail);
    }

    #[tokio::test(start_paused = true)]
    async fn watch_holds_then_passes_on_tokio_time() {
        let watch = Check::Watch(WatchCheck {
            check: Box::new(Check::Wait(Duration::ZERO)),
            duration: Duration::from_secs(120),
            interval: Duration::from_secs(30),
        });
        let g = guard("soak", watch, 1, 0);
        let mut c = paused_ctx(Duration::ZERO);
        let r = evaluate_guard(&g, &c).await;
        assert_eq!(r.outcome, Outcome::Waiting);
        assert_eq!(
            r.retry_at.map(|t| t.to_string()).as_deref(),
            Some("2026-03-02T10:00:30Z")
        );
        tokio::time::advance(Duration::from_secs(120)).await;
        assert_eq!(
            evaluate_guard(&g, &c).await.outcome,
            Outcome::Waiting,
            "nobody looked in between: not watched"
        );
        let looks = ["10:00:00", "10:00:30", "10:01:00", "10:01:30"];
        c.looks.insert(
            "soak".into(),
            looks
                .iter()
                .map(|t| format!("2026-03-02T{t}Z").parse().expect("valid"))
                .collect(),
        );
        assert_eq!(evaluate_guard(&g, &c).await.outcome, Outcome::Pass);
    }

    #[tokio::test]
    async fn retry_until_success_counts_attempts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("n");
        // Fails twice, then passes: each try appends a line and exits 0 on the third.
        let script = format!("echo x >> {0}; [ $(wc -l < {0}) -ge 3 ]", marker.display());
        let r = evaluate_guard(
            &guard("flaky", command(&["sh", "-c", &script]), 5, 0),
            &ctx(),
        )
        .await;
        assert_eq!((r.outcome, r.attempts), (Outcome::Pass, 3));
        let r = evaluate_guard(&guard("never", command(&["false"]), 2, 0), &ctx()).await;
        assert_eq!((r.outcome, r.attempts), (Outcome::Fail, 2));
    }

    #[tokio::test]
    async fn transition_results_keep_guard_order() {
        let guards = vec![
            guard("slow-pass", command(&["sh", "-c", "sleep 0.3"]), 1, 0),
            guard("fast-fail", command(&["false"]), 1, 0),
            guard(
                "secret",
                command(&["sh", "-c", "echo ${token}; exit 1"]),
                1,
                0,
            ),
        ];
        let results = evaluate_transition(&guards, &ctx()).await;
        let names: Vec<_> = results
            .iter()
            .map(|r| (r.name.as_str(), r.outcome))
            .collect();
        assert_eq!(
            names,
            vec![
                ("slow-pass", Outcome::Pass),
                ("fast-fail", Outcome::Fail),
                ("secret", Outcome::Fail)
            ]
        );
        let evidence = results[2].evidence.as_deref().expect("stdout");
        assert!(
            evidence.contains("***") && !evidence.contains("s3cr3t"),
            "{evidence}"
        );
    }
}
