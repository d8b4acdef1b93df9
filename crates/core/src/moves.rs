//! The moves a run can make on its own, as policies and `simulate` walk them: transitions, a
//! state's `on_failure`, and an incident falling back to the workflow's `rollback` (from a
//! state that can have an incident: entry actions, a deadline or a `Watch`, and no
//! `on_failure` of its own, off the rollback path; `Workflow::failure_target` owns the rule at
//! run time). `waygate rollback`, a person's decision, is not one of them
//! (docs/policies.md, "Which paths count").

use std::collections::VecDeque;

use petgraph::graph::{EdgeIndex, NodeIndex};

use crate::model::{Check, Workflow};

/// How a run can move from one state to another on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// A transition (its guards must pass).
    Transition(EdgeIndex),
    /// The state's `on_failure`.
    OnFailure,
    /// An incident falling back to the workflow's `rollback`.
    Fallback,
}

/// Every state's moves, computed once per workflow.
pub(crate) struct Moves {
    /// Each state's moves (target and how), by node index: transitions in file order first.
    pub(crate) succ: Vec<Vec<(NodeIndex, Move)>>,
}

impl Moves {
    pub(crate) fn new(w: &Workflow) -> Moves {
        let mut succ = vec![Vec::new(); w.graph.node_count()];
        for (id, state) in w.states() {
            let out = &mut succ[id.index()];
            out.extend(w.outgoing_iter(id).map(|t| (t.to, Move::Transition(t.id))));
            if let Some(f) = state.on_failure {
                out.push((f, Move::OnFailure));
            } else if let Some(r) = w.rollback.filter(|_| falls_back(w, id)) {
                out.push((r, Move::Fallback));
            }
        }
        Moves { succ }
    }

    /// A shortest path from `from` to a state where `stop` holds, moving only where `allowed`
    /// says (given the source and the move): the states, `from` first.
    pub(crate) fn path(
        &self,
        from: NodeIndex,
        allowed: impl Fn(NodeIndex, NodeIndex, Move) -> bool,
        stop: impl Fn(NodeIndex) -> bool,
    ) -> Option<Vec<NodeIndex>> {
        let mut parent: Vec<Option<NodeIndex>> = vec![None; self.succ.len()];
        let mut seen = vec![false; self.succ.len()];
        seen[from.index()] = true;
        let mut queue = VecDeque::from([from]);
        while let Some(n) = queue.pop_front() {
            if stop(n) {
                let mut path = vec![n];
                let mut at = n;
                while let Some(p) = parent[at.index()] {
                    path.push(p);
                    at = p;
                }
                path.reverse();
                return Some(path);
            }
            for &(m, how) in &self.succ[n.index()] {
                if !seen[m.index()] && allowed(n, m, how) {
                    seen[m.index()] = true;
                    parent[m.index()] = Some(n);
                    queue.push_back(m);
                }
            }
        }
        None
    }

    /// A shortest-path tree from `from`, moving only where `allowed` says: each reached
    /// state's predecessor on a shortest path (`from`'s is itself). One walk answers
    /// [`Moves::path_in`] for every state.
    pub(crate) fn tree(
        &self,
        from: NodeIndex,
        allowed: impl Fn(NodeIndex, NodeIndex, Move) -> bool,
    ) -> Vec<Option<NodeIndex>> {
        let mut parent: Vec<Option<NodeIndex>> = vec![None; self.succ.len()];
        parent[from.index()] = Some(from);
        let mut queue = VecDeque::from([from]);
        while let Some(n) = queue.pop_front() {
            for &(m, how) in &self.succ[n.index()] {
                if parent[m.index()].is_none() && allowed(n, m, how) {
                    parent[m.index()] = Some(n);
                    queue.push_back(m);
                }
            }
        }
        parent
    }

    /// The states from the root of `tree` to `to`, if `to` was reached.
    pub(crate) fn path_in(tree: &[Option<NodeIndex>], to: NodeIndex) -> Option<Vec<NodeIndex>> {
        let mut path = vec![to];
        let mut at = to;
        loop {
            let p = (*tree.get(at.index())?)?;
            if p == at {
                break;
            }
            path.push(p);
            at = p;
        }
        path.reverse();
        Some(path)
    }

    /// Which states can be reached from `from`, never entering `avoid`.
    pub(crate) fn reach(&self, from: NodeIndex, avoid: Option<NodeIndex>) -> Vec<bool> {
        let mut seen = vec![false; self.succ.len()];
        if Some(from) == avoid {
            return seen;
        }
        seen[from.index()] = true;
        let mut stack = vec![from];
        while let Some(n) = stack.pop() {
            for &(m, _) in &self.succ[n.index()] {
                if Some(m) != avoid && !seen[m.index()] {
                    seen[m.index()] = true;
                    stack.push(m);
                }
            }
        }
        seen
    }

    /// Which states can reach `to`.
    pub(crate) fn reaching(&self, to: NodeIndex) -> Vec<bool> {
        let mut preds: Vec<Vec<NodeIndex>> = vec![Vec::new(); self.succ.len()];
        for (n, out) in self.succ.iter().enumerate() {
            for &(m, _) in out {
                preds[m.index()].push(NodeIndex::new(n));
            }
        }
        let mut good = vec![false; self.succ.len()];
        good[to.index()] = true;
        let mut stack = vec![to];
        while let Some(n) = stack.pop() {
            for &p in &preds[n.index()] {
                if !good[p.index()] {
                    good[p.index()] = true;
                    stack.push(p);
                }
            }
        }
        good
    }
}

/// Whether an incident in `state` falls back to the workflow's `rollback` state: it can have
/// one (entry actions, a deadline, a `Watch` out of it), has no `on_failure` of its own, is
/// not terminal and is not on the rollback path (`Workflow::failure_target` owns the rule at
/// run time).
pub(crate) fn falls_back(w: &Workflow, state: NodeIndex) -> bool {
    let s = w.state(state);
    let incident = !s.on_enter.is_empty()
        || s.deadline.is_some()
        || w.outgoing_iter(state).any(|t| {
            t.transition
                .guards
                .iter()
                .any(|g| matches!(g.check, Check::Watch(_)))
        });
    incident
        && s.on_failure.is_none()
        && s.terminal.is_none()
        && !w.rollback_path.get(state.index()).copied().unwrap_or(false)
}
