//! waygate's core: the workflow model, its validation, the transition decision and the store.
//!
//! # Layout
//! The pipeline reads off the module names:
//! `spec` (the RON file, one type per construct, and `spec::span_tree`, where each value sits in
//! the text) → `validate` (with `diagnostic` for findings and `line_index` for their lines and
//! columns; its submodules by concern: `names` the name rule, `suggest` did-you-mean,
//! `duplicates` keys and fields written twice, `ron_error` ron's errors in the file's terms,
//! `checks` the check kinds, `values` durations, times and templates, `shell` the shell lint,
//! `graph` the graph of states)
//! → `model` (the validated [`model::Workflow`], a petgraph graph) → `decide` (the pure
//! transition decision, with whether one transition passes and when a state's deadline falls)
//! and `entry` (the pure decision of which entry action runs next, and an action's status) →
//! `store` (runs and the hash-chained event journal, with `run` and `event` the records it
//! keeps). `summary` writes events as text for people. `visit` says which events belong to the state a run is in now, and `approval` which
//! approvals count there; `ending` says how a run ended.
//! `policy` proves organisation-wide rules over every path of a workflow's graph, and
//! `simulate` lists those paths with their guards and times; `moves` is what both walk;
//! `scenario` reads scripted guard outcomes for the executor to run a workflow against; `place`
//! puts their findings (and a policy's) at their line and column.
//! `template` and `duration` are the small languages inside strings; `actor` is the
//! actor-name rule; `text` escapes untrusted text for people; `vars` resolves a run's variable
//! values; `outcome` is what evaluating a guard produced; `notify` which notification hooks are due; `outputs` the values steps publish for
//! later ones (`${steps.NAME.KEY}`); `clock_jump` is the rule for stored
//! times when clocks disagree.
#![deny(missing_docs)]

pub mod actor;
pub mod approval;
pub mod clock_jump;
pub mod decide;
pub mod diagnostic;
pub mod duration;
pub mod ending;
pub mod entry;
pub mod event;
pub mod line_index;
pub mod model;
pub mod moves;
mod name_hash;
pub mod notify;
pub mod outcome;
pub mod outputs;
mod place;
pub mod policy;
pub mod run;
pub mod scenario;
pub mod simulate;
pub mod spec;
pub mod store;
pub mod summary;
pub mod template;
#[cfg(test)]
mod test_support;
pub mod text;
pub mod validate;
pub mod vars;
pub mod visit;
