//! `status` and `history` read one run from the read index (`index/` in the store) without
//! opening sled, and print exactly what reading through sled prints; a store without an index
//! (written by an older waygate, or with `index/` deleted) reads as before and gets one.

use std::fs;

use crate::helpers::Sandbox;
use crate::runs::LIFECYCLE;

/// What `status` and `history` print for `run`, in every format.
fn reads(sb: &Sandbox, run: &str) -> Vec<String> {
    let mut out = Vec::new();
    for format in ["human", "json"] {
        for command in ["status", "history"] {
            let ran = sb.wg(&["--format", format, command, run]);
            ran.code(0);
            out.push(ran.stdout.clone());
        }
    }
    out
}

#[test]
fn status_and_history_print_the_same_with_and_without_the_read_index() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    let a = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["advance", &a]).code(3);
    sb.write("go", "");
    sb.wg(&["advance", &a]).code(0);
    sb.wg(&["advance", &a]).code(4);
    let b = sb.start("alice", "wf.ron", "prod", &[]);
    sb.wg(&["abort", &b, "--reason", "not today"]).code(0);
    let index = sb.store().join("index");
    assert!(index.join("HEAD").is_file(), "every write keeps the index");
    let from_index = [reads(&sb, &a), reads(&sb, &b)];
    // Without the index (a store from before it): through sled, the same, and the index is
    // built again by that command's session.
    fs::remove_dir_all(&index).expect("rm index");
    let through_state = [reads(&sb, &a), reads(&sb, &b)];
    assert_eq!(from_index, through_state);
    assert!(index.join("HEAD").is_file(), "rebuilt");
    assert_eq!([reads(&sb, &a), reads(&sb, &b)], from_index);
    // A run that does not exist is still "not found" (the index does not decide that alone).
    let missing = sb.wg(&["status", "no-such-run"]);
    assert_ne!(missing.code, 0);
    missing.stderr_has("no-such-run");
}
