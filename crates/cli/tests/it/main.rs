//! Integration tests: the real `waygate` binary, driven as a user would.

mod helpers;
mod validate;
