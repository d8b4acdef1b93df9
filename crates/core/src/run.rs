//! A run: one trip of one workflow through one environment, as the store keeps it.
//!
//! A run pins the exact workflow text it started with (and its SHA-256), so editing the file
//! later never changes an in-flight deployment. Its `version` is the optimistic-concurrency
//! token: every commit names the version it read and fails if the run moved in between.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A run's id: the UTC creation time to the second plus four random hex digits, e.g.
/// `20261126-164501-3f9a`. Ids sort by creation time and are short enough to type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl RunId {
    /// A fresh id for a run created at `now`.
    ///
    /// The random part mixes the time's nanoseconds, the process id and a process-wide counter
    /// through SHA-256: enough to keep two runs started in the same second apart, without a
    /// dependency on an OS random source. The store still refuses a duplicate id, and
    /// `Engine::start` (waygate-executor) then draws another.
    pub fn generate(now: jiff::Timestamp) -> RunId {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut hasher = Sha256::new();
        hasher.update(now.as_nanosecond().to_le_bytes());
        hasher.update(std::process::id().to_le_bytes());
        hasher.update(count.to_le_bytes());
        let digest = hasher.finalize();
        RunId(format!(
            "{}-{:02x}{:02x}",
            now.strftime("%Y%m%d-%H%M%S"),
            digest[0],
            digest[1]
        ))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for RunId {
    fn from(s: &str) -> Self {
        RunId(s.to_owned())
    }
}

/// Where a run stands. `Active` and `Waiting` hold the environment; the other three are ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Moving, or ready to move.
    Active,
    /// Blocked on an approval, a timer, a window or a watch.
    Waiting,
    /// Reached a success terminal state.
    Succeeded,
    /// Reached a failure terminal state, or failed in place.
    Failed,
    /// Stopped by `waygate abort`.
    Aborted,
}

impl RunStatus {
    /// True for the statuses a run never leaves (`succeeded`, `failed`, `aborted`).
    pub fn is_ended(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Aborted
        )
    }

    /// Whether a run with this status is one `runs --status filter` lists. `active` means
    /// "has not ended": `active` and `waiting` runs both (a waiting run is active, only held up,
    /// and holds its environment); every other filter is its own status alone.
    pub fn falls_under(self, filter: RunStatus) -> bool {
        match filter {
            RunStatus::Active => !self.is_ended(),
            other => self == other,
        }
    }

    /// The documented lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Active => "active",
            RunStatus::Waiting => "waiting",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Aborted => "aborted",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "active" => RunStatus::Active,
            "waiting" => RunStatus::Waiting,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "aborted" => RunStatus::Aborted,
            other => return Err(format!("unknown run status `{other}`")),
        })
    }
}

/// A run as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The run's id.
    pub id: RunId,
    /// The workflow's name (from the pinned definition).
    pub workflow: String,
    /// The environment the run deploys to; one active run per (workflow, env), and per
    /// [`Run::lock`] too when the environment names a shared lock ([`LockKeys`]).
    pub env: String,
    /// The shared lock its environment names (`environments: { "production": (lock: "NAME") }`),
    /// held by one run of any workflow at a time, besides the run's (workflow, env) lock.
    /// `None` (and absent from the record, so runs stored before locks could be shared read as
    /// they were): the (workflow, env) lock only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// The current state's name.
    pub state: String,
    /// Where the run stands.
    pub status: RunStatus,
    /// Bumped by one on every commit; the optimistic-concurrency token. The store sets it to 1
    /// on creation.
    pub version: u64,
    /// Who started the run.
    pub initiator: String,
    /// The workflow file's path as given to `start`, for people; the pinned text is the truth.
    pub file: String,
    /// The directory `start` was run in, canonical and absolute: the run's commands run here
    /// (unless their `cwd` says otherwise) and its relative paths resolve here, whichever
    /// directory later commands are typed in. `None` for runs recorded before waygate kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// The workflow file's canonical absolute path when the run started, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// Resolved variable values. Secret variables are never stored: only non-secret values.
    pub vars: BTreeMap<String, String>,
    /// The exact workflow text the run started with.
    pub definition: String,
    /// SHA-256 of `definition`, lowercase hex.
    pub definition_hash: String,
    /// When the run was created (stamped by the store).
    pub started_at: jiff::Timestamp,
    /// When the run entered `state` (stamped by the store on every state change).
    pub state_entered_at: jiff::Timestamp,
    /// The last commit's time.
    pub updated_at: jiff::Timestamp,
    /// When the run ended, once it has.
    pub ended_at: Option<jiff::Timestamp>,
}

impl Run {
    /// A new active run in `state`, pinning `definition`; the store stamps times and version.
    pub fn new(
        id: RunId,
        workflow: impl Into<String>,
        env: impl Into<String>,
        state: impl Into<String>,
        initiator: impl Into<String>,
        file: impl Into<String>,
        definition: impl Into<String>,
    ) -> Run {
        let definition = definition.into();
        let now = jiff::Timestamp::now();
        Run {
            id,
            workflow: workflow.into(),
            env: env.into(),
            lock: None,
            state: state.into(),
            status: RunStatus::Active,
            version: 0,
            initiator: initiator.into(),
            file: file.into(),
            workdir: None,
            file_path: None,
            vars: BTreeMap::new(),
            definition_hash: sha256_hex(definition.as_bytes()),
            definition,
            started_at: now,
            state_entered_at: now,
            updated_at: now,
            ended_at: None,
        }
    }

    /// The `RunStarted` event that records this run's creation, its first event: what it
    /// deploys, where it starts, the definition and variables it pinned, where it started.
    pub fn started(&self) -> crate::event::EventKind {
        crate::event::EventKind::RunStarted {
            workflow: self.workflow.clone(),
            env: self.env.clone(),
            state: self.state.clone(),
            file: self.file.clone(),
            definition_hash: self.definition_hash.clone(),
            vars: self.vars.clone(),
            workdir: self.workdir.clone(),
            file_path: self.file_path.clone(),
        }
    }
}

impl Run {
    /// Whether the run was going at some time between `since` and `until` (either open):
    /// started at or before `until`, and not ended before `since`. The scope of `audit
    /// report --since/--until` and of the runs page's time filter.
    pub fn going_between(
        &self,
        since: Option<jiff::Timestamp>,
        until: Option<jiff::Timestamp>,
    ) -> bool {
        until.is_none_or(|u| self.started_at <= u)
            && since.is_none_or(|s| self.ended_at.is_none_or(|e| e >= s))
    }

    /// The locks this run holds while it has not ended ([`LockKeys`]).
    pub fn lock_keys(&self) -> LockKeys {
        LockKeys::of(&self.workflow, &self.env, self.lock.as_deref())
    }

    /// The key of the lock this run names: its shared lock's when its environment names one,
    /// else its (workflow, env) pair's ([`LockKeys::named`]). It holds [`Run::lock_keys`],
    /// which is more than this one under a shared lock.
    pub fn lock_key(&self) -> String {
        self.lock_keys().named().to_owned()
    }
}

/// The one rule for which runs exclude each other: the keys of the locks a run holds while it
/// has not ended, and no two unended runs hold one key. Every run holds its (workflow, env)
/// pair's lock, and also its environment's shared lock when the environment names one; so
/// editing a workflow's file to name a lock, rename it or drop it while a run is going never
/// lets a second run of that workflow into that environment. Every store keys its
/// "environment free" check on these keys ([`crate::store::rules::check_create`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockKeys {
    /// `WORKFLOW/ENV` ([`lock_key`] without a lock): held by every unended run of the pair.
    pub pair: String,
    /// `lock:NAME` ([`lock_key`] with one), when the run's environment names a shared lock.
    pub shared: Option<String>,
}

impl LockKeys {
    /// The keys a run of `workflow` in `env` holds, under the shared lock `lock` if any.
    pub fn of(workflow: &str, env: &str, lock: Option<&str>) -> LockKeys {
        LockKeys {
            pair: lock_key(workflow, env, None),
            shared: lock.map(|name| lock_key(workflow, env, Some(name))),
        }
    }

    /// Every key, the shared lock's first, each with the shared lock's name (`None`: the
    /// pair's), as a refusal names it.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        let shared = self
            .shared
            .as_deref()
            .map(|key| (key, key.strip_prefix(SHARED)));
        shared.into_iter().chain([(self.pair.as_str(), None)])
    }

    /// Whether `key` is one of these.
    pub fn contains(&self, key: &str) -> bool {
        self.pair == key || self.shared.as_deref() == Some(key)
    }

    /// The key the run names: the shared lock's, or the pair's without one.
    pub fn named(&self) -> &str {
        self.shared.as_deref().unwrap_or(&self.pair)
    }
}

/// The prefix of a shared lock's key.
const SHARED: &str = "lock:";

/// Unended runs of one (workflow, env), more than one of them: what a waygate from before every
/// run held its pair's lock could leave behind (a run under a shared lock did not hold it, so
/// editing the lock let a second run in). A store that holds one unended run per pair cannot
/// take them, and its refusal names them with this: `runs A and B are both active in
/// environment `ENV` of workflow `WORKFLOW``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairHeldTwice {
    /// The workflow.
    pub workflow: String,
    /// The environment.
    pub env: String,
    /// The unended runs of the pair, in id order.
    pub runs: Vec<RunId>,
}

impl PairHeldTwice {
    /// The pairs that more than one unended run of `runs` holds, by workflow, then env.
    pub fn among<'a>(runs: impl IntoIterator<Item = &'a Run>) -> Vec<PairHeldTwice> {
        let mut pairs: BTreeMap<(&str, &str), Vec<RunId>> = BTreeMap::new();
        for run in runs.into_iter().filter(|r| !r.status.is_ended()) {
            pairs
                .entry((run.workflow.as_str(), run.env.as_str()))
                .or_default()
                .push(run.id.clone());
        }
        pairs
            .into_iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|((workflow, env), mut runs)| {
                runs.sort();
                runs.dedup();
                PairHeldTwice {
                    workflow: workflow.to_owned(),
                    env: env.to_owned(),
                    runs,
                }
            })
            .filter(|pair| pair.runs.len() > 1)
            .collect()
    }
}

impl fmt::Display for PairHeldTwice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.runs.iter().map(RunId::as_str).collect();
        let (last, rest) = ids.split_last().map_or(("", &[][..]), |(l, r)| (*l, r));
        let all = if rest.len() == 1 { "both" } else { "all" };
        write!(
            f,
            "runs {} and {last} are {all} active in environment `{}` of workflow `{}`",
            rest.join(", "),
            crate::text::escape_control(&self.env),
            crate::text::escape_control(&self.workflow)
        )
    }
}

/// The key of one lock: without a shared lock `WORKFLOW/ENV` (a workflow name has no `/`, so
/// the key splits at its first one), the (workflow, env) pair's; with one, `lock:NAME`, which
/// no such key can equal (a workflow name has no `:`). Which keys a run holds: [`LockKeys`].
pub fn lock_key(workflow: &str, env: &str, lock: Option<&str>) -> String {
    match lock {
        Some(name) => format!("{SHARED}{name}"),
        None => format!("{workflow}/{env}"),
    }
}

/// Whether `name` can name a shared lock: `[a-z0-9_-]+`, like a workflow's name.
pub fn valid_lock_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    // By table rather than `write!` per byte: every sealed event's hash comes through here
    // (docs/performance.md, sequential commits).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_held_twice_are_the_pairs_of_more_than_one_unended_run_and_say_which() {
        let run = |id: &str, workflow: &str, env: &str, status: RunStatus| {
            let mut run = Run::new(RunId::from(id), workflow, env, "s", "ana", "f.ron", "(x)");
            run.status = status;
            run
        };
        let runs = [
            run("r3", "web", "prod", RunStatus::Active),
            run("r1", "web", "prod", RunStatus::Active),
            run("r0", "web", "prod", RunStatus::Aborted),
            run("r2", "web", "qa", RunStatus::Active),
            run("r5", "api", "prod", RunStatus::Active),
            run("r4", "api", "prod", RunStatus::Active),
            run("r6", "api", "prod", RunStatus::Active),
        ];
        let shown: Vec<String> = PairHeldTwice::among(&runs)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "runs r4, r5 and r6 are all active in environment `prod` of workflow `api`",
                "runs r1 and r3 are both active in environment `prod` of workflow `web`",
            ]
        );
        assert!(PairHeldTwice::among(&runs[1..4]).is_empty());
    }

    #[test]
    fn started_records_what_the_run_pinned() {
        let mut run = Run::new(
            RunId::from("r1"),
            "web",
            "prod",
            "build",
            "ana",
            "web.ron",
            "(x)",
        );
        run.vars.insert("version".into(), "1.2".into());
        run.workdir = Some("/srv/web".into());
        let crate::event::EventKind::RunStarted {
            workflow,
            env,
            state,
            file,
            definition_hash,
            vars,
            workdir,
            file_path,
        } = run.started()
        else {
            panic!("not RunStarted");
        };
        assert_eq!(
            (
                workflow.as_str(),
                env.as_str(),
                state.as_str(),
                file.as_str()
            ),
            ("web", "prod", "build", "web.ron")
        );
        assert_eq!(definition_hash, sha256_hex(b"(x)"));
        assert_eq!(vars, run.vars);
        assert_eq!(workdir.as_deref(), Some("/srv/web"));
        assert_eq!(file_path, None);
    }

    #[test]
    fn run_ids_sort_by_time_and_differ_within_a_second() {
        let t1: jiff::Timestamp = "2026-11-26T16:45:01Z".parse().expect("timestamp");
        let t2: jiff::Timestamp = "2026-11-26T16:45:02Z".parse().expect("timestamp");
        let a = RunId::generate(t1);
        let b = RunId::generate(t1);
        let c = RunId::generate(t2);
        assert!(a.as_str().starts_with("20261126-164501-"));
        assert_eq!(a.as_str().len(), "20261126-164501-3f9a".len());
        assert_ne!(a, b);
        assert!(a < c && b < c);
    }

    #[test]
    fn the_active_filter_takes_every_run_that_has_not_ended() {
        use RunStatus::*;
        let all = [Active, Waiting, Succeeded, Failed, Aborted];
        // (filter, the statuses it lists)
        let cases: &[(RunStatus, &[RunStatus])] = &[
            (Active, &[Active, Waiting]),
            (Waiting, &[Waiting]),
            (Succeeded, &[Succeeded]),
            (Failed, &[Failed]),
            (Aborted, &[Aborted]),
        ];
        for (filter, listed) in cases {
            for status in all {
                assert_eq!(
                    status.falls_under(*filter),
                    listed.contains(&status),
                    "{status} under --status {filter}"
                );
            }
        }
    }

    #[test]
    fn status_serializes_lowercase_and_knows_its_ends() {
        let json = serde_json::to_string(&RunStatus::Succeeded).expect("json");
        assert_eq!(json, "\"succeeded\"");
        assert!(RunStatus::Aborted.is_ended() && !RunStatus::Waiting.is_ended());
        assert_eq!("failed".parse::<RunStatus>(), Ok(RunStatus::Failed));
    }
}
