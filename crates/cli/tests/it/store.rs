//! The store as its users meet it: which commands may create one, what a wrong `--store`
//! says, read-only auditors, private files, damage and salvage, a store held by a neighbour.

use std::fs;
use std::path::Path;

use crate::helpers::{run, Sandbox};
use crate::runs::LIFECYCLE;

/// Everything under `dir`, relative, sorted: to show that nothing was created or changed.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            out.push(format!("{rel} {len}"));
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn audit_verify_on_a_mistyped_store_path_says_no_store_and_creates_nothing() {
    let sb = Sandbox::new();
    let missing = sb.path().join("stroe");
    for args in [
        &["audit", "verify"][..],
        &["runs"],
        &["history", "r1"],
        &["status", "r1"],
        &["audit"],
        &["abort", "r1", "--reason", "x"],
        &["drive", "r1"],
    ] {
        let mut full = vec!["--store", missing.to_str().expect("utf-8")];
        full.extend_from_slice(args);
        let out = run(sb.path(), &full);
        out.code(1);
        assert!(
            out.stderr
                .contains(&format!("no store at {}", missing.display())),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
}

#[test]
fn a_read_command_does_not_turn_an_existing_directory_into_a_store() {
    let sb = Sandbox::new();
    let docs = sb.path().join("docs");
    fs::create_dir_all(&docs).expect("mkdir");
    fs::write(docs.join("notes.txt"), "mine").expect("write");
    let before = listing(&docs);
    let out = run(sb.path(), &["--store", "docs", "runs"]);
    out.code(1);
    assert!(out.stderr.contains("no store at docs"), "{}", out.stderr);
    assert_eq!(listing(&docs), before);
    // An empty directory is not a store either, for a reader.
    fs::create_dir_all(sb.path().join("empty")).expect("mkdir");
    run(sb.path(), &["--store", "empty", "audit", "verify"]).code(1);
    assert_eq!(listing(&sb.path().join("empty")), Vec::<String>::new());
}

#[test]
fn start_creates_a_store_in_a_missing_or_empty_directory_but_never_in_a_non_empty_one() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    run(
        sb.path(),
        &["--store", "new/deeper", "start", "wf.ron", "--env", "dev"],
    )
    .code(0);
    fs::create_dir_all(sb.path().join("empty")).expect("mkdir");
    run(
        sb.path(),
        &["--store", "empty", "start", "wf.ron", "--env", "dev"],
    )
    .code(0);
    run(sb.path(), &["--store", "empty", "audit", "verify"]).code(0);

    fs::create_dir_all(sb.path().join("home")).expect("mkdir");
    fs::write(sb.path().join("home/.bashrc"), "alias ll='ls -l'").expect("write");
    let before = listing(&sb.path().join("home"));
    for cmd in ["start", "run"] {
        let out = run(
            sb.path(),
            &["--store", "home", cmd, "wf.ron", "--env", "dev"],
        );
        out.code(1);
        assert!(
            out.stderr
                .contains("home is a directory that is not a waygate store")
                && out.stderr.contains("not empty"),
            "{cmd}: {}",
            out.stderr
        );
    }
    assert_eq!(listing(&sb.path().join("home")), before);
}

#[test]
fn store_path_that_is_a_file_says_so_instead_of_file_exists() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    sb.write("store.txt", "not a store");
    for args in [&["runs"][..], &["start", "wf.ron", "--env", "dev"]] {
        let mut full = vec!["--store", "store.txt"];
        full.extend_from_slice(args);
        let out = run(sb.path(), &full);
        out.code(1);
        assert!(
            out.stderr
                .contains("store.txt is a file, not a store directory"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("os error 17"), "{}", out.stderr);
    }
    assert_eq!(
        fs::read_to_string(sb.path().join("store.txt")).expect("read"),
        "not a store"
    );
}

#[test]
fn a_deleted_format_file_says_what_is_wrong_and_its_advice_works() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    let run_id = sb.start("alice", "wf.ron", "dev", &[]);
    fs::remove_file(sb.store().join("FORMAT")).expect("rm FORMAT");
    let out = sb.wg(&["status", &run_id]);
    out.code(1);
    assert!(
        out.stderr.contains("FORMAT file is missing"),
        "says what is wrong: {}",
        out.stderr
    );
    // The advice: write the line back.
    let advice = "waygate-store 1";
    assert!(out.stderr.contains(advice), "{}", out.stderr);
    // start must not "repair" it by writing a fresh store over a journal either.
    sb.wg(&["start", "wf.ron", "--env", "prod"]).code(1);
    fs::write(sb.store().join("FORMAT"), format!("{advice}\n")).expect("restore FORMAT");
    assert_eq!(sb.status(&run_id)["state"], "build");
    sb.verify();
}
