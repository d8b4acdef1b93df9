//! Integration tests: the real `waygate` binary, driven as a user would.

mod approvals;
mod audit_report;
mod clock;
mod completions;
mod concurrency;
mod crash;
mod ending;
mod exec;
mod helpers;
mod index;
mod live;
mod logs;
mod reports;
mod rollback;
mod runs;
mod secrets;
mod seed;
mod signals;
mod store;
mod untrusted;
mod upgrade;
mod validate;
mod vars;
mod workdir;
