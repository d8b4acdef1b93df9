//! Two commands on one run at once, in one process against an in-memory store: a withdrawal
//! against the step that read the approval, a rollback against a neighbour's bookkeeping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::tests::{kinds, start, Commit, CommitHook};
use waygate_core::event::{Cause, EventKind, NewEvent};
use waygate_core::run::RunStatus;
use waygate_core::store::{MemoryStore, RunChange};

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
        .move_to(
            &read,
            Vec::new(),
            "done",
            Cause::Advance,
            None,
            &mut super::drive::NoProgress,
        )
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

#[tokio::test]
async fn a_rollback_that_loses_to_bookkeeping_tries_again_and_a_second_one_is_refused() {
    // A neighbour (a drive recording that it waits) commits just before the first rollback
    // does, so the rollback's commit loses on the version.
    let done = AtomicBool::new(false);
    let store = Arc::new(CommitHook {
        store: Arc::new(MemoryStore::new()),
        hook: move |s: &MemoryStore, (id, expected, change, events): Commit<'_>| {
            let rollback = events
                .iter()
                .any(|e| matches!(e.kind, EventKind::RollbackRequested { .. }));
            if rollback && !done.swap(true, Ordering::SeqCst) {
                let state = s.load_run(id)?.state;
                let looked = EventKind::GuardsEvaluated {
                    state,
                    to: "done".into(),
                    passed: false,
                    guards: Vec::new(),
                };
                s.commit(
                    id,
                    expected,
                    RunChange::status(RunStatus::Waiting),
                    vec![NewEvent::new("drive", looked)],
                )?;
            }
            s.commit(id, expected, change, events)
        },
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

/// Two ways out of `review`: one whose guard fails slowly, one with none.
const TWO_WAYS: &str = r#"Workflow(
    name: "two-ways", initial: "review",
    states: { "review": (), "deploy": (), "done": (terminal: Success) },
    transitions: [
        (from: "review", to: "done", guards: [(name: "slow", check: Command(run: ["sh", "-c", "sleep 0.5; false"]))]),
        (from: "review", to: "deploy"),
        (from: "deploy", to: "done"),
    ],
)"#;

#[tokio::test]
async fn a_step_blocked_in_a_state_the_run_left_meanwhile_is_not_said_to_be_still_there() {
    let store = Arc::new(MemoryStore::new());
    let alice = Engine::new(store.clone(), "alice");
    let bob = Engine::new(store.clone(), "bob");
    let id = start(&alice, TWO_WAYS).await;
    // Alice's guard fails while bob takes the other way out of `review`.
    let (judged, moved) = tokio::join!(alice.advance(&id, Some("done")), async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        bob.advance(&id, Some("deploy")).await
    });
    let (moved, _) = moved.expect("bob moves");
    assert!(
        matches!(moved, StepOutcome::Moved { ref to, .. } if to == "deploy"),
        "{moved:?}"
    );
    assert_eq!(store.load_run(&id).expect("run").state, "deploy");
    // "Guards failed; still in `review`" would be false: the run is in `deploy`.
    let late = judged.expect_err("the run moved while alice's guards ran");
    assert!(late.is_conflict(), "{late:?}");
}
