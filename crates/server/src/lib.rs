//! waygate as a server: who may call it (tokens and roles) and, on top, the HTTP API.
//!
//! # Layout
//!
//! - [`role`]: the four roles and which actions each allows.
//! - [`tokens`]: the tokens file: actors, their roles and a hash of each token.
//! - [`auth`]: the bearer token (or session cookie) of a request, checked against the tokens
//!   file and the route.
//! - [`session`]: the pages' signed-in sessions, their cookie and CSRF token.
//! - [`catalog`]: the workflows a server can start, from its `--workflows` directory.
//! - [`error`]: errors as JSON, with a code per CLI exit code.
//! - [`drives`]: the runs the server drives, written down to be resumed after a restart.
//! - `routes`: the HTTP routes of the API.
//! - `pages`: the pages for people (`/runs`, `/audit`, signing in), server-side HTML.
//! - [`server`]: binding, signals, graceful stop.
//! - [`tls`]: HTTPS: the certificate and key, the handshake.
#![deny(missing_docs)]

pub mod auth;
pub mod catalog;
pub mod drives;
pub mod error;
mod pages;
pub mod role;
mod routes;
pub mod server;
pub mod session;
pub mod tls;
pub mod tokens;

pub use server::{serve, Backend, Config, Limits, ServeError};
