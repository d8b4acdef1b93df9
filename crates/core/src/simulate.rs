//! Simulation: every path a run can take from the initial state to each terminal state, with
//! the guards each step needs and the least and most time it can take (docs/cli.md,
//! `simulate`). Pure: nothing runs, no clock is read.
//!
//! A path is a sequence of [moves](crate::moves) that visits no state twice: a move back to a
//! state already on the path (a retry loop) is listed in [`Simulation::loops`] and not
//! followed. Enumeration is bounded by [`Limits`]: a graph with an exponential number of paths
//! answers with the first ones found and says where it stopped.
//!
//! Times, for one stay in a state: its entry actions take from nothing up to the sum of their
//! timeouts; the guards of a transition run at the same time, so the transition takes the
//! longest of its guards (a `Wait` or a `Watch` its duration; a `Command` or `Http` up to every
//! try's timeout and the delays between; a closed `Window` up to the longest time it stays
//! closed in a week; an `Approval` any time at all, so no most). A state's `deadline` caps
//! the stay, and a transition whose guards need longer than the deadline can never be taken
//! (the path is marked impossible). A failure move (`on_failure`, or an incident falling back
//! to the rollback) can happen at once (an action fails, a watch breaks at its first look) and
//! at the latest when the deadline passes.

use std::collections::HashSet;
use std::time::Duration;

use petgraph::graph::NodeIndex;

use crate::model::{Action, Check, Guard, Terminal, WindowCheck, Workflow};
pub use crate::moves::Move;
use crate::moves::Moves;

/// How far enumeration goes before it stops and says so.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Paths listed at most.
    pub paths: usize,
    /// Moves looked at, and steps listed, at most: the work done, whatever the graph's shape.
    pub steps: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            paths: 1_000,
            steps: 1_000_000,
        }
    }
}

/// A lower and an upper bound of time; no upper bound when a person decides (an approval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The least time.
    pub least: Duration,
    /// The most time, if bounded.
    pub most: Option<Duration>,
}

impl Span {
    const ZERO: Span = Span {
        least: Duration::ZERO,
        most: Some(Duration::ZERO),
    };

    fn exact(d: Duration) -> Span {
        Span {
            least: d,
            most: Some(d),
        }
    }

    /// One after the other.
    fn then(self, other: Span) -> Span {
        Span {
            least: self.least.saturating_add(other.least),
            most: self.most.zip(other.most).map(|(a, b)| a.saturating_add(b)),
        }
    }

    /// At the same time: done when the slower is.
    fn alongside(self, other: Span) -> Span {
        Span {
            least: self.least.max(other.least),
            most: self.most.zip(other.most).map(|(a, b)| a.max(b)),
        }
    }
}

/// One move of a path and how long the stay before it takes.
#[derive(Debug, Clone)]
pub struct Step {
    /// The state left.
    pub from: NodeIndex,
    /// The state entered.
    pub to: NodeIndex,
    /// How.
    pub by: Move,
    /// The stay in `from`, entry actions included.
    pub time: Span,
    /// Why the step can never happen, if it cannot (its guards need longer than the deadline).
    pub impossible: Option<String>,
}

/// A path from the initial state to a terminal state.
#[derive(Debug, Clone)]
pub struct Path {
    /// Its moves, in order.
    pub steps: Vec<Step>,
    /// The terminal state it ends in.
    pub end: NodeIndex,
    /// How a run ending there ends.
    pub terminal: Terminal,
    /// The whole path's time (the terminal state's entry actions not included).
    pub time: Span,
}

impl Path {
    /// Whether some step of it can never happen.
    pub fn impossible(&self) -> bool {
        self.steps.iter().any(|s| s.impossible.is_some())
    }
}

/// What [`simulate`] found.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// Paths in the order found: depth first, moves in file order.
    pub paths: Vec<Path>,
    /// Moves back to a state already on the path (retry loops), each once: not followed.
    pub loops: Vec<(NodeIndex, NodeIndex, Move)>,
    /// Set when a limit stopped enumeration: there are more paths than listed.
    pub truncated: Option<Limits>,
}

/// Every path from the initial state to a terminal state of `workflow`, within `limits`.
pub fn simulate(workflow: &Workflow, limits: Limits) -> Simulation {
    let moves = Moves::new(workflow);
    let mut sim = Simulation {
        paths: Vec::new(),
        loops: Vec::new(),
        truncated: None,
    };
    let mut loops_seen = HashSet::new();
    let mut on_path = vec![false; workflow.graph.node_count()];
    let mut steps: Vec<Step> = Vec::new();
    let mut budget = limits.steps;
    // Depth first, without recursion: each frame is a state and the next of its moves to try.
    let mut stack: Vec<(NodeIndex, usize)> = vec![(workflow.initial, 0)];
    on_path[workflow.initial.index()] = true;
    while let Some(&mut (state, ref mut next)) = stack.last_mut() {
        let Some(&(to, by)) = moves.succ[state.index()].get(*next) else {
            on_path[state.index()] = false;
            stack.pop();
            steps.pop();
            continue;
        };
        *next += 1;
        if budget == 0 {
            sim.truncated = Some(limits);
            break;
        }
        budget -= 1;
        if on_path[to.index()] {
            if loops_seen.insert((state, to)) {
                sim.loops.push((state, to, by));
            }
            continue;
        }
        steps.push(step(workflow, state, to, by));
        if let Some(terminal) = workflow.state(to).terminal {
            // A path beyond the limit, or one too long for the budget left: more exist.
            if sim.paths.len() >= limits.paths || budget < steps.len() {
                sim.truncated = Some(limits);
                break;
            }
            budget -= steps.len();
            let time = steps.iter().fold(Span::ZERO, |t, s| t.then(s.time));
            sim.paths.push(Path {
                steps: steps.clone(),
                end: to,
                terminal,
                time,
            });
            steps.pop();
            continue;
        }
        on_path[to.index()] = true;
        stack.push((to, 0));
    }
    sim
}

/// The step from `from` to `to` by `by`: how long the stay in `from` takes.
fn step(w: &Workflow, from: NodeIndex, to: NodeIndex, by: Move) -> Step {
    let state = w.state(from);
    let actions = state
        .on_enter
        .iter()
        .fold(Span::ZERO, |t, a| t.then(action_time(a)));
    let mut impossible = None;
    let time = match by {
        Move::Transition(e) => {
            let guards = w.graph[e]
                .guards
                .iter()
                .fold(Span::ZERO, |t, g| t.alongside(guard_time(g)));
            let mut time = actions.then(guards);
            if let Some(d) = state.deadline {
                if time.least >= d {
                    impossible = Some(format!(
                        "its guards need at least {}, and the deadline of {} passes first",
                        crate::duration::format_duration(time.least),
                        crate::duration::format_duration(d)
                    ));
                }
                time.most = Some(time.most.map_or(d, |m| m.min(d)));
            }
            time
        }
        Move::OnFailure | Move::Fallback => {
            let most = state.deadline.or_else(|| {
                w.outgoing_iter(from)
                    .map(|t| {
                        t.transition
                            .guards
                            .iter()
                            .fold(Span::ZERO, |s, g| s.alongside(guard_time(g)))
                    })
                    .fold(actions, |s, t| s.alongside(actions.then(t)))
                    .most
            });
            Span {
                least: Duration::ZERO,
                most,
            }
        }
    };
    Step {
        from,
        to,
        by,
        time,
        impossible,
    }
}

fn action_time(action: &Action) -> Span {
    let timeout = match action {
        Action::Command(c) => c.timeout,
        Action::Http(h) => h.timeout,
    };
    Span {
        least: Duration::ZERO,
        most: Some(timeout),
    }
}

/// How long a guard can take to pass, retries included.
pub fn guard_time(guard: &Guard) -> Span {
    let tries = |each: Duration| {
        let n = guard.retry.attempts.max(1);
        Span {
            least: Duration::ZERO,
            most: Some(
                each.saturating_mul(n)
                    .saturating_add(guard.retry.delay.saturating_mul(n - 1)),
            ),
        }
    };
    match &guard.check {
        Check::Command(c) => tries(c.timeout),
        Check::Http(h) => tries(h.timeout),
        Check::Json(_) => tries(Duration::ZERO),
        Check::Approval(_) => Span {
            least: Duration::ZERO,
            most: None,
        },
        Check::Wait(d) => Span::exact(*d),
        Check::Window(w) => Span {
            least: Duration::ZERO,
            most: Some(longest_closed(w)),
        },
        Check::Watch(w) => Span {
            least: w.duration,
            most: Some(w.duration.saturating_add(w.interval)),
        },
    }
}

/// The longest a window stays closed in a week (daylight saving aside).
fn longest_closed(w: &WindowCheck) -> Duration {
    const DAY: u32 = 24 * 60;
    const WEEK: u32 = 7 * DAY;
    let minutes = |t: jiff::civil::Time| t.hour() as u32 * 60 + t.minute() as u32;
    let (start, end) = (minutes(w.start), minutes(w.end));
    let length = if end > start {
        end - start
    } else {
        DAY - start + end
    };
    let mut opens: Vec<u32> = w.days.iter().map(|d| *d as u32 * DAY + start).collect();
    opens.sort_unstable();
    opens.dedup();
    let Some(&first) = opens.first() else {
        return Duration::from_secs(u64::from(WEEK) * 60);
    };
    let mut longest = 0;
    for (i, &open) in opens.iter().enumerate() {
        let next = opens.get(i + 1).copied().unwrap_or(first + WEEK);
        longest = longest.max((next - open).saturating_sub(length));
    }
    Duration::from_secs(u64::from(longest) * 60)
}

#[cfg(test)]
mod tests;
