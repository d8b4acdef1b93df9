//! The engine against an in-memory store: every rule of how a run moves, with the event trail
//! as the recording to check. Timer tests run on tokio's paused clock; tests that run real
//! child processes do not, since a paused runtime with nothing else to do jumps its clock to
//! the next timer, which would be the process's timeout.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use waygate_core::ending::How;
use waygate_core::event::Event;
use waygate_core::event::{Cause, EventKind, NewEvent};
use waygate_core::run::{Run, RunId, RunStatus};
use waygate_core::store::{
    EventFilter, MemoryStore, RunChange, RunFilter, Store, StoreError, VerifyReport, Write, Written,
};
use waygate_core::validate::validate;

use super::*;
use crate::clock::TokioClock;

/// An engine and a store that share tokio's (paused) clock.
fn setup(actor: &str) -> (Engine, Arc<MemoryStore>) {
    let clock = Arc::new(TokioClock::starting_at(Timestamp::now()));
    let store_clock = clock.clone();
    let store = Arc::new(MemoryStore::with_clock(Arc::new(move || store_clock.now())));
    let engine = Engine::new(store.clone(), actor)
        .with_clock(clock)
        .with_env(Arc::new(|k| (k == "TOKEN").then(|| "s3cret".to_owned())));
    (engine, store)
}

pub(super) async fn start(engine: &Engine, text: &str) -> RunId {
    let v = validate("t.ron", text);
    let w = v.workflow.unwrap_or_else(|| panic!("{:#?}", v.diagnostics));
    engine
        .start(&w, "t.ron", text, "local", &BTreeMap::new())
        .await
        .expect("starts")
        .run
        .id
}

pub(super) fn kinds(store: &dyn Store, id: &RunId) -> Vec<String> {
    store
        .run_events(id)
        .expect("events")
        .iter()
        .map(|e| e.kind.name().to_owned())
        .collect()
}

fn transitions(store: &MemoryStore, id: &RunId) -> Vec<(String, String, Cause)> {
    store
        .run_events(id)
        .expect("events")
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Transitioned {
                from, to, cause, ..
            } => Some((from, to, cause)),
            _ => None,
        })
        .collect()
}

#[derive(Default)]
struct Recorder(Vec<Progress>);

impl ProgressSink for Recorder {
    fn report(&mut self, p: &Progress) {
        self.0.push(p.clone());
    }
}

/// How a drive ends when the run reaches terminal `state` with `status`.
fn terminal(state: &str, status: RunStatus) -> DriveEnd {
    DriveEnd::Ended {
        state: state.into(),
        status,
        how: How::Terminal,
    }
}

async fn drive(engine: &Engine, id: &RunId) -> DriveEnd {
    let mut rec = Recorder::default();
    engine
        .drive(id, DriveOptions::default(), &mut rec)
        .await
        .expect("drives")
}

const BAKE: &str = r#"Workflow(
    name: "bake", initial: "build", rollback: "rollback",
    states: {
        "build": (),
        "bake": (deadline: "1h"),
        "done": (terminal: Success),
        "rollback": (),
        "rolled_back": (terminal: Failure),
    },
    transitions: [
        (from: "build", to: "bake", guards: [(name: "flag", check: Window(days: [Mon, Tue, Wed, Thu, Fri, Sat, Sun], start: "00:00", end: "00:00", tz: "UTC"))]),
        (from: "bake", to: "done", guards: [(name: "soak", check: Wait(duration: "10m"))]),
        (from: "rollback", to: "rolled_back"),
    ],
)"#;

#[tokio::test(start_paused = true)]
async fn drive_waits_out_a_ten_minute_bake_on_the_paused_clock() {
    let (engine, store) = setup("ci");
    let id = start(&engine, BAKE).await;
    let end = drive(&engine, &id).await;
    assert_eq!(end, terminal("done", RunStatus::Succeeded));
    let run = store.load_run(&id).expect("run");
    let baked = run.ended_at.expect("ended").duration_since(run.started_at);
    assert!(
        baked >= jiff::SignedDuration::from_mins(10),
        "ended after {baked:?}"
    );
    assert_eq!(
        transitions(&store, &id),
        vec![
            ("build".into(), "bake".into(), Cause::Advance),
            ("bake".into(), "done".into(), Cause::Advance)
        ]
    );
    let k = kinds(store.as_ref(), &id);
    assert_eq!(k.first().map(String::as_str), Some("RunStarted"));
    assert_eq!(k.last().map(String::as_str), Some("RunEnded"));
    assert!(store.verify().expect("verify").is_ok());
}

#[tokio::test(start_paused = true)]
async fn advance_reports_waiting_and_changes_nothing_but_the_record() {
    let (engine, store) = setup("ci");
    let id = start(&engine, BAKE).await;
    let (first, _) = engine.advance(&id, None).await.expect("advances");
    assert!(
        matches!(first, StepOutcome::Moved { ref to, .. } if to == "bake"),
        "{first:?}"
    );
    let (second, reports) = engine.advance(&id, None).await.expect("advances");
    assert!(
        matches!(
            second,
            StepOutcome::Waiting {
                ref state,
                retry_at: Some(_),
                ..
            } if state == "bake"
        ),
        "{second:?}"
    );
    assert_eq!(reports[0].results[0].name, "soak");
    let run = store.load_run(&id).expect("run");
    assert_eq!(
        (run.state.as_str(), run.status),
        ("bake", RunStatus::Waiting)
    );
}

#[tokio::test(start_paused = true)]
async fn a_passed_deadline_sends_the_run_to_rollback() {
    let (engine, store) = setup("ci");
    let text = BAKE.replace(r#"deadline: "1h""#, r#"deadline: "5m""#);
    let id = start(&engine, &text).await;
    let end = drive(&engine, &id).await;
    assert_eq!(end, terminal("rolled_back", RunStatus::Failed));
    let moves = transitions(&store, &id);
    assert_eq!(
        moves[1],
        ("bake".into(), "rollback".into(), Cause::Deadline)
    );
    assert_eq!(
        moves[2],
        ("rollback".into(), "rolled_back".into(), Cause::Advance)
    );
    assert_eq!(store.load_run(&id).expect("run").status, RunStatus::Failed);
}

const FAILING_ACTION: &str = r#"Workflow(
    name: "act", initial: "deploy",
    states: {
        "deploy": (on_enter: [Command(run: ["false"])], on_failure: "revert"),
        "revert": (on_enter: [Command(run: ["true"])]),
        "done": (terminal: Success),
        "reverted": (terminal: Failure),
    },
    transitions: [
        (from: "deploy", to: "done"),
        (from: "revert", to: "reverted"),
    ],
)"#;

/// Starts [`FAILING_ACTION`] with its deploy action running `argv` (in RON: `["true"]`).
async fn start_acting(engine: &Engine, argv: &str) -> RunId {
    start(engine, &FAILING_ACTION.replace(r#"["false"]"#, argv)).await
}

#[tokio::test]
async fn a_failed_entry_action_follows_on_failure_and_drive_ends_failed() {
    let (engine, store) = setup("ci");
    let id = start(&engine, FAILING_ACTION).await;
    let end = drive(&engine, &id).await;
    assert_eq!(end, terminal("reverted", RunStatus::Failed));
    let moves = transitions(&store, &id);
    assert_eq!(moves[0], ("deploy".into(), "revert".into(), Cause::Action));
    assert!(
        !moves.iter().any(|(_, to, _)| to == "done"),
        "the unguarded move must not be taken"
    );
}

#[tokio::test]
async fn an_action_whose_process_died_once_is_run_again_and_twice_is_failed() {
    let (engine, store) = setup("ci");
    let id = start_acting(&engine, r#"["true"]"#).await;
    // A process died while running action 1 of `deploy`: ActionStarted without ActionFinished.
    let started = EventKind::ActionStarted {
        state: "deploy".into(),
        index: 0,
        action: "Command true".into(),
    };
    store
        .append(&id, vec![NewEvent::new("ci", started.clone())])
        .expect("append");
    let (outcome, _) = engine.advance(&id, None).await.expect("advances");
    assert!(
        matches!(outcome, StepOutcome::Moved { ref to, .. } if to == "done")
            || matches!(outcome, StepOutcome::Ended { .. }),
        "{outcome:?}"
    );
    let finished = store
        .run_events(&id)
        .expect("events")
        .into_iter()
        .filter(|e| matches!(&e.kind, EventKind::ActionFinished { state, ok: true, .. } if state == "deploy"))
        .count();
    assert_eq!(finished, 1, "re-run once");

    let (engine, store) = setup("ci");
    let id = start_acting(&engine, r#"["true"]"#).await;
    for _ in 0..2 {
        store
            .append(&id, vec![NewEvent::new("ci", started.clone())])
            .expect("append");
    }
    let end = drive(&engine, &id).await;
    assert_eq!(end, terminal("reverted", RunStatus::Failed));
    assert_eq!(transitions(&store, &id)[0].2, Cause::Action);
}

#[tokio::test]
async fn an_action_stopped_by_an_operator_is_recorded_and_run_again_however_often() {
    let (engine, store) = setup("ci");
    let id = start_acting(&engine, r#"["true"]"#).await;
    // Three operator stops of the same action (more than the crash limit) in earlier drives.
    for _ in 0..3 {
        let events = vec![
            NewEvent::new(
                "ci",
                EventKind::ActionStarted {
                    state: "deploy".into(),
                    index: 0,
                    action: "Command true".into(),
                },
            ),
            NewEvent::new(
                "ci",
                EventKind::ActionInterrupted {
                    state: "deploy".into(),
                    index: 0,
                    signal: "SIGINT".into(),
                },
            ),
        ];
        store.append(&id, events).expect("append");
    }
    let end = drive(&engine, &id).await;
    assert_eq!(end, terminal("done", RunStatus::Succeeded));
    assert!(
        !transitions(&store, &id)
            .iter()
            .any(|(_, to, _)| to == "revert"),
        "never the failure path"
    );
}

#[tokio::test]
async fn a_signal_during_an_action_kills_it_and_records_the_stop() {
    let (engine, store) = setup("ci");
    let (trigger, shutdown) = crate::shutdown::Shutdown::new();
    let engine = engine.with_shutdown(shutdown);
    let id = start_acting(&engine, r#"["sleep", "30"]"#).await;
    let driving = {
        let (engine, id) = (engine.clone(), id.clone());
        tokio::spawn(async move {
            let mut rec = Recorder::default();
            engine.drive(&id, DriveOptions::default(), &mut rec).await
        })
    };
    // Wait for the action to start (a real process: real time).
    for _ in 0..200 {
        if kinds(store.as_ref(), &id).contains(&"ActionStarted".to_owned()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    trigger.fire(crate::shutdown::Signal::Terminate);
    let end = driving.await.expect("joins").expect("drives");
    assert_eq!(
        end,
        DriveEnd::Interrupted {
            signal: crate::shutdown::Signal::Terminate,
            state: "deploy".into(),
            action: Some(0),
        }
    );
    let events = store.run_events(&id).expect("events");
    assert!(events.iter().any(|e| matches!(&e.kind,
        EventKind::ActionInterrupted { state, index: 0, signal } if state == "deploy" && signal == "SIGTERM")));
    assert!(!kinds(store.as_ref(), &id).contains(&"ActionFinished".to_owned()));
    assert_eq!(store.load_run(&id).expect("run").state, "deploy");
}

#[tokio::test]
async fn an_incident_with_nowhere_to_go_fails_the_run_in_place() {
    let (engine, store) = setup("ci");
    let text = FAILING_ACTION.replace(r#", on_failure: "revert""#, "");
    let id = start(&engine, &text).await;
    let end = drive(&engine, &id).await;
    assert_eq!(
        end,
        DriveEnd::Ended {
            state: "deploy".into(),
            status: RunStatus::Failed,
            how: How::InPlace
        }
    );
    assert_eq!(store.load_run(&id).expect("run").status, RunStatus::Failed);
}

const GATE: &str = r#"Workflow(
    name: "gate", initial: "review", rollback: "cancelled",
    states: { "review": (), "done": (terminal: Success), "cancelled": (terminal: Failure) },
    transitions: [
        (from: "review", to: "done", guards: [
            (name: "sign-off", check: Approval(prompt: "ok?", min: 2, approvers: ["bob", "carol", "alice"], not_by_initiator: true)),
        ]),
    ],
)"#;

#[tokio::test(start_paused = true)]
async fn approvals_need_distinct_allowed_people_other_than_the_initiator() {
    let (alice, store) = setup("alice");
    let id = start(&alice, GATE).await;
    let refused = alice
        .approve(&id, "sign-off", None)
        .await
        .expect_err("initiator refused");
    assert!(matches!(refused, EngineError::Refused(_)), "{refused:?}");
    let mallory = Engine::new(store.clone(), "mallory");
    assert!(matches!(
        mallory.approve(&id, "sign-off", None).await,
        Err(EngineError::Refused(_))
    ));
    let bob = Engine::new(store.clone(), "bob");
    bob.approve(&id, "sign-off", Some("looks good".into()))
        .await
        .expect("bob may");
    bob.approve(&id, "sign-off", None)
        .await
        .expect("again, counted once");
    assert!(matches!(
        alice.advance(&id, None).await.expect("advance").0,
        StepOutcome::Waiting { .. }
    ));
    let carol = Engine::new(store.clone(), "carol");
    let outcome = carol
        .approve(&id, "sign-off", None)
        .await
        .expect("carol may");
    assert_eq!(
        outcome.approvers,
        vec!["bob".to_owned(), "carol".to_owned()]
    );
    let (moved, _) = alice.advance(&id, None).await.expect("advance");
    assert!(
        matches!(
            moved,
            StepOutcome::Ended {
                status: RunStatus::Succeeded,
                ..
            }
        ),
        "{moved:?}"
    );
    let refusals = store
        .run_events(&id)
        .expect("events")
        .into_iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Approved {
                    accepted: false,
                    ..
                }
            )
        })
        .count();
    assert_eq!(refusals, 2, "refused approvals are recorded");
    assert!(matches!(
        bob.approve(&id, "nope", None).await,
        Err(EngineError::UnknownGuard(_)) | Err(EngineError::Ended { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_commit_on_a_stale_version_is_a_conflict() {
    let (engine, store) = setup("ci");
    let id = start(&engine, GATE).await;
    let stale = engine.load(&id).await.expect("loads");
    engine.abort(&id, "changed my mind").await.expect("aborts");
    let err = engine.commit(
        &stale.run,
        RunChange::status(RunStatus::Aborted),
        vec![EventKind::Aborted {
            state: "review".into(),
            reason: "late".into(),
        }],
    );
    let err = err.await.expect_err("stale");
    assert!(
        err.is_conflict() || matches!(err, EngineError::Store(StoreError::RunEnded { .. })),
        "{err:?}"
    );
    assert_eq!(store.load_run(&id).expect("run").status, RunStatus::Aborted);
}

#[tokio::test(start_paused = true)]
async fn rollback_moves_now_and_abort_ends_the_run() {
    let (engine, store) = setup("ci");
    let id = start(&engine, GATE).await;
    let outcome = engine
        .rollback(&id, "bad canary")
        .await
        .expect("rolls back");
    assert!(
        matches!(
            outcome,
            StepOutcome::Ended {
                status: RunStatus::Failed,
                ..
            }
        ),
        "{outcome:?}"
    );
    let k = kinds(store.as_ref(), &id);
    assert!(k.contains(&"RollbackRequested".to_owned()));
    assert_eq!(transitions(&store, &id)[0].2, Cause::Rollback);
    assert!(matches!(
        engine.abort(&id, "x").await,
        Err(EngineError::Ended { .. })
    ));
}

#[tokio::test]
async fn secrets_are_resolved_for_actions_and_never_stored() {
    let (engine, store) = setup("ci");
    let text = r#"Workflow(
        name: "sec", initial: "a",
        vars: { "token": (secret: true, from_env: "TOKEN") },
        states: { "a": (on_enter: [Command(run: ["echo", "token=${token}"])], on_failure: "z"), "done": (terminal: Success), "z": (terminal: Failure) },
        transitions: [(from: "a", to: "done", guards: [(name: "t", check: Command(run: ["sh", "-c", "echo $0", "${token}"]))])],
    )"#;
    let id = start(&engine, text).await;
    assert_eq!(
        drive(&engine, &id).await,
        terminal("done", RunStatus::Succeeded)
    );
    let all = serde_json::to_string(&store.run_events(&id).expect("events")).expect("json");
    assert!(!all.contains("s3cret"), "secret leaked: {all}");
    assert!(all.contains("***"), "redacted evidence expected: {all}");
    assert!(!store.load_run(&id).expect("run").vars.contains_key("token"));
}

#[tokio::test]
async fn live_output_is_tagged_with_state_and_action_or_guard_and_redacted() {
    use crate::live::{Origin, Stream};
    let (engine, _store) = setup("ci");
    let (sender, mut receiver) = tokio::sync::mpsc::channel(1024);
    let engine = engine.with_output(sender);
    let text = r#"Workflow(
        name: "live", initial: "a",
        vars: { "token": (secret: true, from_env: "TOKEN") },
        states: {
            "a": (on_enter: [Command(run: ["true"]), Command(run: ["sh", "-c", "echo one; echo two >&2; echo t=$0", "${token}"])]),
            "done": (terminal: Success),
        },
        transitions: [(from: "a", to: "done", guards: [(name: "probe", check: Command(run: ["echo", "probed"]))])],
    )"#;
    let id = start(&engine, text).await;
    assert!(matches!(
        drive(&engine, &id).await,
        DriveEnd::Ended {
            status: RunStatus::Succeeded,
            ..
        }
    ));
    drop(engine);
    let mut got = Vec::new();
    while let Some(l) = receiver.recv().await {
        got.push((l.state, l.origin, l.stream, l.text));
    }
    // stdout and stderr are read concurrently: their relative order is not defined.
    got.sort_by_key(|(_, _, stream, _)| *stream == Stream::Stderr);
    let action = Origin::Action { index: 1 };
    let probe = Origin::Guard {
        name: "probe".into(),
    };
    assert_eq!(
        got,
        vec![
            ("a".into(), action.clone(), Stream::Stdout, "one".into()),
            ("a".into(), action.clone(), Stream::Stdout, "t=***".into()),
            ("a".into(), probe, Stream::Stdout, "probed".into()),
            ("a".into(), action, Stream::Stderr, "two".into()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_records_nothing() {
    let (engine, store) = setup("ci");
    let id = start(&engine, BAKE).await;
    let before = store.run_events(&id).expect("events").len();
    let dry = engine.dry_run(&id, None).await.expect("checks");
    assert_eq!(dry.reports.len(), 1);
    // What `advance` would do, as `decide` says: the build's window is open.
    assert!(matches!(
        dry.decision,
        waygate_core::decide::Decision::Take { .. }
    ));
    assert_eq!(store.run_events(&id).expect("events").len(), before);
    assert!(matches!(
        engine.dry_run(&id, Some("nowhere")).await,
        Err(EngineError::NoSuchTransition { .. })
    ));
}

const WATCHED: &str = r#"Workflow(
    name: "watched", initial: "verify", rollback: "rollback",
    states: {
        "verify": (),
        "done": (terminal: Success),
        "rollback": (),
        "rolled_back": (terminal: Failure),
    },
    transitions: [
        (from: "verify", to: "done", guards: [(name: "error-rate", check: Watch(
            check: Window(days: [Mon, Tue, Wed, Thu, Fri, Sat, Sun], start: "00:00", end: "00:00", tz: "UTC"),
            duration: "15m", interval: "30s"))]),
        (from: "rollback", to: "rolled_back"),
    ],
)"#;

#[tokio::test(start_paused = true)]
async fn a_watch_passes_only_when_it_was_looked_at_throughout() {
    let (engine, store) = setup("ci");
    let id = start(&engine, WATCHED).await;

    // One look at entry, then nobody drives for 20 minutes: a single look at the end does
    // not prove 15 watched minutes.
    let (first, _) = engine.advance(&id, None).await.expect("advances");
    assert!(matches!(first, StepOutcome::Waiting { .. }), "{first:?}");
    tokio::time::advance(std::time::Duration::from_secs(20 * 60)).await;
    let (late, reports) = engine.advance(&id, None).await.expect("advances");
    assert!(matches!(late, StepOutcome::Waiting { .. }), "{late:?}");
    let detail = &reports[0].results[0].detail;
    assert!(detail.contains("started over: no look for 20m"), "{detail}");

    // Driven from there, it looks every interval and passes 15 minutes later.
    let started_watching = engine.now();
    let end = drive(&engine, &id).await;
    assert!(
        matches!(end, DriveEnd::Ended { ref state, .. } if state == "done"),
        "{end:?}"
    );
    let run = store.load_run(&id).expect("run");
    let watched = run
        .ended_at
        .expect("ended")
        .duration_since(started_watching);
    assert!(
        watched >= jiff::SignedDuration::from_mins(15),
        "passed after {watched:?}"
    );
    let looks = store
        .run_events(&id)
        .expect("events")
        .iter()
        .filter(|e| matches!(e.kind, EventKind::GuardsEvaluated { .. }))
        .count();
    assert!(looks >= 30, "a look every 30 s is recorded: {looks}");
}

/// A commit's arguments, as a [`CommitHook`]'s hook gets them.
pub(super) type Commit<'a> = (&'a RunId, u64, RunChange, Vec<NewEvent>);

/// A memory store whose commits go through `hook`, so that a test can act as another process
/// just before or just after one (the hook makes the commit itself); every other call goes
/// straight to the store.
pub(super) struct CommitHook<F> {
    pub(super) store: Arc<MemoryStore>,
    pub(super) hook: F,
}

impl<F> Store for CommitHook<F>
where
    F: Fn(&MemoryStore, Commit<'_>) -> Result<(Run, Vec<Event>), StoreError> + Send + Sync,
{
    fn write(&self, write: Write) -> Result<Written, StoreError> {
        let Write::Commit(c) = write else {
            return self.store.write(write);
        };
        let (run, events) = (self.hook)(&self.store, (&c.id, c.expected, c.change, c.events))?;
        Ok((Some(run), events))
    }
    fn load_run(&self, id: &RunId) -> Result<Run, StoreError> {
        self.store.load_run(id)
    }
    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
        self.store.list_runs(filter)
    }
    fn run_events(&self, id: &RunId) -> Result<Vec<Event>, StoreError> {
        self.store.run_events(id)
    }
    fn scan_events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        self.store.scan_events(filter)
    }
    fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.store.verify()
    }
}

#[tokio::test(start_paused = true)]
async fn drive_does_not_sleep_through_an_approval_given_as_it_starts_waiting() {
    let (_, memory) = setup("alice");
    // "Another process" approves `ok` the moment a run is recorded waiting, before the
    // committing drive can take another look.
    let store = Arc::new(CommitHook {
        store: memory,
        hook: |s: &MemoryStore, (id, expected, change, events): Commit<'_>| {
            let waits = change.status == Some(RunStatus::Waiting);
            let committed = s.commit(id, expected, change, events)?;
            if waits {
                let approval = EventKind::Approved {
                    state: committed.0.state.clone(),
                    guard: "ok".into(),
                    comment: None,
                    accepted: true,
                    reason: None,
                    visit: None,
                };
                s.append(id, vec![NewEvent::new("bob", approval)])?;
            }
            Ok(committed)
        },
    });
    let engine = Engine::new(store.clone(), "alice");
    let id = start(&engine, APPROVE_OK).await;
    // On the paused clock a drive that missed the approval polls for ever; give it an hour.
    let end = tokio::time::timeout(std::time::Duration::from_secs(3600), drive(&engine, &id))
        .await
        .expect("the drive noticed the approval");
    assert!(
        matches!(
            end,
            DriveEnd::Ended {
                status: RunStatus::Succeeded,
                ..
            }
        ),
        "{end:?}"
    );
}

const YEAR: i64 = 365 * 86_400;

/// A store clock: tokio's (paused) clock, plus an offset in seconds the test sets, as if the
/// writing process's clock were that far off.
fn offset_store(clock: Arc<TokioClock>) -> (Arc<MemoryStore>, Arc<std::sync::atomic::AtomicI64>) {
    let offset = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let read = offset.clone();
    let store = Arc::new(MemoryStore::with_clock(Arc::new(move || {
        let secs = read.load(std::sync::atomic::Ordering::SeqCst);
        clock.now() + jiff::SignedDuration::from_secs(secs)
    })));
    (store, offset)
}

/// A process whose clock ran a year ahead moved the run into its bake; a process with a right
/// clock then drives it. The bake takes its own ten minutes from when this process first
/// looked, not a year, and the deadline does not fire either.
#[tokio::test(start_paused = true)]
async fn a_bake_entered_under_a_clock_a_year_ahead_takes_ten_minutes_not_a_year() {
    let clock = Arc::new(TokioClock::starting_at(Timestamp::now()));
    let (store, offset) = offset_store(clock.clone());
    let ahead = Arc::new(TokioClock::starting_at(
        clock.now() + jiff::SignedDuration::from_secs(YEAR),
    ));
    let id = start(
        &Engine::new(store.clone(), "ci").with_clock(clock.clone()),
        BAKE,
    )
    .await;
    offset.store(YEAR, std::sync::atomic::Ordering::SeqCst);
    let wrong = Engine::new(store.clone(), "ci").with_clock(ahead);
    let (moved, _) = wrong.advance(&id, None).await.expect("advances");
    assert!(matches!(moved, StepOutcome::Moved { ref to, .. } if to == "bake"));
    offset.store(0, std::sync::atomic::Ordering::SeqCst);

    let right = Engine::new(store.clone(), "ci").with_clock(clock.clone());
    let began = tokio::time::Instant::now();
    let end = tokio::time::timeout(std::time::Duration::from_secs(86_400), drive(&right, &id))
        .await
        .expect("the bake does not wait a year");
    let took = began.elapsed();
    assert_eq!(end, terminal("done", RunStatus::Succeeded));
    assert!(
        took >= std::time::Duration::from_secs(600) && took < std::time::Duration::from_secs(660),
        "the bake took {took:?}"
    );
    // The right clock's events carry its own times, not the year-ahead one's.
    let events = store.run_events(&id).expect("events");
    let last = events.last().expect("events");
    assert!(
        last.at < clock.now() + jiff::SignedDuration::from_secs(60),
        "{}",
        last.at
    );
    assert_eq!(
        transitions(&store, &id).last().map(|t| t.2),
        Some(Cause::Advance)
    );
    assert!(store.verify().expect("verify").is_ok());
}

/// An engine on a monotonic clock (here tokio's paused one, anchored at the wall time once, as
/// the default [`crate::ProcessClock`] is anchored) times a bake on it alone: the wall clock
/// stands still while ten monotonic minutes pass, and the wall clock the store stamps with
/// jumps a year ahead in the middle of the bake. The bake neither skips to its end nor
/// stretches: it passes after ten monotonic minutes.
#[tokio::test(start_paused = true)]
async fn a_wall_clock_jump_during_a_bake_neither_skips_nor_stretches_it() {
    let offset = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let read = offset.clone();
    let store = Arc::new(MemoryStore::with_clock(Arc::new(move || {
        let secs = read.load(std::sync::atomic::Ordering::SeqCst);
        Timestamp::now() + jiff::SignedDuration::from_secs(secs)
    })));
    let engine = Engine::new(store.clone(), "ci")
        .with_clock(Arc::new(TokioClock::starting_at(Timestamp::now())));
    let id = start(&engine, BAKE).await;
    let jump = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        offset.store(YEAR, std::sync::atomic::Ordering::SeqCst);
    });
    let began = tokio::time::Instant::now();
    let end = tokio::time::timeout(std::time::Duration::from_secs(86_400), drive(&engine, &id))
        .await
        .expect("the bake ends");
    let took = began.elapsed();
    jump.await.expect("jumped");
    assert!(
        matches!(end, DriveEnd::Ended { ref state, .. } if state == "done"),
        "{end:?}"
    );
    assert!(
        took >= std::time::Duration::from_secs(600) && took < std::time::Duration::from_secs(660),
        "the bake took {took:?}"
    );
}

/// A run lock that is not a file: what a shared store's lease looks like to the engine.
#[derive(Debug, Default)]
struct Lease {
    /// Another process holds the run's lease.
    elsewhere: std::sync::Mutex<bool>,
    taken: std::sync::atomic::AtomicUsize,
}

impl crate::lock::RunLocks for Lease {
    fn take(&self, _run: &RunId) -> std::io::Result<Option<crate::lock::RunLock>> {
        if *self.elsewhere.lock().expect("lease") {
            return Ok(None);
        }
        self.taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Some(crate::lock::RunLock::new(())))
    }

    fn is_held(&self, _run: &RunId) -> std::io::Result<bool> {
        Ok(*self.elsewhere.lock().expect("lease"))
    }
}

#[tokio::test]
async fn entry_actions_run_only_under_the_run_lock_whatever_kind_of_lock_the_store_supplies() {
    let (engine, store) = setup("ci");
    let lease = Arc::new(Lease::default());
    *lease.elsewhere.lock().expect("lease") = true;
    let engine = engine.with_run_locks(lease.clone());
    let id = start(&engine, FAILING_ACTION).await;
    assert!(engine.actions_running(&id).expect("asked"));
    let busy = engine.advance(&id, None).await;
    assert!(matches!(busy, Err(EngineError::Busy { .. })), "{busy:?}");
    assert!(
        !kinds(store.as_ref(), &id)
            .iter()
            .any(|k| k == "ActionStarted"),
        "an action ran without the lock"
    );
    *lease.elsewhere.lock().expect("lease") = false;
    assert!(!engine.actions_running(&id).expect("asked"));
    drive(&engine, &id).await;
    assert!(kinds(store.as_ref(), &id)
        .iter()
        .any(|k| k == "ActionStarted"));
    assert!(lease.taken.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

/// A run that waits in `review` for an approval of `ok`.
const APPROVE_OK: &str = r#"Workflow(
    name: "w",
    initial: "review",
    environments: { "local": () },
    states: { "review": (), "done": (terminal: Success) },
    transitions: [(from: "review", to: "done", guards: [(name: "ok", check: Approval(prompt: "ok?"))])],
)"#;

/// Starts a run waiting on an approval `ok` and drives it as `engine`, looking at the store
/// only hourly; returns the run and the drive.
async fn drive_an_approval_hourly(
    engine: Engine,
) -> (
    RunId,
    tokio::task::JoinHandle<Result<DriveEnd, EngineError>>,
) {
    let id = start(&engine, APPROVE_OK).await;
    let hourly = DriveOptions {
        no_wait: false,
        poll: std::time::Duration::from_secs(3600),
    };
    let driving = {
        let id = id.clone();
        tokio::spawn(async move {
            let mut rec = Recorder::default();
            engine.drive(&id, hourly, &mut rec).await
        })
    };
    // Let the drive take its look and go to sleep.
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    assert!(!driving.is_finished(), "it waits for the approval");
    (id, driving)
}

#[tokio::test(start_paused = true)]
async fn an_approval_by_an_engine_sharing_the_wakes_wakes_a_drive_that_polls_hourly() {
    let (alice, store) = setup("alice");
    let wakes = Arc::new(Wakes::default());
    let bob = Engine::new(store.clone(), "bob")
        .with_clock(Arc::new(TokioClock::starting_at(Timestamp::now())))
        .with_wakes(wakes.clone());
    let (id, driving) = drive_an_approval_hourly(alice.with_wakes(wakes)).await;
    bob.approve(&id, "ok", None).await.expect("approves");
    let end = tokio::time::timeout(std::time::Duration::from_secs(1), driving)
        .await
        .expect("woken by the approval, not by its hourly look")
        .expect("joins")
        .expect("drives");
    assert_eq!(end, terminal("done", RunStatus::Succeeded));
}

#[tokio::test(start_paused = true)]
async fn an_approval_by_an_engine_not_sharing_the_wakes_waits_for_the_poll() {
    let (alice, store) = setup("alice");
    let bob = Engine::new(store.clone(), "bob");
    let (id, mut driving) = drive_an_approval_hourly(alice).await;
    bob.approve(&id, "ok", None).await.expect("approves");
    let early = tokio::time::timeout(std::time::Duration::from_secs(60), &mut driving).await;
    assert!(early.is_err(), "another process's write is not announced");
    let end = tokio::time::timeout(std::time::Duration::from_secs(3600), driving)
        .await
        .expect("found at the next look")
        .expect("joins")
        .expect("drives");
    assert_eq!(end, terminal("done", RunStatus::Succeeded));
}

/// Two environments, so two runs of it can be under way at once.
const TWO_ENVS: &str = r#"Workflow(
    name: "two", initial: "a", environments: { "x": (), "y": () },
    states: { "a": (), "done": (terminal: Success) },
    transitions: [(from: "a", to: "done")],
)"#;

/// Ids drawn from `ids` in turn (the last one again when they run out).
fn scripted_ids(ids: &[&str]) -> RunIds {
    let ids: Vec<RunId> = ids.iter().map(|i| RunId::from(*i)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    Arc::new(move |_| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ids[n.min(ids.len() - 1)].clone()
    })
}

async fn start_in(engine: &Engine, env: &str) -> Result<Started, EngineError> {
    let w = validate("t.ron", TWO_ENVS).workflow.expect("valid");
    engine
        .start(&w, "t.ron", TWO_ENVS, env, &BTreeMap::new())
        .await
}

/// Regression: two starts in one second could draw the same id, and the second failed with
/// "run ... already exists" (a 500 from the server) instead of taking another id.
#[tokio::test]
async fn a_start_that_draws_a_taken_id_draws_another() {
    let (engine, store) = setup("ana");
    let first = "20261129-120000-aaaa";
    let second = "20261129-120000-bbbb";
    let engine = engine.with_run_ids(scripted_ids(&[first, first, second]));
    let a = start_in(&engine, "x").await.expect("first").run;
    let b = start_in(&engine, "y")
        .await
        .expect("second, on a fresh id")
        .run;
    assert_eq!((a.id.as_str(), b.id.as_str()), (first, second));
    assert_eq!(store.load_run(&a.id).expect("a").env, "x");
    assert_eq!(store.load_run(&b.id).expect("b").env, "y");
    assert_eq!(kinds(store.as_ref(), &b.id), ["RunStarted"]);
}

#[tokio::test]
async fn a_start_gives_up_after_a_few_taken_ids() {
    let (engine, store) = setup("ana");
    let taken = "20261129-120000-aaaa";
    let engine = engine.with_run_ids(scripted_ids(&[taken]));
    start_in(&engine, "x").await.expect("first");
    let refused = start_in(&engine, "y").await.expect_err("every id is taken");
    assert!(
        matches!(&refused, EngineError::Store(StoreError::DuplicateRun(id)) if id.as_str() == taken),
        "{refused:?}"
    );
    assert_eq!(
        store.list_runs(&RunFilter::default()).expect("runs").len(),
        1
    );
}

/// An outcome from a server older than the judged state's field still reads: the state is
/// empty, and the CLI then reads the run's (`act::judged`).
#[test]
fn outcomes_without_their_state_still_read() {
    let blocked: StepOutcome = serde_json::from_str(r#"{"kind":"blocked"}"#).expect("reads");
    assert_eq!(
        blocked,
        StepOutcome::Blocked {
            state: String::new()
        }
    );
    let waiting: StepOutcome =
        serde_json::from_str(r#"{"kind":"waiting","retry_at":null,"seen_events":3}"#)
            .expect("reads");
    assert!(
        matches!(waiting, StepOutcome::Waiting { ref state, seen_events: 3, .. } if state.is_empty()),
        "{waiting:?}"
    );
    let now = serde_json::to_value(StepOutcome::Blocked { state: "a".into() }).expect("writes");
    assert_eq!(now, serde_json::json!({"kind": "blocked", "state": "a"}));
}
