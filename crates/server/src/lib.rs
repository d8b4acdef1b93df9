//! waygate as a server: who may call it (tokens and roles) and, on top, the HTTP API.
//!
//! # Layout
//!
//! - [`role`]: the four roles and which actions each allows.
//! - [`tokens`]: the tokens file: actors, their roles and a hash of each token.
#![deny(missing_docs)]

pub mod role;
pub mod tokens;
