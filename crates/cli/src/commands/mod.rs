//! One module per group of commands.

pub mod act;
pub mod docs;
pub mod graph;
pub mod query;
pub mod report;
pub mod serve;
pub mod simulate;
pub mod store;
pub mod test;
pub mod token;
pub mod validate;
