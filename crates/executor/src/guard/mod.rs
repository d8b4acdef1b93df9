//! One check, tried once: the dispatcher over the check kinds, one file per kind.
//!
//! Every kind produces a [`Verdict`]: the outcome with its raw detail and evidence. Retries,
//! timing, redaction and bounding are applied on top by [`crate::evaluate`], in one place,
//! so no kind can forget them. Time-based kinds (`Wait`, `Window`, `Watch`) are pure
//! functions of `now` underneath, so they are tested with fixed instants.

pub mod approval;
pub mod command;
pub mod http;
pub mod json;
pub mod wait;
pub mod watch;
pub mod window;

use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;
use waygate_core::model::Check;
use waygate_core::outcome::Outcome;

use crate::context::GuardContext;
use crate::live::Origin;

/// The result of trying a check once, before redaction and bounding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Pass, fail or waiting.
    pub outcome: Outcome,
    /// One line for people.
    pub detail: String,
    /// Output, response excerpts; bounded and redacted later.
    pub evidence: Option<String>,
    /// For waiting: when it is worth looking again.
    pub retry_at: Option<Timestamp>,
    /// A broken watch: the run must leave the state at once.
    pub incident: bool,
    /// What a `Command` that declares `outputs` published (`waygate_core::outputs`); redacted
    /// later, with the detail.
    pub outputs: std::collections::BTreeMap<String, String>,
}

impl Verdict {
    /// A pass with this detail.
    pub fn pass(detail: impl Into<String>) -> Verdict {
        Verdict::new(Outcome::Pass, detail)
    }

    /// A failure with this detail.
    pub fn fail(detail: impl Into<String>) -> Verdict {
        Verdict::new(Outcome::Fail, detail)
    }

    /// Waiting, with this detail and maybe a time to look again.
    pub fn waiting(detail: impl Into<String>, retry_at: Option<Timestamp>) -> Verdict {
        Verdict {
            retry_at,
            ..Verdict::new(Outcome::Waiting, detail)
        }
    }

    fn new(outcome: Outcome, detail: impl Into<String>) -> Verdict {
        Verdict {
            outcome,
            detail: detail.into(),
            evidence: None,
            retry_at: None,
            incident: false,
            outputs: Default::default(),
        }
    }

    /// The same verdict with evidence attached.
    pub fn with_evidence(mut self, evidence: Option<String>) -> Verdict {
        self.evidence = evidence.filter(|e| !e.is_empty());
        self
    }
}

/// Tries `check` once.
///
/// Boxed because a `Watch` recurses into its inner check.
pub fn try_check<'a>(
    check: &'a Check,
    ctx: &'a GuardContext,
    guard_name: &'a str,
) -> Pin<Box<dyn Future<Output = Verdict> + Send + 'a>> {
    Box::pin(async move {
        match check {
            Check::Command(c) => {
                let origin = Origin::Guard {
                    name: guard_name.to_owned(),
                };
                command::check(c, ctx, &origin).await
            }
            Check::Http(h) => http::check(h, ctx).await,
            Check::Json(j) => json::check(j, ctx).await,
            Check::Approval(a) => approval::check(
                a,
                guard_name,
                &ctx.approvals,
                &ctx.initiator,
                &ctx.render_for_display(&a.prompt),
            ),
            Check::Wait(d) => wait::check(*d, ctx.state_entered_at, ctx.now()),
            Check::Window(w) => window::check(w, ctx.now()),
            Check::Watch(w) => {
                let inner = try_check(&w.check, ctx, guard_name).await;
                let now = ctx.now();
                let looks = ctx.looks.get(guard_name).map_or(&[][..], Vec::as_slice);
                let start = watch::window_start(w, ctx.state_entered_at, looks, now);
                watch::check(w, inner, start, now)
            }
        }
    })
}
