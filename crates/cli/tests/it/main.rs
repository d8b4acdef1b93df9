//! Integration tests: the real `waygate` binary, driven as a user would.

mod concurrency;
mod crash;
mod exec;
mod helpers;
mod live;
mod runs;
mod secrets;
mod seed;
mod signals;
mod store;
mod validate;
mod vars;
