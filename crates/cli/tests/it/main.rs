//! Integration tests: the real `waygate` binary, driven as a user would.

mod concurrency;
mod crash;
mod exec;
#[allow(dead_code)] // not every helper is used by every test module
mod helpers;
mod runs;
mod secrets;
mod seed;
mod signals;
mod validate;
