//! The generated workflow of the validation bench, shared with `examples/validate_big.rs`.

/// A chain of `n` states, each with a forward transition guarded by a Command and a Wait,
/// and a second transition to the rollback state, with `${vars}` in the commands.
pub fn generated(n: usize) -> String {
    let mut s = String::from(
        "Workflow(name: \"big\", initial: \"s0\", rollback: \"rb\",\n vars: { \"url\": (default: \"http://127.0.0.1\") },\n states: {\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "  \"s{i}\": (on_failure: \"rb\", deadline: \"1h\"),\n"
        ));
    }
    s.push_str("  \"done\": (terminal: Success),\n  \"rb\": (),\n  \"failed\": (terminal: Failure),\n },\n transitions: [\n");
    for i in 0..n {
        let next = if i + 1 == n {
            "done".to_owned()
        } else {
            format!("s{}", i + 1)
        };
        s.push_str(&format!(
            "  (from: \"s{i}\", to: \"{next}\", guards: [(name: \"t\", check: Command(run: [\"curl\", \"${{url}}/{i}\"], timeout: \"30s\")), (name: \"bake\", check: Wait(duration: \"5m\"))]),\n"
        ));
        s.push_str(&format!("  (from: \"s{i}\", to: \"rb\"),\n"));
    }
    s.push_str("  (from: \"rb\", to: \"failed\"),\n ],\n)\n");
    s
}
