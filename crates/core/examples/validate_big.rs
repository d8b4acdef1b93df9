//! Validates the 10,000-state workflow of `benches/validate.rs` once (or `N` times), for
//! profiling with a stable instruction count:
//!
//! ```sh
//! cargo build --release -p waygate-core --example validate_big
//! valgrind --tool=callgrind target/release/examples/validate_big
//! ```

#[path = "../benches/support/generated.rs"]
mod support;

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let times: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let text = support::generated(10_000);
    let start = Instant::now();
    for _ in 0..times {
        let v = waygate_core::validate::validate("big.ron", &text);
        if v.workflow.is_none() {
            eprintln!("validate_big: invalid: {:?}", v.diagnostics.first());
            return ExitCode::FAILURE;
        }
    }
    eprintln!(
        "{} bytes, {:.1} ms per validation",
        text.len(),
        start.elapsed().as_secs_f64() * 1e3 / f64::from(times)
    );
    ExitCode::SUCCESS
}
