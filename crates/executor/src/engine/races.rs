//! Two commands on one run at once, in one process against an in-memory store: a withdrawal
//! against the step that read the approval, a rollback against a neighbour's bookkeeping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::tests::{kinds, start};
use waygate_core::event::{Cause, EventKind, NewEvent};
use waygate_core::run::{Run, RunId, RunStatus};
use waygate_core::store::{EventFilter, MemoryStore, RunFilter, Store, StoreError, VerifyReport};

use super::*;

const GATE: &str = r#"Workflow(
    name: "gate", initial: "review", rollback: "rollback",
    states: {
        "review": (),
        "done": (terminal: Success),
        "rollback": (on_enter: [Command(run: ["true"])]),
        "rolled_back": (terminal: Failure),
    },
    transitions: [
        (from: "review", to: "done", guards: [(name: "ok", check: Approval(prompt: "ok?"))]),
        (from: "rollback", to: "rolled_back", guards: [(name: "checked", check: Approval(prompt: "old version fine?"))]),
    ],
)"#;

#[tokio::test]
async fn a_withdrawal_makes_a_step_that_read_the_approval_conflict() {
    let store = Arc::new(MemoryStore::new());
    let alice = Engine::new(store.clone(), "alice");
    let bob = Engine::new(store.clone(), "bob");
    let id = start(&alice, GATE).await;
    bob.approve(&id, "ok", None).await.expect("bob approves");
    // A step reads the run (the approval counts), then bob withdraws before it commits.
    let read = alice.load(&id).await.expect("loads");
    let outcome = bob.withdraw(&id, "ok", None).await.expect("withdraws");
    assert!(outcome.approvers.is_empty(), "{outcome:?}");
    let late = alice
        .move_to(&read, Vec::new(), "done", Cause::Advance, None)
        .await
        .expect_err("the move the approval allowed is refused");
    assert!(late.is_conflict(), "{late:?}");
    assert_eq!(store.load_run(&id).expect("run").state, "review");
    let (again, _) = alice.advance(&id, None).await.expect("advances");
    assert!(matches!(again, StepOutcome::Waiting { .. }), "{again:?}");
    // And the other way round: once the move is in, the approval was used.
    bob.approve(&id, "ok", None).await.expect("approves again");
    alice.advance(&id, None).await.expect("moves");
    let used = bob.withdraw(&id, "ok", None).await.expect_err("used");
    assert!(matches!(used, EngineError::Ended { .. }), "{used:?}");
}

/// A store in which a neighbour (a drive recording that it waits) commits just before the
/// first rollback does, so the rollback's commit loses on the version.
struct BusyNeighbour {
    inner: MemoryStore,
    done: AtomicBool,
}

impl Store for BusyNeighbour {
    fn create_run(&self, run: Run, events: Vec<NewEvent>) -> Result<(Run, Vec<Event>), StoreError> {
        self.inner.create_run(run, events)
    }
    fn load_run(&self, id: &RunId) -> Result<Run, StoreError> {
        self.inner.load_run(id)
    }
    fn commit(
        &self,
        id: &RunId,
        expected_version: u64,
        change: RunChange,
        events: Vec<NewEvent>,
    ) -> Result<(Run, Vec<Event>), StoreError> {
        let rollback = events
            .iter()
            .any(|e| matches!(e.kind, EventKind::RollbackRequested { .. }));
        if rollback && !self.done.swap(true, Ordering::SeqCst) {
            let state = self.inner.load_run(id)?.state;
            let looked = EventKind::GuardsEvaluated {
                state,
                to: "done".into(),
                passed: false,
                guards: Vec::new(),
            };
            self.inner.commit(
                id,
                expected_version,
                RunChange::status(RunStatus::Waiting),
                vec![NewEvent::new("drive", looked)],
            )?;
        }
        self.inner.commit(id, expected_version, change, events)
    }
    fn append(&self, id: &RunId, events: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        self.inner.append(id, events)
    }
    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
        self.inner.list_runs(filter)
    }
    fn run_events(&self, id: &RunId) -> Result<Vec<Event>, StoreError> {
        self.inner.run_events(id)
    }
    fn scan_events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        self.inner.scan_events(filter)
    }
    fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.inner.verify()
    }
}

#[tokio::test]
async fn a_rollback_that_loses_to_bookkeeping_tries_again_and_a_second_one_is_refused() {
    let store = Arc::new(BusyNeighbour {
        inner: MemoryStore::new(),
        done: AtomicBool::new(false),
    });
    let ops = Engine::new(store.clone(), "ops");
    let id = start(&ops, GATE).await;
    let moved = ops.rollback(&id, "errors up").await.expect("rolls back");
    assert!(
        matches!(moved, StepOutcome::Moved { ref to, .. } if to == "rollback"),
        "{moved:?}"
    );
    let k = kinds(store.as_ref(), &id);
    assert_eq!(
        k.iter().filter(|k| *k == "RollbackRequested").count(),
        1,
        "{k:?}"
    );
    assert_eq!(
        k.iter().filter(|k| *k == "ActionStarted").count(),
        1,
        "{k:?}"
    );

    let again = ops
        .rollback(&id, "errors up")
        .await
        .expect_err("already under way");
    assert!(again.is_conflict(), "{again:?}");
    assert!(
        matches!(again, EngineError::RollbackUnderWay { ref state, .. } if state == "rollback"),
        "{again:?}"
    );
    assert_eq!(kinds(store.as_ref(), &id), k, "nothing recorded");
}
