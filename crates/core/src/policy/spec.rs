//! The RON policy file, one type per construct, mirroring the file one-to-one (as
//! [`crate::spec`] does for workflows). [`super::read`] turns it into a [`super::Policy`].

use serde::Deserialize;

/// A whole policy file: `Policy(name: .., rules: [..])`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename = "Policy", deny_unknown_fields)]
pub struct PolicySpec {
    /// The policy's name, shown with every violation.
    pub name: String,
    /// What the policy is for.
    #[serde(default)]
    pub description: Option<String>,
    /// The rules, each checked on its own.
    pub rules: Vec<RuleSpec>,
}

/// One named rule: `(name: "staging-first", rule: PassesThrough(..))`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique within the policy; names the rule in every violation.
    pub name: String,
    /// Why the rule exists, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// What must hold.
    pub rule: RuleKind,
}

/// The rule kinds of `docs/policies.md`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum RuleKind {
    /// Every path from the initial state to `state` passes through `through`.
    PassesThrough {
        /// The state guarded by the rule.
        state: String,
        /// The state every way to it must pass.
        through: String,
    },
    /// Every way into `state` (or every path to it) passes a guard like `guard`.
    GuardedBy {
        /// The state guarded by the rule.
        state: String,
        /// The guard that must be on the way.
        guard: GuardPattern,
        /// Every move into the state (`Entry`, the default) or every path to it (`Path`).
        #[serde(default)]
        on: Scope,
    },
    /// From every state reachable from `from` (without passing `state`), `state` can be
    /// reached.
    CanReach {
        /// Where the rule starts to apply (included).
        from: String,
        /// The state that must stay reachable; the workflow's `rollback` when not given.
        #[serde(default)]
        state: Option<String>,
    },
    /// Every non-terminal state (reachable from `from`, when given) has a failure path.
    FailurePath {
        /// Where the rule starts to apply (included); every state when not given.
        #[serde(default)]
        from: Option<String>,
    },
    /// States whose names match `states` have a deadline no longer than `max`.
    DeadlineAtMost {
        /// A name pattern: `*` any characters, `?` one.
        states: String,
        /// The longest deadline allowed.
        max: String,
    },
}

/// Where a [`RuleKind::GuardedBy`] guard must be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Scope {
    /// On every transition into the state; any other move into it (an `on_failure`, an
    /// incident falling back to `rollback`) breaks the rule.
    #[default]
    Entry,
    /// On some transition of every path from the initial state to the state.
    Path,
}

/// A guard as a rule wants it: a check kind, and what it must say. `name` (every kind) is a
/// pattern the guard's name must match.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum GuardPattern {
    /// An `Approval`.
    Approval {
        /// A pattern the guard's name must match.
        #[serde(default)]
        name: Option<String>,
        /// The approval must have `not_by_initiator: true`.
        #[serde(default)]
        not_by_initiator: bool,
        /// At least this many approvers.
        #[serde(default)]
        min: Option<u32>,
    },
    /// A `Command`.
    Command {
        /// A pattern the guard's name must match.
        #[serde(default)]
        name: Option<String>,
        /// A pattern the program (the first element of `run`, as written) must match.
        #[serde(default)]
        program: Option<String>,
    },
    /// An `Http` check.
    Http {
        /// A pattern the guard's name must match.
        #[serde(default)]
        name: Option<String>,
    },
    /// A `Json` check.
    Json {
        /// A pattern the guard's name must match.
        #[serde(default)]
        name: Option<String>,
    },
    /// A `Wait`.
    Wait {
        /// A pattern the guard's name must match.
        #[serde(default)]
        name: Option<String>,
    },
    /// A `Window`.
    Window {
        /// A pattern the guard's name must match.
        #[serde(default)]
        name: Option<String>,
    },
    /// A `Watch`.
    Watch {
        /// A pattern the guard's name must match.
        #[serde(default)]
        name: Option<String>,
    },
}
