//! waygate's PostgreSQL store: the second implementation of `waygate_core::store::Store`, for
//! teams whose laptops and CI runners share runs and one audit chain (`docs/storage.md`,
//! "PostgreSQL").
//!
//! The commit rules, the hash chain and the errors are core's (`store::rules`, `event`,
//! `StoreError`); this crate decides only how a write is made atomic and durable in
//! PostgreSQL, and how rows become runs and events.
//!
//! # Layout
//! - `connect.rs`: the URL, connecting, and what the server's errors mean ([`StoreError`]).
//! - `schema.rs`: the tables, created on first use, and their version.
//! - `write.rs`: a group of writes in one transaction, serialised on the chain's lock.
//! - `wire.rs`: the writing connection's own small client (reads use the `postgres` crate).
//! - `rows.rs`: rows to runs and events.
//! - `verify.rs`: the whole chain recomputed, and its end compared with the runs' rows.
//! - `run_locks.rs`: [`PgRunLocks`], the per-run lock as a session advisory lock.
//! - `lease.rs`: [`PgLeases`], which `waygate serve` replica drives which run.
//!
//! [`StoreError`]: waygate_core::store::StoreError

mod connect;
mod lease;
mod rows;
mod run_locks;
mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod verify;
mod wire;
mod write;

pub use connect::{is_postgres_url, redact};
pub use lease::PgLeases;
pub use run_locks::PgRunLocks;
pub use schema::SCHEMA_VERSION;
pub use store::{PgStore, Tables};
