//! The audit trail's events and their SHA-256 hash chain.
//!
//! Every change to a run, and every guard evaluation, approval and action around it, is one
//! [`Event`] in a single global log with a gap-free sequence number. Each event's `hash` covers
//! its content and the previous event's hash, so altering, removing or reordering any event
//! breaks the chain from that point on; `waygate audit verify` recomputes it.
//!
//! # The hash
//!
//! `hash = SHA-256(field(prev_hash) ‖ field(seq) ‖ field(run_id) ‖ field(at) ‖ field(actor) ‖
//! field(kind))`, lowercase hex, where `field(x)` is `x`'s UTF-8 bytes preceded by their length
//! as a little-endian `u64` (so no two different field lists encode the same), and:
//! - `prev_hash`: the previous event's hash in hex; 64 `0`s for the first event;
//! - `seq`: decimal, no padding;
//! - `at`: RFC 3339 in UTC as jiff prints a `Timestamp` (`2026-11-26T16:45:01.123456789Z`,
//!   fraction only as long as needed);
//! - `kind`: the compact `serde_json` encoding of [`EventKind`]: `{"kind":"Name",...}` with the
//!   kind's fields in declaration order (maps are `BTreeMap`s, hence sorted; absent optional
//!   guard fields are omitted).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::outcome::GuardResult;
use crate::run::{hex, RunId, RunStatus};

/// `prev_hash` of the very first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields the hash covers, in their order: `prev_hash`, `seq`, `run_id`, `at`, `actor`,
/// `kind`, each as the bytes of the module docs. A field may come in parts (verify's fast
/// path finds the kind's fields in a record without their braces).
pub(crate) type HashedFields<'a> = [&'a [&'a [u8]]; 6];

/// The one encoding of the hash chain (see the module docs): each field's length as a
/// little-endian `u64`, then its bytes. Every hash of an event, whoever computes it, goes
/// through here.
pub(crate) fn encode_hashed(fields: HashedFields<'_>, mut out: impl FnMut(&[u8])) {
    for parts in fields {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        out(&(len as u64).to_le_bytes());
        for part in parts {
            out(part);
        }
    }
}

/// The SHA-256 of [`encode_hashed`].
pub(crate) fn digest_hashed(fields: HashedFields<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    encode_hashed(fields, |bytes| hasher.update(bytes));
    hasher.finalize().into()
}

/// Whether `hex` is `digest` in lowercase hex, without formatting it.
pub(crate) fn hex_matches(digest: &[u8], hex: &[u8]) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    hex.len() == 2 * digest.len()
        && digest.iter().enumerate().all(|(i, b)| {
            hex[2 * i] == HEX[usize::from(b >> 4)] && hex[2 * i + 1] == HEX[usize::from(b & 15)]
        })
}

/// The bytes of an event as a store keeps them, each field exactly as the hash covers it (the
/// module docs): `seq` in decimal, `at` as jiff prints it, `kind` as its compact JSON. A store
/// that keeps these bytes (the PostgreSQL store's columns) checks a stored event's hash
/// without decoding it: [`StoredEvent::hash_matches`].
#[derive(Debug, Clone, Copy)]
pub struct StoredEvent<'a> {
    /// `seq` in decimal.
    pub seq: &'a str,
    /// The run id.
    pub run_id: &'a str,
    /// `at` as the hash covers it.
    pub at: &'a str,
    /// The actor.
    pub actor: &'a str,
    /// The kind's compact JSON, `{"kind":"Name",...}`.
    pub kind: &'a str,
    /// The previous event's hash, hex.
    pub prev_hash: &'a str,
    /// The event's own hash, hex.
    pub hash: &'a str,
}

impl StoredEvent<'_> {
    /// Whether `hash` is the hash of these bytes as they are. True means the bytes are the
    /// ones that were hashed when the event was sealed, so they decode to that event and
    /// encode back to themselves; false may also mean bytes that decode to a right event but
    /// are not its encoding, which only the decoded [`Event::hash_is_right`] can tell apart.
    pub fn hash_matches(&self) -> bool {
        let digest = digest_hashed([
            &[self.prev_hash.as_bytes()],
            &[self.seq.as_bytes()],
            &[self.run_id.as_bytes()],
            &[self.at.as_bytes()],
            &[self.actor.as_bytes()],
            &[self.kind.as_bytes()],
        ]);
        hex_matches(&digest, self.hash.as_bytes())
    }

    /// The kind's name as its JSON begins (`{"kind":"Name"`), if it does.
    pub fn kind_name(&self) -> Option<&str> {
        let rest = self.kind.strip_prefix("{\"kind\":\"")?;
        rest.get(..rest.find('"')?)
    }
}

/// What is wrong with an event that should follow a chain whose next event is `next_seq`
/// after `prev_hash`, given its own `seq`, `prev_hash` and whether its hash is right: the one
/// wording of the chain's faults (`verify` reports it as the first bad event's problem).
pub(crate) fn link_fault(
    next_seq: u64,
    prev_hash: &str,
    seq: u64,
    event_prev_hash: &str,
    hash_ok: bool,
) -> Option<String> {
    if seq != next_seq {
        Some(format!("sequence gap: expected {next_seq}, found {seq}"))
    } else if event_prev_hash != prev_hash {
        Some("prev_hash does not match the previous event's hash".to_owned())
    } else if !hash_ok {
        Some("hash mismatch: the event's content was altered".to_owned())
    } else {
        None
    }
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Gap-free global sequence number, from 1.
    pub seq: u64,
    /// The run the event belongs to.
    pub run_id: RunId,
    /// When the store committed it (UTC), by the writing process's clock. Never earlier than
    /// the previous event's time unless that lay beyond [`crate::clock_jump::TOLERANCE`] ahead
    /// (a clock jump, reported and not copied): `seq`, not `at`, orders the log.
    pub at: jiff::Timestamp,
    /// Who did it: the `--as` actor, or the user running the command.
    pub actor: String,
    /// What happened; serialized inline as `kind` plus the kind's fields.
    #[serde(flatten)]
    pub kind: EventKind,
    /// The previous event's `hash` ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 over this event and `prev_hash`; see the module docs.
    pub hash: String,
}

impl Event {
    /// Builds the event that follows `prev_hash` at `seq`, computing its hash.
    pub fn seal(
        seq: u64,
        run_id: RunId,
        at: jiff::Timestamp,
        new: NewEvent,
        prev_hash: &str,
    ) -> Event {
        let mut event = Event {
            seq,
            run_id,
            at,
            actor: new.actor,
            kind: new.kind,
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        event.hash = event.compute_hash();
        event
    }

    /// Recomputes the hash from the event's fields (including its `prev_hash`).
    pub fn compute_hash(&self) -> String {
        hex(&self.digest(&mut Vec::new()))
    }

    /// Whether `hash` is right for the event's fields (its `prev_hash` included): what
    /// `verify` checks of each event before it checks the links between them.
    pub fn hash_is_right(&self) -> bool {
        self.hash_matches(&mut Vec::new())
    }

    /// Whether `hash` is right: [`Event::compute_hash`] without its allocations, writing the
    /// encoded fields through `scratch` (for `verify`, which checks millions of events).
    pub(crate) fn hash_matches(&self, scratch: &mut Vec<u8>) -> bool {
        hex_matches(&self.digest(scratch), self.hash.as_bytes())
    }

    /// The SHA-256 of [`Event::encode_hashed`], with `seq`, `at` and `kind` formatted through
    /// `scratch`.
    fn digest(&self, scratch: &mut Vec<u8>) -> [u8; 32] {
        let mut hasher = Sha256::new();
        self.encode_hashed(scratch, |bytes| hasher.update(bytes));
        hasher.finalize().into()
    }

    /// Feeds the bytes the hash covers to `out` (see the module docs), formatting through
    /// `scratch`.
    fn encode_hashed(&self, scratch: &mut Vec<u8>, out: impl FnMut(&[u8])) {
        use std::io::Write as _;
        scratch.clear();
        // Writing to a Vec cannot fail, and serializing derived types to one cannot either
        // (no non-string map keys): an error leaves what was written, as `compute_hash` did.
        let _ = write!(scratch, "{}", self.seq);
        let seq_end = scratch.len();
        let _ = write!(scratch, "{}", self.at);
        let at_end = scratch.len();
        if serde_json::to_writer(&mut *scratch, &self.kind).is_err() {
            scratch.truncate(at_end);
        }
        let (seq, rest) = scratch.split_at(seq_end);
        let (at, kind) = rest.split_at(at_end - seq_end);
        encode_hashed(
            [
                &[self.prev_hash.as_bytes()],
                &[seq],
                &[self.run_id.as_str().as_bytes()],
                &[at],
                &[self.actor.as_bytes()],
                &[kind],
            ],
            out,
        );
    }

    /// The kind's name, as `docs/storage.md` lists it (`RunStarted`, `Transitioned`, ...).
    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
    }
}

/// What a caller hands the store: the store adds `seq`, `run_id`, `at` and the hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Who did it.
    pub actor: String,
    /// What happened.
    pub kind: EventKind,
}

impl NewEvent {
    /// An event by `actor`.
    pub fn new(actor: impl Into<String>, kind: EventKind) -> NewEvent {
        NewEvent {
            actor: actor.into(),
            kind,
        }
    }
}

/// Why a run changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// `advance`/`drive`: a transition's guards all passed.
    Advance,
    /// The state's guards failed and it has an `on_failure`.
    OnFailure,
    /// `waygate rollback`, or an incident falling back to the workflow's rollback state.
    Rollback,
    /// The state's deadline passed.
    Deadline,
    /// A `Watch` guard broke.
    Watch,
    /// An `on_enter` action failed.
    Action,
}

impl Cause {
    /// The cause's name as serialized and shown to people (`advance`, `on_failure`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Advance => "advance",
            Cause::OnFailure => "on_failure",
            Cause::Rollback => "rollback",
            Cause::Deadline => "deadline",
            Cause::Watch => "watch",
            Cause::Action => "action",
        }
    }

    /// Whether a move for this cause means something went wrong (a guard, a deadline, a
    /// watch or an action failed), so a command that made it does not report success.
    /// `Rollback` is an operator's request, done as asked.
    pub fn is_failure(self) -> bool {
        match self {
            Cause::Advance | Cause::Rollback => false,
            Cause::OnFailure | Cause::Deadline | Cause::Watch | Cause::Action => true,
        }
    }
}

/// What happened to a run: every kind of event the audit trail holds (`docs/cli.md`,
/// `waygate history`). [`EventKind::NAMES`] lists them for `audit --kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum EventKind {
    /// `start` created the run.
    RunStarted {
        /// Workflow name.
        workflow: String,
        /// Environment.
        env: String,
        /// Initial state.
        state: String,
        /// Workflow file as given.
        file: String,
        /// SHA-256 of the pinned definition.
        definition_hash: String,
        /// Non-secret resolved variables.
        vars: BTreeMap<String, String>,
        /// The directory the run was started in, canonical and absolute: where its commands
        /// run. Omitted when absent (events recorded before it was kept), so their encoding,
        /// and with it their hashes, are unchanged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workdir: Option<String>,
        /// The workflow file's canonical absolute path; omitted when absent, as `workdir`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_path: Option<String>,
    },
    /// One evaluation of a transition's guards: every attempt, failed ones too.
    GuardsEvaluated {
        /// The state being left.
        state: String,
        /// The transition's target.
        to: String,
        /// True when every guard passed.
        passed: bool,
        /// Each guard's result, with bounded evidence.
        guards: Vec<GuardResult>,
    },
    /// An approval was given, or refused (`accepted: false`, with the reason).
    Approved {
        /// The state the run was in.
        state: String,
        /// The approval guard's name.
        guard: String,
        /// The approver's comment.
        comment: Option<String>,
        /// False when the approval was refused (not an approver, wrong state, ...).
        accepted: bool,
        /// Why it was refused.
        reason: Option<String>,
        /// The visit of `state` it was given in ([`crate::visit::visit_number`]), so an
        /// approval recorded just as the run moved on never counts in a later visit. Absent
        /// in stores written before approvals were tied to visits (and then not encoded, so
        /// their hashes still verify).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        visit: Option<u32>,
    },
    /// An approver took back an approval not used yet (`waygate approve RUN GUARD --withdraw`).
    ApprovalWithdrawn {
        /// The state the run was in.
        state: String,
        /// The approval guard's name.
        guard: String,
        /// The approver's comment.
        comment: Option<String>,
        /// The visit of `state` the withdrawn approval was given in.
        visit: u32,
    },
    /// Break-glass: someone allowed by the guard's (or the workflow's) `overridable_by` marked
    /// a failing or waiting check passed for the current visit of the state
    /// (`waygate override RUN GUARD --reason TEXT`; [`crate::decide::apply_overrides`] owns how
    /// it counts).
    Overridden(OverrideRecord),
    /// A `notify` hook was sent for an occurrence ([`crate::notify`]); a failed one is
    /// recorded too, and never changes the run.
    Notified {
        /// The hook's index in the workflow's `notify`.
        hook: u32,
        /// What it announced: `ApprovalWaiting`, `WindowClosed`, `RollbackStarted`, `RunEnded`.
        on: String,
        /// The occurrence's key, so it is sent once.
        occurrence: String,
        /// What was sent, secrets redacted.
        action: String,
        /// Whether it worked.
        ok: bool,
        /// One line for people.
        detail: String,
    },
    /// The run moved.
    Transitioned {
        /// The state left.
        from: String,
        /// The state entered.
        to: String,
        /// Why.
        cause: Cause,
        /// Free text: the rollback reason, the incident's detail.
        reason: Option<String>,
    },
    /// An `on_enter` action began.
    ActionStarted {
        /// The state whose action it is.
        state: String,
        /// Position in `on_enter`, from 0.
        index: u32,
        /// What runs, secrets redacted.
        action: String,
    },
    /// An `on_enter` action finished.
    ActionFinished {
        /// The state whose action it is.
        state: String,
        /// Position in `on_enter`, from 0.
        index: u32,
        /// Whether it succeeded.
        ok: bool,
        /// One line for people.
        detail: String,
        /// Bounded evidence, secrets redacted.
        evidence: Option<String>,
        /// Wall time.
        duration_ms: u64,
        /// The values a named `Command` action published (`crate::outputs`), secrets
        /// redacted. Omitted when empty, so events recorded before actions could publish
        /// encode, and hash, as they did.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        outputs: BTreeMap<String, String>,
    },
    /// An `on_enter` action was stopped by an operator's signal (SIGINT, SIGTERM, SIGHUP)
    /// before it finished: a deliberate stop, not a failure of the action and not a crash. The
    /// action runs again, from its start, when the run is resumed (see `docs/cli.md`, `drive`).
    ActionInterrupted {
        /// The state whose action it is.
        state: String,
        /// Position in `on_enter`, from 0.
        index: u32,
        /// The signal that stopped it: `SIGINT`, `SIGTERM` or `SIGHUP`.
        signal: String,
    },
    /// Someone asked for a rollback.
    RollbackRequested {
        /// The state the run was in.
        from: String,
        /// The rollback state.
        to: String,
        /// The reason given.
        reason: String,
    },
    /// `waygate abort`.
    Aborted {
        /// The state the run was in.
        state: String,
        /// The reason given.
        reason: String,
    },
    /// The run ended.
    RunEnded {
        /// The state it ended in.
        state: String,
        /// How it ended.
        status: RunStatus,
    },
    /// This store was made by salvaging a damaged one (`waygate store salvage`): an event of
    /// the store, not of a run (its `run_id` is empty), after every event carried over. Those
    /// were renumbered and chained anew, times and actors kept; the damaged store is left as
    /// it was. See `docs/storage.md`, "Salvage".
    StoreSalvaged {
        /// The damaged store's location.
        from: String,
        /// How many events were carried over (all the events before this one).
        carried: u64,
        /// The events that could not be carried, by their seq in the damaged store.
        lost: Vec<LostEvents>,
    },
}

/// Events a salvage could not carry over: seqs `first` to `last` of the damaged store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostEvents {
    /// The first lost seq.
    pub first: u64,
    /// The last lost seq.
    pub last: u64,
    /// Why, and where.
    pub why: String,
}

impl EventKind {
    /// Every kind's name, in the documented order (for validating `audit --kind`).
    pub const NAMES: [&'static str; 14] = [
        "RunStarted",
        "GuardsEvaluated",
        "Approved",
        "ApprovalWithdrawn",
        "Transitioned",
        "ActionStarted",
        "ActionFinished",
        "ActionInterrupted",
        "RollbackRequested",
        "Aborted",
        "RunEnded",
        "StoreSalvaged",
        "Overridden",
        "Notified",
    ];

    /// The kind's name, as `docs/storage.md` lists it.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::RunStarted { .. } => "RunStarted",
            EventKind::GuardsEvaluated { .. } => "GuardsEvaluated",
            EventKind::Approved { .. } => "Approved",
            EventKind::ApprovalWithdrawn { .. } => "ApprovalWithdrawn",
            EventKind::Transitioned { .. } => "Transitioned",
            EventKind::ActionStarted { .. } => "ActionStarted",
            EventKind::ActionFinished { .. } => "ActionFinished",
            EventKind::ActionInterrupted { .. } => "ActionInterrupted",
            EventKind::RollbackRequested { .. } => "RollbackRequested",
            EventKind::Aborted { .. } => "Aborted",
            EventKind::RunEnded { .. } => "RunEnded",
            EventKind::StoreSalvaged { .. } => "StoreSalvaged",
            EventKind::Overridden { .. } => "Overridden",
            EventKind::Notified { .. } => "Notified",
        }
    }

    /// The override this event records, when it is an [`EventKind::Overridden`].
    pub fn as_override(&self) -> Option<&OverrideRecord> {
        match self {
            EventKind::Overridden(o) => Some(o),
            _ => None,
        }
    }
}

/// What an [`EventKind::Overridden`] records: how every reader of overrides (which count,
/// `status`, `history`, the audit report) sees one. Stored as the event's fields, beside
/// `kind`, as every kind's are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideRecord {
    /// The state the run was in.
    pub state: String,
    /// The target of the transition the guard is on.
    pub to: String,
    /// The guard's name.
    pub guard: String,
    /// Why; required, never blank.
    pub reason: String,
    /// What the check said at that moment: its latest recorded outcome and detail.
    pub said: String,
    /// The visit of `state` the override counts in ([`crate::visit::visit_number`]).
    pub visit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An override's fields stand beside `kind`, as every kind's do: the form stored
    /// overrides were hashed in, so their hashes hold.
    #[test]
    fn an_override_is_stored_as_its_fields_beside_kind() {
        let kind = EventKind::Overridden(OverrideRecord {
            state: "canary".into(),
            to: "prod".into(),
            guard: "smoke".into(),
            reason: "probe broken".into(),
            said: "fail: HTTP 503".into(),
            visit: 2,
        });
        let json = serde_json::to_string(&kind).expect("json");
        assert_eq!(
            json,
            r#"{"kind":"Overridden","state":"canary","to":"prod","guard":"smoke","reason":"probe broken","said":"fail: HTTP 503","visit":2}"#
        );
        assert_eq!(
            serde_json::from_str::<EventKind>(&json).expect("read"),
            kind
        );
    }

    fn sample(prev: &str) -> Event {
        let at: jiff::Timestamp = "2026-11-26T16:45:01.5Z".parse().expect("timestamp");
        let kind = EventKind::Transitioned {
            from: "canary".into(),
            to: "prod".into(),
            cause: Cause::OnFailure,
            reason: None,
        };
        Event::seal(7, RunId::from("r1"), at, NewEvent::new("ana", kind), prev)
    }

    #[test]
    fn json_has_the_documented_fields_inline() {
        let event = sample(GENESIS_HASH);
        let value = serde_json::to_value(&event).expect("json");
        assert_eq!(value["seq"], 7);
        assert_eq!(value["run_id"], "r1");
        assert_eq!(value["at"], "2026-11-26T16:45:01.5Z");
        assert_eq!(value["kind"], "Transitioned");
        assert_eq!(value["cause"], "on_failure");
        assert_eq!(value["prev_hash"], GENESIS_HASH);
        assert_eq!(value["hash"].as_str().map(str::len), Some(64));
        let back: Event = serde_json::from_value(value).expect("parse back");
        assert_eq!(back, event);
    }

    #[test]
    fn kind_names_match_the_serialized_tag() {
        let event = sample(GENESIS_HASH);
        let value = serde_json::to_value(&event.kind).expect("json");
        assert_eq!(value["kind"], event.kind_name());
        assert!(EventKind::NAMES.contains(&event.kind_name()));
    }

    /// A `RunStarted` recorded before runs kept their directory encodes exactly as it did, so
    /// its hash, and every stored chain, still verifies; a new one carries the directory.
    #[test]
    fn run_started_without_a_directory_encodes_as_before() {
        let old = r#"{"kind":"RunStarted","workflow":"w","env":"dev","state":"a","file":"wf.ron","definition_hash":"ab","vars":{"x":"1"}}"#;
        let kind: EventKind = serde_json::from_str(old).expect("old event parses");
        assert_eq!(serde_json::to_string(&kind).expect("json"), old);
        let EventKind::RunStarted { workdir, .. } = &kind else {
            panic!("{kind:?}")
        };
        assert_eq!(workdir, &None);
        let new = EventKind::RunStarted {
            workflow: "w".into(),
            env: "dev".into(),
            state: "a".into(),
            file: "wf.ron".into(),
            definition_hash: "ab".into(),
            vars: BTreeMap::new(),
            workdir: Some("/srv/app".into()),
            file_path: Some("/srv/app/wf.ron".into()),
        };
        let json = serde_json::to_string(&new).expect("json");
        assert!(
            json.ends_with(r#","workdir":"/srv/app","file_path":"/srv/app/wf.ron"}"#),
            "{json}"
        );
    }

    #[test]
    fn cause_names_match_their_serialized_form() {
        for cause in [
            Cause::Advance,
            Cause::OnFailure,
            Cause::Rollback,
            Cause::Deadline,
            Cause::Watch,
            Cause::Action,
        ] {
            let json = serde_json::to_value(cause).expect("json");
            assert_eq!(json, cause.as_str());
        }
    }

    #[test]
    fn the_hashed_bytes_of_a_known_event_are_pinned() {
        // Pinned: the chain's encoding (docs/storage.md, module docs). Changing it breaks
        // every stored chain, and a second backend must produce these bytes exactly.
        let event = sample(GENESIS_HASH);
        let mut bytes = Vec::new();
        event.encode_hashed(&mut Vec::new(), |b| bytes.extend_from_slice(b));
        let mut want = Vec::new();
        for field in [
            GENESIS_HASH,
            "7",
            "r1",
            "2026-11-26T16:45:01.5Z",
            "ana",
            r#"{"kind":"Transitioned","from":"canary","to":"prod","cause":"on_failure","reason":null}"#,
        ] {
            want.extend_from_slice(&(field.len() as u64).to_le_bytes());
            want.extend_from_slice(field.as_bytes());
        }
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&want)
        );
        assert_eq!(bytes, want);
        assert_eq!(event.hash, hex(&Sha256::digest(&want)));
        assert!(event.hash_matches(&mut Vec::new()));
    }

    #[test]
    fn a_stored_event_hashes_as_its_bytes_are_and_names_its_kind() {
        let event = sample(GENESIS_HASH);
        let (seq, at, kind) = (
            event.seq.to_string(),
            event.at.to_string(),
            serde_json::to_string(&event.kind).expect("json"),
        );
        let stored = StoredEvent {
            seq: &seq,
            run_id: event.run_id.as_str(),
            at: &at,
            actor: &event.actor,
            kind: &kind,
            prev_hash: &event.prev_hash,
            hash: &event.hash,
        };
        assert!(stored.hash_matches());
        assert_eq!(stored.kind_name(), Some(event.kind_name()));
        // Any other bytes, even ones that decode to the same kind, do not match.
        let spaced = kind.replacen(':', ": ", 1);
        assert!(!StoredEvent {
            kind: &spaced,
            ..stored
        }
        .hash_matches());
        assert!(!StoredEvent {
            actor: "mallory",
            ..stored
        }
        .hash_matches());
        assert_eq!(
            StoredEvent {
                kind: "[]",
                ..stored
            }
            .kind_name(),
            None
        );
    }

    #[test]
    fn link_faults_are_worded_once() {
        let h = "a".repeat(64);
        assert_eq!(link_fault(3, &h, 3, &h, true), None);
        assert_eq!(
            link_fault(3, &h, 5, &h, true).as_deref(),
            Some("sequence gap: expected 3, found 5")
        );
        assert_eq!(
            link_fault(3, &h, 3, GENESIS_HASH, true).as_deref(),
            Some("prev_hash does not match the previous event's hash")
        );
        assert_eq!(
            link_fault(3, &h, 3, &h, false).as_deref(),
            Some("hash mismatch: the event's content was altered")
        );
    }

    #[test]
    fn hash_covers_content_and_previous_hash() {
        let a = sample(GENESIS_HASH);
        assert_eq!(a.hash, a.compute_hash());
        let mut changed = a.clone();
        changed.actor = "bob".into();
        assert_ne!(changed.compute_hash(), a.hash);
        assert_ne!(sample(&a.hash).hash, a.hash);
    }

    fn approved_at(visit: Option<u32>) -> Event {
        let at: jiff::Timestamp = "2026-11-26T16:45:01Z".parse().expect("timestamp");
        let kind = EventKind::Approved {
            state: "review".into(),
            guard: "sign-off".into(),
            comment: Some("ok".into()),
            accepted: true,
            reason: None,
            visit,
        };
        Event::seal(
            3,
            RunId::from("r1"),
            at,
            NewEvent::new("bob", kind),
            GENESIS_HASH,
        )
    }

    #[test]
    fn an_approval_without_a_visit_encodes_and_hashes_as_before() {
        // Pinned: an `Approved` event as stores wrote it before approvals named their visit.
        // Its encoding (and so every old store's chain) must not change.
        let old = approved_at(None);
        assert_eq!(
            String::from_utf8(serde_json::to_vec(&old.kind).expect("json")).expect("utf-8"),
            r#"{"kind":"Approved","state":"review","guard":"sign-off","comment":"ok","accepted":true,"reason":null}"#
        );
        assert_eq!(
            old.hash,
            "d01110a5890fef6e3f40a7e7e30d00db09908c3b292ce3ec01b85acc5559ce76"
        );
        let read: Event =
            serde_json::from_str(&serde_json::to_string(&old).expect("json")).expect("parse");
        assert_eq!(read.compute_hash(), old.hash);
        let new = approved_at(Some(2));
        assert!(serde_json::to_string(&new)
            .expect("json")
            .contains(r#""visit":2"#));
        assert_ne!(new.hash, old.hash);
    }

    #[test]
    fn every_kind_is_named_once_and_withdrawals_round_trip() {
        let mut names = EventKind::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::NAMES.len());
        let at: jiff::Timestamp = "2026-11-26T16:45:01Z".parse().expect("timestamp");
        let kind = EventKind::ApprovalWithdrawn {
            state: "review".into(),
            guard: "sign-off".into(),
            comment: None,
            visit: 1,
        };
        let e = Event::seal(
            4,
            RunId::from("r1"),
            at,
            NewEvent::new("bob", kind),
            GENESIS_HASH,
        );
        let value = serde_json::to_value(&e).expect("json");
        assert_eq!(value["kind"], "ApprovalWithdrawn");
        assert!(EventKind::NAMES.contains(&e.kind_name()));
        let back: Event = serde_json::from_value(value).expect("parse back");
        assert_eq!(back, e);
        assert!(back.hash_matches(&mut Vec::new()));
    }
}
