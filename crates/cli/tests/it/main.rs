//! Integration tests: the real `waygate` binary, driven as a user would.

mod completions;
mod concurrency;
mod crash;
mod exec;
mod helpers;
mod runs;
mod secrets;
mod seed;
mod signals;
mod validate;
mod vars;
