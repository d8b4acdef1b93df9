//! waygate's core: the workflow model, its validation, the transition decision and the store.
#![deny(missing_docs)]

pub mod duration;
pub mod event;
pub mod model;
pub mod outcome;
pub mod run;
pub mod spec;
pub mod store;
pub mod template;
