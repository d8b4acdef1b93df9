//! The checks on the graph of states: a terminal state exists, no transition leaves one, every
//! state can reach one (`no-path-to-terminal`, naming the states a run is trapped among), every
//! state is reachable (`unreachable-state`), and actions have a way to handle their failure
//! (`missing-failure-path`).

use std::collections::{HashSet, VecDeque};

use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::{Built, Checker, Step::Field};
use crate::diagnostic::Code;
use crate::spec::Spec;

impl Checker<'_> {
    pub(super) fn graph_checks(&mut self, spec: &Spec, built: &Built<'_>) {
        let (graph, index, initial, rollback) =
            (built.graph, built.index, built.initial, built.rollback);
        let terminals: Vec<NodeIndex> = graph
            .node_indices()
            .filter(|&i| graph[i].terminal.is_some())
            .collect();
        if terminals.is_empty() {
            let span = self.key_span(&[], "states");
            self.report(
                Code::NoTerminal,
                span,
                "no state is terminal, so no run can ever end".into(),
            )
            .help = Some("mark end states, e.g. \"done\": (terminal: Success)".into());
        }
        // Successors a run can move to: transitions and on_failure.
        let succ = |i: NodeIndex| {
            graph
                .edges_directed(i, Direction::Outgoing)
                .map(|e| e.target())
                .chain(graph[i].on_failure)
        };
        // Reachable from the initial state, and the rollback state (`waygate rollback`).
        // Node sets are bit vectors by node index: hashing every node cost more than the walk.
        let n = graph.node_count();
        if let Some(initial) = initial {
            let mut seen = vec![false; n];
            let mut queue: VecDeque<NodeIndex> = [initial].into_iter().chain(rollback).collect();
            while let Some(i) = queue.pop_front() {
                if !std::mem::replace(&mut seen[i.index()], true) {
                    queue.extend(succ(i));
                }
            }
            for (name, _) in &spec.states {
                if !seen[index[name].index()] {
                    let span = self.key_span(&[Field("states")], name);
                    self.report(
                        Code::UnreachableState,
                        span,
                        format!(
                            "state `{name}` cannot be reached from the initial state `{}`",
                            spec.initial
                        ),
                    );
                }
            }
        }
        if terminals.is_empty() {
            return;
        }
        // States from which some terminal is reachable: search backwards from the terminals.
        let mut preds: Vec<Vec<NodeIndex>> = vec![Vec::new(); n];
        for i in graph.node_indices() {
            for j in succ(i) {
                preds[j.index()].push(i);
            }
        }
        let mut good = vec![false; n];
        let mut queue: VecDeque<NodeIndex> = terminals.into_iter().collect();
        while let Some(i) = queue.pop_front() {
            if !std::mem::replace(&mut good[i.index()], true) {
                queue.extend(preds[i.index()].iter().copied());
            }
        }
        for (name, _) in &spec.states {
            let id = index[name];
            if good[id.index()] {
                continue;
            }
            // The first few states a run is trapped among, breadth first. Bounded: listing
            // every one made a chain of n such states cost n^2 (docs/performance.md).
            let mut trapped: Vec<&str> = vec![&graph[id].name];
            let mut seen = HashSet::from([id]);
            let mut queue = VecDeque::from([id]);
            let mut budget = 16 * TRAPPED_SHOWN;
            let mut more = false;
            'walk: while let Some(i) = queue.pop_front() {
                for j in succ(i) {
                    if budget == 0 {
                        more = true;
                        break 'walk;
                    }
                    budget -= 1;
                    if seen.contains(&j) {
                        continue;
                    }
                    if trapped.len() == TRAPPED_SHOWN {
                        more = true;
                        break 'walk;
                    }
                    seen.insert(j);
                    trapped.push(&graph[j].name);
                    queue.push_back(j);
                }
            }
            let span = self.key_span(&[Field("states")], name);
            let message = if trapped.len() == 1 {
                format!("state `{name}` is a dead end: it has no transition or on_failure and is not terminal")
            } else {
                format!(
                    "state `{name}` cannot reach any terminal state; from it a run can only reach {}{}",
                    trapped.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" -> "),
                    if more { " -> ..." } else { "" }
                )
            };
            self.report(Code::NoPathToTerminal, span, message).help =
                Some("add a transition towards a terminal state, or an on_failure".into());
        }
        // States after the rollback state fall back to nowhere: going back to `rollback`
        // would run the rollback again (see `Workflow::failure_target`).
        let after_rollback = initial
            .map(|i| crate::model::rollback_path(graph, i, rollback))
            .unwrap_or_default();
        for (name, state) in &spec.states {
            if state.terminal.is_some() || state.on_enter.is_empty() || state.on_failure.is_some() {
                continue;
            }
            let id = index.get(name).copied();
            let after = id.is_some_and(|i| {
                Some(i) != rollback && after_rollback.get(i.index()).copied().unwrap_or(false)
            });
            let (why, help) = if rollback.is_none() {
                (
                    "the workflow has no rollback",
                    "add on_failure: \"<state>\" or a workflow-level rollback",
                )
            } else if after {
                (
                    "it is on the rollback path, so a failure there does not go back to the rollback state",
                    "add on_failure: \"<state>\", e.g. an escalation state for people",
                )
            } else {
                continue;
            };
            let span = self.key_span(&[Field("states")], name);
            self.report(
                Code::MissingFailurePath,
                span,
                format!("state `{name}` runs actions on entry but has no on_failure and {why}: a failed action leaves the run failed in place"),
            )
            .help = Some(help.into());
        }
        // An on_failure from the rollback path back into the rollback state runs the rollback
        // actions again on every failure there: reverting the revert, and for a failure that
        // persists, without end.
        let Some(rollback) = rollback else { return };
        let rollback_name = &graph[rollback].name;
        for (name, state) in &spec.states {
            let on_path = index
                .get(name)
                .is_some_and(|i| after_rollback.get(i.index()).copied().unwrap_or(false));
            if !on_path || state.on_failure.as_deref() != Some(rollback_name.as_str()) {
                continue;
            }
            let span = self.key_span(&[Field("states")], name);
            self.report(
                Code::RollbackLoop,
                span,
                format!("state `{name}` is on the rollback path and its on_failure goes back to `{rollback_name}`: every failure there runs the rollback actions again (reverting the revert), and a failure that persists loops without end"),
            )
            .help = Some(
                "send failures after the rollback to a state for people, e.g. on_failure: \"escalate\"".into(),
            );
        }
    }
}

/// States named in a `no-path-to-terminal` message before "...".
const TRAPPED_SHOWN: usize = 6;
