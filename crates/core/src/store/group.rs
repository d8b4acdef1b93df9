//! Group commit: writes that arrive while another write is syncing share the next sync.
//!
//! Every write through one store handle joins a queue. If no write is in progress, the caller
//! becomes the leader: it takes everything queued (its own write included) and the backend
//! writes them together, each checked and all-or-nothing on its own. The embedded store
//! appends them in one `write` and one `fdatasync` (sled learns of them later, many commits in
//! one batch, `Session::apply_pending`); the PostgreSQL store in one transaction. Writes that
//! arrive meanwhile wait; when the leader is done, one of them leads the next group. A write
//! is acknowledged only after the sync (or the commit) that covers it returned.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::event::{Event, NewEvent};
use crate::run::{Run, RunId};
use crate::store::{RunChange, StoreError};

/// One write, as a caller asked for it (see `EmbeddedStore::write_all`).
#[derive(Debug, Clone)]
pub enum Write {
    /// [`Store::create_run`](crate::store::Store::create_run).
    Create {
        /// The run to create.
        run: Box<Run>,
        /// Its first events.
        events: Vec<NewEvent>,
    },
    /// [`Store::commit`](crate::store::Store::commit).
    Commit(Commit),
    /// [`Store::append`](crate::store::Store::append).
    Append {
        /// The run.
        id: RunId,
        /// The events.
        events: Vec<NewEvent>,
    },
}

/// What a write returns: the run after it (not for appends) and the sealed events.
pub type Written = (Option<Run>, Vec<Event>);

/// A [`Store::commit`](crate::store::Store::commit): what moves run `id`, from the version
/// the caller read. [`Commit::apply`] is what it does to the run, on every backend.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The run.
    pub id: RunId,
    /// The version the caller read.
    pub expected: u64,
    /// What moves.
    pub change: RunChange,
    /// The events recorded with it.
    pub events: Vec<NewEvent>,
}

/// A write's place in the queue.
pub type Ticket = u64;

/// The queue of writes of one store handle; see the module docs.
#[derive(Debug, Default)]
pub struct GroupQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct QueueState {
    next: Ticket,
    waiting: Vec<(Ticket, Write)>,
    done: HashMap<Ticket, Result<Written, StoreError>>,
    leading: bool,
    /// Writers waiting for `ready`.
    sleeping: usize,
}

impl GroupQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // Every change to the state is one step, so a poisoned lock holds consistent data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `ops` (in order, together) and returns their results once they are durable (or
    /// failed). If no group is being written, this thread writes one with `lead`, which gets
    /// every queued write and must answer each ticket.
    pub fn submit(
        &self,
        ops: Vec<Write>,
        mut lead: impl FnMut(Vec<(Ticket, Write)>) -> Vec<(Ticket, Result<Written, StoreError>)>,
    ) -> Vec<Result<Written, StoreError>> {
        let mut state = self.lock();
        let first = state.next;
        state.next += ops.len() as Ticket;
        let tickets = first..state.next;
        if !state.leading && state.waiting.is_empty() {
            // Alone: no group being written and none waiting. This thread writes its own
            // writes as the group and takes their results straight back.
            state.leading = true;
            drop(state);
            return self.lead_alone(tickets.zip(ops).collect(), lead);
        }
        state.waiting.extend(tickets.clone().zip(ops));
        let mut out: Vec<Option<Result<Written, StoreError>>> = Vec::new();
        out.resize_with(tickets.clone().count(), || None);
        let mut missing = out.len();
        loop {
            for (slot, ticket) in out.iter_mut().zip(tickets.clone()) {
                if slot.is_none() {
                    if let Some(result) = state.done.remove(&ticket) {
                        *slot = Some(result);
                        missing -= 1;
                    }
                }
            }
            if missing == 0 {
                return out.into_iter().flatten().collect();
            }
            if !state.leading {
                state.leading = true;
                let batch = std::mem::take(&mut state.waiting);
                let tickets: Vec<Ticket> = batch.iter().map(|(t, _)| *t).collect();
                drop(state);
                let mut leader = Leader {
                    queue: self,
                    tickets,
                    results: Vec::new(),
                };
                leader.results = lead(batch);
                drop(leader);
                state = self.lock();
                continue;
            }
            state.sleeping += 1;
            state = self.ready.wait(state).unwrap_or_else(|p| p.into_inner());
            state.sleeping -= 1;
        }
    }

    /// [`GroupQueue::submit`] when this thread leads a group of only its own writes, `batch`:
    /// their results in order, none kept in the queue.
    fn lead_alone(
        &self,
        batch: Vec<(Ticket, Write)>,
        mut lead: impl FnMut(Vec<(Ticket, Write)>) -> Vec<(Ticket, Result<Written, StoreError>)>,
    ) -> Vec<Result<Written, StoreError>> {
        let tickets: Vec<Ticket> = batch.iter().map(|(t, _)| *t).collect();
        let mut leader = Leader {
            queue: self,
            tickets,
            results: Vec::new(),
        };
        let mut results = lead(batch);
        // Answered here, not through the queue: the leader's turn ends with nothing to hand
        // over (a panic above hands each ticket its failure, as for any group).
        let tickets = std::mem::take(&mut leader.tickets);
        drop(leader);
        tickets
            .into_iter()
            .map(
                |ticket| match results.iter().position(|(t, _)| *t == ticket) {
                    Some(i) => results.swap_remove(i).1,
                    None => Err(abandoned()),
                },
            )
            .collect()
    }
}

/// What a write gets whose group's leader gave it no answer.
fn abandoned() -> StoreError {
    StoreError::Backend {
        location: "this process".into(),
        why: "the write was abandoned: the thread writing its group panicked".into(),
    }
}

/// Ends a leader's turn, even if it panicked: any write of its group left unanswered fails,
/// and the waiting writers are woken so one of them leads the next group.
struct Leader<'a> {
    queue: &'a GroupQueue,
    tickets: Vec<Ticket>,
    results: Vec<(Ticket, Result<Written, StoreError>)>,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        let answered: Vec<Ticket> = self.results.iter().map(|(t, _)| *t).collect();
        state.done.extend(self.results.drain(..));
        for ticket in self.tickets.iter().filter(|t| !answered.contains(t)) {
            state.done.insert(*ticket, Err(abandoned()));
        }
        state.leading = false;
        // A wake-up is a system call even with no one waiting: one per write, alone.
        let waiting = state.sleeping > 0;
        drop(state);
        if waiting {
            self.queue.ready.notify_all();
        }
    }
}
