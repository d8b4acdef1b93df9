//! Integration tests: the real `waygate` binary, driven as a user would.

mod approvals;
mod clock;
mod concurrency;
mod crash;
mod exec;
mod helpers;
mod index;
mod live;
mod reports;
mod rollback;
mod runs;
mod secrets;
mod seed;
mod signals;
mod store;
mod untrusted;
mod validate;
mod vars;
mod workdir;
