//! Runs a scenario (`waygate_core::scenario`) through the real engine: `drive` on an in-memory
//! store, with the scenario's [`Script`] supplying every guard verdict and entry action result,
//! on tokio's paused clock. Retries, bakes, deadlines and the looks of a waiting run take no
//! real time, so a scenario of a day-long deployment runs in milliseconds.
//!
//! A run that waits is looked at again a minute later (virtual) while its scripted outcomes
//! have more to say; once they only repeat, it is looked at when its state's deadline passes,
//! and a run with no deadline to wait for stays waiting: the scenario ends there.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use waygate_core::event::EventKind;
use waygate_core::model::{Check, Guard, Workflow};
use waygate_core::run::RunStatus;
use waygate_core::scenario::{ActionResult, Scenario, Scripted};
use waygate_core::store::{MemoryStore, Store};

use crate::clock::{Clock, TokioClock};
use crate::engine::{DriveEnd, DriveOptions, Engine, EngineError, Progress, ProgressSink};
use crate::guard::Verdict;
use crate::script::Script;

/// How long a waiting run rests before it is looked at again.
pub const LOOK_AGAIN: Duration = Duration::from_secs(60);

/// Looks at a waiting run at most this many times: a script of more waits than that is
/// stopped, waiting, and the scenario fails saying so. (Each look reads the run's growing
/// history back, so looks cost more and more: 10,000 took minutes.)
pub const MAX_LOOKS: usize = 1_000;

/// Moves a run may make before the scenario stops it: a workflow whose retry loop the script
/// keeps taking (every guard passing around a cycle) would otherwise be driven for ever.
pub const MAX_MOVES: usize = 200;

/// Why a scenario could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The runtime for the paused clock could not be built.
    #[error("cannot start the scenario's runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The engine refused (a var without a value, say).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What a scenario's run did.
#[derive(Debug, Clone)]
pub struct Ran {
    /// How `drive` ended; [`DriveEnd::Waiting`] when the run never stopped waiting.
    pub end: DriveEnd,
    /// The state the run is in at the end.
    pub state: String,
    /// Its status.
    pub status: RunStatus,
    /// Every state it was in, the initial state first.
    pub path: Vec<String>,
    /// Virtual time from start to end.
    pub took: Duration,
    /// Guard evaluations made (each try of a retried guard counts).
    pub evaluations: usize,
    /// Set when the run was stopped after [`MAX_MOVES`] moves: it goes round a loop without
    /// end under this script.
    pub looping: bool,
    /// Set when the run was still waiting after [`MAX_LOOKS`] looks, its script asking for
    /// more.
    pub looked_too_often: bool,
    /// Scripted outcomes and results the run never took, each said as a sentence: a script
    /// that says more than happened (`[Pass, Pass, Fail]` for a guard evaluated twice), or
    /// scripts a guard or state the run never reached.
    pub unused: Vec<String>,
    /// The operator's rollbacks the engine refused (a rollback already under way, a run that
    /// had ended), each as the engine words it.
    pub refused: Vec<String>,
}

/// One guard's scripted outcomes and how many were taken.
#[derive(Debug)]
struct Queue<T> {
    name: String,
    state: Option<String>,
    items: Vec<T>,
    taken: usize,
}

impl<T: Copy> Queue<T> {
    /// The next item; the last one repeats.
    fn take(&mut self) -> Option<T> {
        let item = self
            .items
            .get(self.taken.min(self.items.len().checked_sub(1)?))?;
        self.taken += 1;
        Some(*item)
    }

    fn has_news(&self) -> bool {
        self.taken < self.items.len()
    }

    /// What of the script was never taken, if anything, as a sentence: `what` names whose
    /// script it is, `done` what taking one is ("evaluated"), `kind` what it holds.
    fn unused(&self, what: &str, done: &str, kind: &str) -> Option<String> {
        let total = self.items.len();
        let left = total.checked_sub(self.taken).filter(|&n| n > 0)?;
        let times = match self.taken {
            0 => format!("never {done}"),
            1 => format!("{done} once"),
            n => format!("{done} {n} times"),
        };
        let which = if left == total {
            match total {
                1 => format!("its scripted {kind} was"),
                n => format!("all {n} of its scripted {kind}s were"),
            }
        } else {
            format!(
                "{left} of its {total} scripted {kind}s {}",
                if left == 1 { "was" } else { "were" }
            )
        };
        Some(format!("{what}: {times}, so {which} never used"))
    }
}

/// A scenario's guard outcomes and action results, as a [`Script`].
#[derive(Debug)]
pub struct ScenarioScript {
    guards: Mutex<Vec<Queue<Scripted>>>,
    actions: Mutex<Vec<Queue<ActionResult>>>,
    otherwise: Scripted,
    evaluations: Mutex<usize>,
}

impl ScenarioScript {
    /// The script of `scenario`.
    pub fn new(scenario: &Scenario) -> ScenarioScript {
        ScenarioScript {
            guards: Mutex::new(
                scenario
                    .guards
                    .iter()
                    .map(|g| Queue {
                        name: g.name.clone(),
                        state: g.state.clone(),
                        items: g.outcomes.clone(),
                        taken: 0,
                    })
                    .collect(),
            ),
            actions: Mutex::new(
                scenario
                    .actions
                    .iter()
                    .map(|a| Queue {
                        name: String::new(),
                        state: Some(a.state.clone()),
                        items: a.results.clone(),
                        taken: 0,
                    })
                    .collect(),
            ),
            otherwise: scenario.otherwise,
            evaluations: Mutex::new(0),
        }
    }

    /// What of the script the run never took, guards first, in the scenario's order.
    fn unused(&self) -> Vec<String> {
        let guards = self.guards.lock().unwrap_or_else(PoisonError::into_inner);
        let actions = self.actions.lock().unwrap_or_else(PoisonError::into_inner);
        let guards = guards.iter().filter_map(|q| {
            let what = match &q.state {
                Some(s) => format!("guard `{}` out of `{s}`", q.name),
                None => format!("guard `{}`", q.name),
            };
            q.unused(&what, "evaluated", "outcome")
        });
        let actions = actions.iter().filter_map(|q| {
            let what = format!(
                "the entry actions of `{}`",
                q.state.as_deref().unwrap_or_default()
            );
            q.unused(&what, "run", "result")
        });
        guards.chain(actions).collect()
    }

    /// Whether a guard out of `state` has scripted outcomes not yet taken: looking again
    /// may find something new.
    fn has_news(&self, state: &str, workflow: &Workflow) -> bool {
        let Some(id) = workflow.state_id(state) else {
            return false;
        };
        let guards = self.guards.lock().unwrap_or_else(PoisonError::into_inner);
        workflow.outgoing_iter(id).any(|t| {
            t.transition.guards.iter().any(|g| {
                guards
                    .iter()
                    .find(|q| applies(q, state, &g.name))
                    .is_some_and(Queue::has_news)
            })
        })
    }
}

/// Whether queue `q` scripts guard `name` out of `state`.
fn applies<T>(q: &Queue<T>, state: &str, name: &str) -> bool {
    q.name == name && q.state.as_deref().is_none_or(|s| s == state)
}

impl Script for ScenarioScript {
    fn guard(&self, state: &str, guard: &Guard, now: Timestamp) -> Verdict {
        *self
            .evaluations
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        let outcome = self
            .guards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter_mut()
            .find(|q| applies(q, state, &guard.name))
            .and_then(Queue::take)
            .unwrap_or(self.otherwise);
        match outcome {
            Scripted::Pass => Verdict::pass("scripted: pass"),
            Scripted::Fail => {
                let mut v = Verdict::fail("scripted: fail");
                // A watch that fails has broken: an incident, as the real one reports it.
                v.incident = matches!(guard.check, Check::Watch(_));
                v
            }
            Scripted::Wait => {
                let again = SignedDuration::try_from(LOOK_AGAIN)
                    .ok()
                    .and_then(|d| now.checked_add(d).ok());
                Verdict::waiting("scripted: waiting", again)
            }
        }
    }

    fn action(&self, state: &str, _index: usize) -> (bool, String) {
        let result = self
            .actions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter_mut()
            .find(|q| q.state.as_deref() == Some(state))
            .and_then(Queue::take)
            .unwrap_or(ActionResult::Ok);
        match result {
            ActionResult::Ok => (true, "scripted: ok".into()),
            ActionResult::Fail => (false, "scripted: failed".into()),
        }
    }
}

/// Counts the run's moves and says when there have been too many, or when the run entered a
/// state where an operator's rollback is due; the run's events are the record of everything
/// else.
struct Moves<'a> {
    count: usize,
    too_many: &'a tokio::sync::Notify,
    /// States where an operator's rollback is due, with its reason, not yet reached.
    due: Vec<(String, String)>,
    /// The rollback due now (the state entered), said through `entered`.
    now: Option<(String, String)>,
    entered: &'a tokio::sync::Notify,
}

impl Moves<'_> {
    /// Takes the rollback due in `state`, if one is.
    fn reached(&mut self, state: &str) -> bool {
        let Some(i) = self.due.iter().position(|(s, _)| s == state) else {
            return false;
        };
        self.now = Some(self.due.remove(i));
        true
    }
}

impl ProgressSink for Moves<'_> {
    fn report(&mut self, progress: &Progress) {
        if let Progress::Moved { to, .. } = progress {
            self.count += 1;
            if self.count == MAX_MOVES {
                self.too_many.notify_one();
            }
            if self.reached(to) {
                self.entered.notify_one();
            }
        }
    }
}

/// The instant a scenario's run starts at (a Monday morning; no guard reads it, since every
/// outcome is scripted, but runs are the same every time).
fn origin() -> Timestamp {
    Timestamp::from_second(1_767_607_200).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Runs `scenario` against `workflow` (the file `file` with text `text`), in a runtime of its
/// own on a paused clock.
pub fn run(
    scenario: &Scenario,
    workflow: &Workflow,
    file: &str,
    text: &str,
) -> Result<Ran, ScenarioError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    Ok(runtime.block_on(drive(scenario, workflow, file, text))?)
}

async fn drive(
    scenario: &Scenario,
    workflow: &Workflow,
    file: &str,
    text: &str,
) -> Result<Ran, EngineError> {
    let clock = Arc::new(TokioClock::starting_at(origin()));
    let store_clock = clock.clone();
    let store = Arc::new(MemoryStore::with_clock(Arc::new(move || store_clock.now())));
    let script = Arc::new(ScenarioScript::new(scenario));
    // A var read from the process environment stands for itself: nothing real is reached.
    let engine = Engine::new(store.clone(), "scenario")
        .with_clock(clock.clone())
        .with_env(Arc::new(|name| Some(format!("${name}"))))
        .with_script(script.clone());
    let overrides: BTreeMap<String, String> = scenario
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let id = engine
        .start(workflow, file, text, &scenario.env, &overrides)
        .await?
        .run
        .id;
    let options = DriveOptions {
        no_wait: true,
        poll: LOOK_AGAIN,
    };
    let mut looks = 0;
    let (too_many, entered) = (tokio::sync::Notify::new(), tokio::sync::Notify::new());
    let mut moves = Moves {
        count: 0,
        too_many: &too_many,
        due: scenario
            .rollbacks
            .iter()
            .map(|r| (r.state.clone(), r.reason.clone()))
            .collect(),
        now: None,
        entered: &entered,
    };
    moves.reached(&workflow.state(workflow.initial).name);
    let (mut looping, mut looked_too_often, mut refused) = (false, false, Vec::new());
    let end = loop {
        if let Some((state, reason)) = moves.now.take() {
            // The operator's `waygate rollback`, through the engine's own rule.
            match engine.rollback(&id, &reason).await {
                Ok(_) => {}
                Err(e)
                    if e.is_conflict()
                        || e.is_ended()
                        || matches!(e, EngineError::NoRollback(_)) =>
                {
                    refused.push(format!("rollback in `{state}` refused: {e}"));
                }
                Err(e) => return Err(e),
            }
        }
        // The run stops being driven the moment it enters a state where a rollback is due
        // (drive's next await is reading the run back, which changes nothing).
        let driven = tokio::select! {
            biased;
            () = too_many.notified() => {
                looping = true;
                break DriveEnd::Waiting;
            }
            () = entered.notified() => continue,
            driven = engine.drive(&id, options, &mut moves) => driven?,
        };
        match driven {
            DriveEnd::Waiting if moves.now.is_some() => continue,
            DriveEnd::Waiting => {
                looks += 1;
                let loaded = engine.load(&id).await?;
                let wake = if script.has_news(&loaded.run.state, workflow) {
                    Some(clock.now() + SignedDuration::from_secs(60))
                } else {
                    loaded.deadline()
                };
                match wake {
                    Some(_) if looks >= MAX_LOOKS => {
                        looked_too_often = true;
                        break DriveEnd::Waiting;
                    }
                    Some(at) => {
                        let left = clock.now().duration_until(at);
                        let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
                        tokio::time::sleep(left).await;
                    }
                    None => break DriveEnd::Waiting,
                }
            }
            other => break other,
        }
    };
    let run = engine.load_run(&id).await?;
    let events = store.run_events(&id)?;
    let path = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RunStarted { state, .. } => Some(state.clone()),
            EventKind::Transitioned { to, .. } => Some(to.clone()),
            _ => None,
        })
        .collect();
    let took = Duration::try_from(origin().duration_until(clock.now())).unwrap_or_default();
    let evaluations = *script
        .evaluations
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    Ok(Ran {
        end,
        state: run.state,
        status: run.status,
        path,
        took,
        evaluations,
        looping,
        looked_too_often,
        unused: script.unused(),
        refused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use waygate_core::outcome::Outcome;
    use waygate_core::validate::validate;

    const FLOW: &str = r#"Workflow(name: "w", initial: "a",
        states: { "a": (on_enter: [Command(run: ["x"])]), "b": (terminal: Success) },
        transitions: [(from: "a", to: "b", guards: [
            (name: "g", check: Command(run: ["x"])),
            (name: "h", check: Watch(check: Command(run: ["x"]), duration: "1m", interval: "10s")),
        ])])"#;

    fn script(text: &str) -> ScenarioScript {
        let s = waygate_core::scenario::read("s.ron", text)
            .scenario
            .expect("a scenario");
        ScenarioScript::new(&s)
    }

    #[test]
    fn outcomes_are_taken_in_order_and_the_last_repeats() {
        let w = validate("w.ron", FLOW).workflow.expect("validates");
        let s = script(
            r#"Scenario(name: "s", workflow: "w.ron", env: "e",
                guards: [(name: "g", state: "a", outcomes: [Wait, Fail, Pass]), (name: "h", outcomes: [Fail])],
                actions: [(state: "a", results: [Fail, Ok])],
                otherwise: Wait,
                expect: (state: "b", status: Succeeded))"#,
        );
        let guards = &w.graph.edge_weights().next().expect("a transition").guards;
        let now = Timestamp::UNIX_EPOCH;
        let g: Vec<Outcome> = (0..4)
            .map(|_| s.guard("a", &guards[0], now).outcome)
            .collect();
        assert_eq!(
            g,
            [
                Outcome::Waiting,
                Outcome::Fail,
                Outcome::Pass,
                Outcome::Pass
            ]
        );
        assert!(s.has_news("a", &w), "h has not been evaluated yet");
        // A scripted wait asks to be looked at again a minute later.
        let fresh = script(
            r#"Scenario(name: "s", workflow: "w.ron", env: "e", guards: [(name: "g", outcomes: [Wait])], expect: (state: "b", status: Succeeded))"#,
        );
        assert!(fresh.has_news("a", &w));
        let waiting = fresh.guard("a", &guards[0], now);
        assert_eq!(waiting.retry_at, Some(now + SignedDuration::from_secs(60)));
        // A failing watch has broken: an incident; a failing command has not.
        let watch = s.guard("a", &guards[1], now);
        assert!(watch.outcome == Outcome::Fail && watch.incident);
        assert!(!s.has_news("a", &w), "g and h are on their last outcomes");
        let fail = script(
            r#"Scenario(name: "s", workflow: "w.ron", env: "e", otherwise: Fail, expect: (state: "b", status: Succeeded))"#,
        )
        .guard("a", &guards[0], now);
        assert!(fail.outcome == Outcome::Fail && !fail.incident);
        // A guard scripted for another state takes `otherwise`.
        assert_eq!(s.guard("z", &guards[0], now).outcome, Outcome::Waiting);
        assert_eq!(
            [
                s.action("a", 0).0,
                s.action("a", 0).0,
                s.action("a", 0).0,
                s.action("b", 0).0
            ],
            [false, true, true, true]
        );
    }
}
