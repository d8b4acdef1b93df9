//! What evaluating a guard produced: the input of [`crate::decide`] and the payload of the
//! `GuardsEvaluated` event.

use serde::{Deserialize, Serialize};

/// A guard's outcome, as `docs/workflow-format.md` ("guards") names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The check holds.
    Pass,
    /// The check does not hold, after its retries.
    Fail,
    /// Not yet decidable: approval missing, `Wait` not elapsed, `Window` closed, `Watch` running.
    Waiting,
}

impl Outcome {
    /// The lower-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Waiting => "waiting",
        }
    }
}

/// The most evidence kept per guard result (command output, response body), in bytes.
pub const MAX_EVIDENCE: usize = 4096;

/// One guard's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardResult {
    /// The guard's name.
    pub name: String,
    /// Pass, fail or waiting.
    pub outcome: Outcome,
    /// One line for people: "exit status 1", "HTTP 503", "1 of 2 approvals", "opens in 3h".
    pub detail: String,
    /// Bounded evidence (output tails, response excerpts), secrets redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Wall time spent on the guard, all attempts.
    pub duration_ms: u64,
    /// Tries made (1 without retries).
    pub attempts: u32,
    /// For waiting guards: when waiting may end (timer, window opening). Stored as RFC 3339
    /// text (`"2026-03-02T10:00:50Z"`), in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<jiff::Timestamp>,
    /// For a `Watch` that broke: the incident sends the run to `on_failure` at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incident: bool,
    /// The values a `Command` check published (`crate::outputs`), secrets redacted; they count
    /// once the transition is taken. Omitted when empty.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub outputs: std::collections::BTreeMap<String, String>,
}

impl GuardResult {
    /// A result decided at once, on the first try, with no evidence, no time to wait for
    /// and no incident: what a guard that cannot run (its task crashed) records, and what
    /// tests and benches feed [`crate::decide`].
    pub fn immediate(name: impl Into<String>, outcome: Outcome, detail: impl Into<String>) -> Self {
        GuardResult {
            name: name.into(),
            outcome,
            detail: detail.into(),
            evidence: None,
            duration_ms: 0,
            attempts: 1,
            retry_at: None,
            incident: false,
            outputs: Default::default(),
        }
    }
}

/// Cuts `text` to at most [`MAX_EVIDENCE`] bytes on a character boundary, keeping the tail
/// (where errors are) and saying how much was dropped.
pub fn bound_evidence(text: &str) -> String {
    if text.len() <= MAX_EVIDENCE {
        return text.to_owned();
    }
    let mut start = text.len() - MAX_EVIDENCE;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[{} bytes truncated]\n{}", start, &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_are_their_json_names() {
        for o in [Outcome::Pass, Outcome::Fail, Outcome::Waiting] {
            let json = serde_json::to_value(o).expect("json");
            assert_eq!(json.as_str(), Some(o.as_str()));
        }
    }

    #[test]
    fn retry_at_is_stored_as_rfc_3339_text_and_read_back() {
        // The journal's bytes (and so its hash chain) keep the text form.
        let stored = r#"{"name":"soak","outcome":"waiting","detail":"5m left","duration_ms":0,"attempts":1,"retry_at":"2026-03-02T10:00:50Z"}"#;
        let r: GuardResult = serde_json::from_str(stored).expect("parses");
        assert_eq!(
            r.retry_at,
            Some("2026-03-02T10:00:50Z".parse().expect("timestamp"))
        );
        assert_eq!(serde_json::to_string(&r).expect("json"), stored);
    }

    #[test]
    fn evidence_keeps_the_tail_on_a_char_boundary() {
        let text = format!("{}é{}", "a".repeat(MAX_EVIDENCE), "z".repeat(10));
        let bounded = bound_evidence(&text);
        assert!(bounded.starts_with("[") && bounded.ends_with("zzzzzzzzzz"));
        assert!(bounded.len() <= MAX_EVIDENCE + 40);
        assert_eq!(bound_evidence("short"), "short");
    }
}
