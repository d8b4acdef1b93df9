//! Integration tests of the executor against real child processes and a real local HTTP
//! server: one test binary, one module per topic.

mod commands;
mod http;
mod process;
mod support;
