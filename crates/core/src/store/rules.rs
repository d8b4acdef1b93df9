//! The commit rules: what every [`Store`](super::Store) checks before it writes, and what a
//! write does to the run. Each rule is written here once and every implementation calls it
//! (the embedded store's session, the memory store, and the next backend), so they cannot
//! drift apart; a backend decides only how it reads the run and the environment's holder and
//! how it makes the write atomic.
//!
//! The order of the checks is part of the `Store` trait's behaviour (a commit to an unknown
//! run with no events is `Invalid`, not `NotFound`): events first, then existence, then
//! version, then the end.

use super::{RunChange, StoreError};
use crate::event::{Event, NewEvent};
use crate::run::{Run, RunId};

/// Every write records at least one event.
pub fn need_events(events: &[NewEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::Invalid(
            "a commit must record at least one event".into(),
        ));
    }
    Ok(())
}

/// Whether `run` may be created with `events`: `exists` says whether a run with its id exists
/// already, `holder` which unended run holds a lock key, if any (a backend keys its holders
/// on the keys of [`Run::lock_keys`] and nothing else). A run needs every one of its keys
/// free; the refusal names the run holding the first one taken, and which lock that is.
pub fn check_create(
    run: &Run,
    exists: bool,
    mut holder: impl FnMut(&str) -> Result<Option<RunId>, StoreError>,
    events: &[NewEvent],
) -> Result<(), StoreError> {
    need_events(events)?;
    if exists {
        return Err(StoreError::DuplicateRun(run.id.clone()));
    }
    for (key, lock) in run.lock_keys().iter() {
        if let Some(active) = holder(key)? {
            return Err(StoreError::EnvironmentBusy {
                workflow: run.workflow.clone(),
                env: run.env.clone(),
                lock: lock.map(str::to_owned),
                active,
            });
        }
    }
    Ok(())
}

/// Whether run `id`, as the store holds it (`None`: no such run), may move from
/// `expected_version` recording `events`: it exists, is at that version (compare-and-set) and
/// has not ended. Returns the run to apply the change to.
pub fn check_commit(
    id: &RunId,
    run: Option<Run>,
    expected_version: u64,
    events: &[NewEvent],
) -> Result<Run, StoreError> {
    need_events(events)?;
    let run = run.ok_or_else(|| StoreError::NotFound(id.clone()))?;
    if run.version != expected_version {
        return Err(StoreError::Conflict {
            run: id.clone(),
            expected: expected_version,
            actual: run.version,
        });
    }
    if run.status.is_ended() {
        return Err(StoreError::RunEnded {
            run: id.clone(),
            status: run.status,
        });
    }
    Ok(run)
}

/// Whether `events` may be appended to run `id`, as the store holds it (`None`: no such run):
/// it exists and has not ended, or only [`may_follow_the_end`].
pub fn check_append(id: &RunId, run: Option<&Run>, events: &[NewEvent]) -> Result<(), StoreError> {
    need_events(events)?;
    let run = run.ok_or_else(|| StoreError::NotFound(id.clone()))?;
    if run.status.is_ended() && !may_follow_the_end(events) {
        return Err(StoreError::RunEnded {
            run: id.clone(),
            status: run.status,
        });
    }
    Ok(())
}

/// Whether `events` may still be appended to a run that has ended: only the outcome of an
/// action that was already running when it ended (an `abort` from another process), so the
/// record says how that action finished or that it was stopped, and the notifications of its
/// end (`Notified`). Nothing new may start or be evaluated.
pub fn may_follow_the_end(events: &[NewEvent]) -> bool {
    events.iter().all(|e| {
        matches!(
            e.kind,
            crate::event::EventKind::ActionFinished { .. }
                | crate::event::EventKind::ActionInterrupted { .. }
                | crate::event::EventKind::Notified { .. }
        )
    })
}

/// Orders runs as `list_runs` returns them: by start time, then id (ids of runs started in the
/// same second are not in creation order).
pub fn sort_by_creation(runs: &mut [Run]) {
    runs.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
}

/// The commit time by [`crate::clock_jump::commit_time`]; a clock jump is reported on the
/// log (a warning on stderr) as well as kept out of the time recorded.
pub fn commit_time(now: jiff::Timestamp, last: Option<jiff::Timestamp>) -> jiff::Timestamp {
    let (at, jump) = crate::clock_jump::commit_time(now, last);
    if let Some(jump) = jump {
        tracing::warn!(
            "{jump}: the previous event's time is not copied; this write is stamped {at} \
             (docs/storage.md, Times and clocks)"
        );
    }
    at
}

impl super::group::Commit {
    /// The run after this commit, from `current`, the run as the store holds it (`None`: no
    /// such run), stamped `at`: [`check_commit`], then [`apply_change`]. Returns the events
    /// to seal with it.
    pub fn apply(
        self,
        current: Option<Run>,
        at: jiff::Timestamp,
    ) -> Result<(Run, Vec<NewEvent>), StoreError> {
        let mut run = check_commit(&self.id, current, self.expected, &self.events)?;
        apply_change(&mut run, &self.change, at);
        Ok((run, self.events))
    }
}

/// Applies `change` to `run` at `now`, bumping its version.
pub fn apply_change(run: &mut Run, change: &RunChange, now: jiff::Timestamp) {
    if let Some(state) = &change.state {
        run.state = state.clone();
        run.state_entered_at = now;
    }
    if let Some(status) = change.status {
        run.status = status;
        if status.is_ended() && run.ended_at.is_none() {
            run.ended_at = Some(now);
        }
    }
    run.version += 1;
    run.updated_at = now;
}

/// Prepares a new run for creation at `now`.
pub fn stamp_new_run(run: &mut Run, now: jiff::Timestamp) {
    run.version = 1;
    run.started_at = now;
    run.state_entered_at = now;
    run.updated_at = now;
    run.ended_at = if run.status.is_ended() {
        Some(now)
    } else {
        None
    };
}

/// Seals `events` for `run` after `prev_hash`, numbering from `next_seq`.
pub fn seal_all(
    events: Vec<NewEvent>,
    run: &RunId,
    at: jiff::Timestamp,
    next_seq: u64,
    prev_hash: &str,
) -> Vec<Event> {
    let mut prev = prev_hash.to_owned();
    let mut out = Vec::with_capacity(events.len());
    for (i, new) in events.into_iter().enumerate() {
        let event = Event::seal(next_seq + i as u64, run.clone(), at, new, &prev);
        prev.clone_from(&event.hash);
        out.push(event);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunStatus;
    use crate::store::conformance::{moved, run};

    #[test]
    fn commit_rules_are_checked_in_their_documented_order() {
        let id = RunId::from("r1");
        let mut r = run("r1", "web", "prod");
        r.version = 2;
        // No events beats everything, then existence, then version, then the end.
        assert!(matches!(
            check_commit(&id, None, 1, &[]),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            check_commit(&id, None, 1, &[moved("a", "b")]),
            Err(StoreError::NotFound(_))
        ));
        r.status = RunStatus::Succeeded;
        assert!(matches!(
            check_commit(&id, Some(r.clone()), 1, &[moved("a", "b")]),
            Err(StoreError::Conflict {
                expected: 1,
                actual: 2,
                ..
            })
        ));
        assert!(matches!(
            check_commit(&id, Some(r.clone()), 2, &[moved("a", "b")]),
            Err(StoreError::RunEnded { .. })
        ));
        assert!(matches!(
            check_append(&id, Some(&r), &[moved("a", "b")]),
            Err(StoreError::RunEnded { .. })
        ));
        let held = |_: &str| Ok(Some(RunId::from("r0")));
        let free = |_: &str| Ok(None);
        assert!(matches!(
            check_create(&r, true, held, &[moved("a", "b")]),
            Err(StoreError::DuplicateRun(_))
        ));
        assert!(matches!(
            check_create(&r, false, held, &[moved("a", "b")]),
            Err(StoreError::EnvironmentBusy { .. })
        ));
        assert!(check_create(&r, false, free, &[moved("a", "b")]).is_ok());
    }

    #[test]
    fn a_run_under_a_shared_lock_needs_its_pair_free_too_and_the_refusal_names_the_lock_taken() {
        let mut r = run("r2", "web", "prod");
        r.lock = Some("shared".into());
        let events = [moved("a", "b")];
        // (the key held, the lock the refusal names)
        let cases: &[(&str, Option<&str>)] = &[("web/prod", None), ("lock:shared", Some("shared"))];
        for (taken, named) in cases {
            let holder = |key: &str| Ok((key == *taken).then(|| RunId::from("r1")));
            match check_create(&r, false, holder, &events) {
                Err(StoreError::EnvironmentBusy { lock, active, .. }) => {
                    assert_eq!(
                        (lock.as_deref(), active.as_str()),
                        (*named, "r1"),
                        "{taken}"
                    );
                }
                other => panic!("{taken}: expected EnvironmentBusy, got {other:?}"),
            }
        }
        // A lookup that fails fails the create.
        let broken = |_: &str| Err(StoreError::Invalid("unreadable".into()));
        assert!(matches!(
            check_create(&r, false, broken, &events),
            Err(StoreError::Invalid(_))
        ));
    }
}
