//! The store as its users meet it: which commands may create one, what a wrong `--store`
//! says, read-only auditors, private files, damage and salvage, a store held by a neighbour.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

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
    out.stderr_has("no store at docs");
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
    out.stderr_has(advice);
    // start must not "repair" it by writing a fresh store over a journal either.
    sb.wg(&["start", "wf.ron", "--env", "prod"]).code(1);
    fs::write(sb.store().join("FORMAT"), format!("{advice}\n")).expect("restore FORMAT");
    assert_eq!(sb.status(&run_id)["state"], "build");
    sb.verify();
}

/// Every file under `dir` with its bytes: to show that a command changed nothing.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = listing(dir)
        .into_iter()
        .filter_map(|line| {
            let rel = line.rsplit_once(' ')?.0.to_owned();
            let path = dir.join(&rel);
            path.is_file()
                .then(|| (rel, fs::read(&path).unwrap_or_default()))
        })
        .collect();
    out.sort();
    out
}

fn segment(store: &Path) -> std::path::PathBuf {
    store.join("journal/00000001.seg")
}

#[test]
fn audit_verify_reports_a_garbage_tail_and_what_the_next_write_does_without_cutting_it() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    let run_id = sb.start("alice", "wf.ron", "dev", &[]);
    let mut bytes = fs::read(segment(&sb.store())).expect("read");
    let good = bytes.len();
    bytes.extend_from_slice(&[0x30, 0, 0, 0, 1, 2, 3, 4, b'{', b'"']);
    fs::write(segment(&sb.store()), &bytes).expect("write");
    let journal_before = fs::read(segment(&sb.store())).expect("read");

    let out = sb.wg(&["audit", "verify"]);
    out.code(0);
    assert!(out.stdout.starts_with("ok: 1 events"), "{}", out.stdout);
    assert!(
        out.stdout.contains("unfinished write")
            && out.stdout.contains(&format!("byte {good}"))
            && out.stdout.contains("the next write cuts it off"),
        "{}",
        out.stdout
    );
    let json = sb
        .wg(&["--format", "json", "audit", "verify"])
        .code(0)
        .json();
    assert_eq!(json["ok"], true);
    assert!(
        json["unfinished"]
            .as_str()
            .is_some_and(|u| u.contains("cuts it off")),
        "{json}"
    );
    assert_eq!(
        fs::read(segment(&sb.store())).expect("read"),
        journal_before,
        "verify changed the journal"
    );
    // The next write does what verify said.
    sb.wg(&["abort", &run_id, "--reason", "done"]).code(0);
    let json = sb
        .wg(&["--format", "json", "audit", "verify"])
        .code(0)
        .json();
    assert!(json["unfinished"].is_null(), "{json}");
    assert_eq!(json["events"], 3);
}

/// Every file stays byte for byte, sled's included: verify reads how far sled had applied the
/// journal from the witness file beside it, without opening sled (opening it writes).
#[test]
fn audit_verify_changes_no_file_of_the_store() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    sb.start("alice", "wf.ron", "dev", &[]);
    let before = contents(&sb.store());
    sb.wg(&["audit", "verify"]).code(0);
    sb.wg(&["--format", "json", "audit", "verify"]).code(0);
    let after = contents(&sb.store());
    let changed: Vec<&String> = after
        .iter()
        .filter(|file| !before.contains(file))
        .map(|(name, _)| name)
        .collect();
    assert!(changed.is_empty(), "verify changed {changed:?}");
    assert_eq!(after.len(), before.len());
}

#[test]
fn audit_verify_prints_the_chain_head_and_expect_head_fails_once_the_chain_no_longer_reaches_it() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    let first = sb.start("alice", "wf.ron", "dev", &[]);
    let json = sb
        .wg(&["--format", "json", "audit", "verify"])
        .code(0)
        .json();
    let seq = json["head"]["seq"].as_u64().expect("head seq");
    let hash = json["head"]["hash"].as_str().expect("head hash").to_owned();
    assert_eq!(seq, 1);
    assert_eq!(hash.len(), 64);
    let human = sb.wg(&["audit", "verify"]);
    human.code(0);
    assert!(
        human.stdout.contains(&format!("head: event {seq} {hash}")),
        "{}",
        human.stdout
    );
    // Later events keep reaching the recorded head.
    sb.wg(&["abort", &first, "--reason", "x"]).code(0);
    let ok = sb.wg(&["audit", "verify", "--expect-head", &hash]);
    ok.code(0);
    ok.stdout_has("reaches");
    let bogus = "ab".repeat(32);
    let out = sb.wg(&["audit", "verify", "--expect-head", &bogus]);
    out.code(1);
    out.stdout_has("does not reach");
    let json = sb
        .wg(&[
            "--format",
            "json",
            "audit",
            "verify",
            "--expect-head",
            &bogus,
        ])
        .code(1)
        .json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["expected_head"]["reached"], false);

    // Someone cuts the journal back to before the recorded head and deletes the witness
    // (sled's state): the shorter chain is intact, only the recorded head shows the loss.
    let later = sb
        .wg(&["--format", "json", "audit", "verify"])
        .code(0)
        .json();
    let later_hash = later["head"]["hash"].as_str().expect("hash").to_owned();
    let bytes = fs::read(segment(&sb.store())).expect("read");
    let first = record_end(&bytes, 1);
    fs::write(segment(&sb.store()), &bytes[..first]).expect("cut");
    fs::remove_dir_all(sb.store().join("state")).expect("rm state");
    sb.wg(&["audit", "verify"]).code(0);
    sb.wg(&["audit", "verify", "--expect-head", &hash]).code(0);
    sb.wg(&["audit", "verify", "--expect-head", &later_hash])
        .code(1);
}

/// The byte offset after the `n`-th record of a segment.
fn record_end(bytes: &[u8], n: usize) -> usize {
    let mut at = 0;
    for _ in 0..n {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += 8 + len;
    }
    at
}

/// `waygate ARGS` run as the unprivileged user `nobody` (uid 65534), through `setpriv`: root
/// ignores permission bits, so only another user shows what read-only access allows. `None`
/// (with the reason printed) where that is impossible: not root, or no `setpriv`.
fn as_nobody(sb: &Sandbox, args: &[&str]) -> Option<crate::helpers::Ran> {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: switching to another user needs root");
        return None;
    }
    let probe = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: setpriv cannot switch to uid 65534 here");
        return None;
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(crate::helpers::bin())
        .arg("--store")
        .arg(sb.store())
        .args(args)
        .current_dir("/")
        .env_remove("WAYGATE_STORE")
        .env("NO_COLOR", "1")
        .env("WAYGATE_ACTOR", "auditor")
        .output()
        .expect("setpriv runs");
    Some(out.into())
}

/// Grants everyone read access to the sandbox and the store (and no write access), as an
/// operator does for an auditor's group.
fn grant_read(sb: &Sandbox) {
    use std::os::unix::fs::PermissionsExt;
    fn walk(path: &Path) {
        let meta = fs::metadata(path).expect("meta");
        let mode = if meta.is_dir() { 0o755 } else { 0o644 };
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
        if meta.is_dir() {
            for entry in fs::read_dir(path).expect("read_dir").flatten() {
                walk(&entry.path());
            }
        }
    }
    fs::set_permissions(sb.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    walk(&sb.store());
}

#[test]
fn an_auditor_with_read_only_access_can_verify_and_read_history_and_runs() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    let done = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["abort", &done, "--reason", "superseded"]).code(0);
    let active = sb.start("alice", "wf.ron", "dev", &[]);
    // Runs its entry action (so the run's lock file exists) and stops at the guard.
    sb.wg(&["advance", &active]);
    grant_read(&sb);
    let before = contents(&sb.store());
    let Some(out) = as_nobody(&sb, &["audit", "verify"]) else {
        return;
    };
    out.code(0);
    assert!(out.stdout.starts_with("ok: "), "{}", out.stdout);
    assert!(sb.store().join("locks").join(&active).exists());

    let out = as_nobody(&sb, &["--format", "json", "history", &done]).expect("ran before");
    out.code(0);
    let kinds: Vec<String> = out
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(kinds, ["RunStarted", "Aborted", "RunEnded"]);

    let out = as_nobody(&sb, &["--format", "json", "runs"]).expect("ran before");
    out.code(0);
    let runs = out.json();
    let ids: Vec<&str> = runs
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["id"].as_str().or(r["run_id"].as_str()))
        .collect();
    assert_eq!(ids, [done.as_str(), active.as_str()], "{runs}");

    let out = as_nobody(&sb, &["--format", "json", "status", &active]).expect("ran before");
    out.code(0);
    assert_eq!(out.json()["state"], "build");
    as_nobody(&sb, &["audit", "--kind", "Aborted"])
        .expect("ran before")
        .code(0);

    // Writing still needs write access, and says so: for a local command and for `serve`.
    let out = as_nobody(&sb, &["abort", &active, "--reason", "x"]).expect("ran before");
    out.code(1);
    out.stderr_has("is not writable by this user")
        .stderr_has("this command writes to it")
        .stderr_has("ermission denied");
    crate::serve::new_token(&sb, "op", &["operator"]);
    sb.write("workflows/wf.ron", LIFECYCLE);
    grant_read(&sb);
    let (tokens, workflows) = (sb.path().join("tokens.ron"), sb.path().join("workflows"));
    let out = as_nobody(
        &sb,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tokens",
            &tokens.to_string_lossy(),
            "--workflows",
            &workflows.to_string_lossy(),
        ],
    )
    .expect("ran before");
    out.code(1);
    out.stderr_has("is not writable by this user")
        .stderr_has("this command writes to it");
    assert_eq!(contents(&sb.store()), before, "a reader changed the store");
}

/// Mode bits of every file and directory under `dir` (and `dir` itself) that let anyone but
/// the owner in.
fn open_to_others(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mode = fs::metadata(dir).expect("meta").permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        out.push(format!(". {mode:o}"));
    }
    for line in listing(dir) {
        let rel = line
            .rsplit_once(' ')
            .map_or(line.as_str(), |(r, _)| r)
            .to_owned();
        let meta = fs::symlink_metadata(dir.join(&rel)).expect("meta");
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            out.push(format!("{rel} {mode:o}"));
        }
    }
    out
}

#[test]
fn store_files_are_private_to_their_owner() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    // A permissive umask, as on many desktops: the store must not depend on it.
    let run_id = {
        let mut cmd = sb.command(
            "alice",
            &["--format", "json", "start", "wf.ron", "--env", "dev"],
        );
        let out = cmd.pre_exec_umask(0o002).output().expect("start");
        let ran: crate::helpers::Ran = out.into();
        ran.code(0);
        ran.json()["run_id"].as_str().expect("id").to_owned()
    };
    for args in [
        &["advance", run_id.as_str()][..],
        &["history", run_id.as_str()],
        &["abort", run_id.as_str(), "--reason", "x"],
        &["audit", "verify"],
        &["runs"],
    ] {
        sb.command("alice", args)
            .pre_exec_umask(0o002)
            .output()
            .expect("runs");
    }
    // The state rebuilt from scratch is private too.
    fs::remove_dir_all(sb.store().join("state")).expect("rm state");
    sb.command("alice", &["runs"])
        .pre_exec_umask(0o002)
        .output()
        .expect("runs");
    assert_eq!(open_to_others(&sb.store()), Vec::<String>::new());
}

/// Runs a command with a given umask.
trait Umask {
    fn pre_exec_umask(&mut self, mask: u32) -> &mut Self;
}

impl Umask for std::process::Command {
    fn pre_exec_umask(&mut self, mask: u32) -> &mut Self {
        use std::os::unix::process::CommandExt;
        // SAFETY: umask is async-signal-safe and touches no memory.
        unsafe {
            self.pre_exec(move || {
                libc::umask(mask as libc::mode_t);
                Ok(())
            })
        }
    }
}

/// (offset, length) of every record of a segment.
fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        out.push((at, len));
        at += 8 + len;
    }
    out
}

/// The index of the record holding the event of `kind` of `run`.
fn record_of(bytes: &[u8], run: &str, kind: &str) -> (usize, usize) {
    records(bytes)
        .into_iter()
        .find(|(at, len)| {
            let text = String::from_utf8_lossy(&bytes[at + 8..at + 8 + len]);
            text.contains(&format!("\"run_id\":\"{run}\""))
                && text.contains(&format!("\"kind\":\"{kind}\""))
        })
        .expect("record present")
}

/// A store with run `a` in dev (its entry action ran, waiting on a guard) and run `b` in prod
/// aborted after it: `a`'s `ActionFinished` is a record in the middle of the journal.
fn two_runs(sb: &Sandbox) -> (String, String) {
    sb.write("wf.ron", LIFECYCLE);
    let a = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["advance", &a]).code(3);
    let b = sb.start("alice", "wf.ron", "prod", &[]);
    sb.wg(&["abort", &b, "--reason", "not today"]).code(0);
    (a, b)
}

/// [`two_runs`], with one byte of `a`'s `ActionFinished` record flipped (its checksum fails).
fn two_runs_one_damaged(sb: &Sandbox) -> (String, String) {
    let (a, b) = two_runs(sb);
    let path = segment(&sb.store());
    let mut bytes = fs::read(&path).expect("read");
    let (at, len) = record_of(&bytes, &a, "ActionFinished");
    bytes[at + 8 + len / 2] ^= 0x20;
    fs::write(&path, bytes).expect("damage");
    (a, b)
}

fn kinds_of(sb: &Sandbox, store: &str, run: &str) -> Vec<String> {
    let out = run_in(sb, store, &["--format", "json", "history", run]);
    out.code(0);
    out.json()
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// `waygate --store STORE ARGS` in the sandbox.
fn run_in(sb: &Sandbox, store: &str, args: &[&str]) -> crate::helpers::Ran {
    let mut full = vec!["--store", store];
    full.extend_from_slice(args);
    run(sb.path(), &full)
}

/// The salvaged store in `saved` passes `audit verify`: its `StoreSalvaged` records, as JSON.
fn salvage_records(sb: &Sandbox) -> serde_json::Value {
    run_in(sb, "saved", &["audit", "verify"]).code(0);
    let audit = run_in(
        sb,
        "saved",
        &["--format", "json", "audit", "--kind", "StoreSalvaged"],
    );
    audit.code(0);
    audit.json()
}

#[test]
fn one_damaged_record_in_an_active_run_does_not_lock_its_environment() {
    let sb = Sandbox::new();
    let (a, _) = two_runs_one_damaged(&sb);

    // What needs the damaged record says so, and what to do.
    let out = sb.wg(&["history", &a]);
    out.code(1);
    out.stderr_has("store is damaged");
    out.stderr_has("waygate store salvage --to");
    // Everything else works: the run can be aborted, which frees its environment.
    sb.wg(&["runs"]).code(0);
    sb.wg(&["abort", &a, "--reason", "its record is damaged"])
        .code(0);
    sb.start("alice", "wf.ron", "dev", &[]);
    let verify = sb.wg(&["audit", "verify"]);
    verify.code(1);
    verify.stdout_has("BAD: event 3");
}

#[test]
fn a_record_lost_mid_journal_and_every_piece_of_advice_followed_end_to_end() {
    let sb = Sandbox::new();
    let (a, b) = two_runs(&sb);
    let path = segment(&sb.store());
    let bytes = fs::read(&path).expect("read");
    let (at, len) = record_of(&bytes, &a, "ActionFinished");
    let mut cut = bytes[..at].to_vec();
    cut.extend_from_slice(&bytes[at + 8 + len..]);
    fs::write(&path, cut).expect("lose a record");

    // The first error: the journal lost events. Its advice: verify, then delete the state if
    // only the tail is missing, else salvage.
    let out = sb.wg(&["runs"]);
    out.code(1);
    out.stderr_has("journal has lost events");
    out.stderr_has("waygate audit verify");
    out.stderr_has("waygate store salvage --to");
    let verify = sb.wg(&["audit", "verify"]);
    verify.code(1);
    verify.stdout_has("sequence gap: expected 3, found 4");
    // Deleting the state anyway is not a dead end: the rebuild stops at the gap and says to
    // salvage.
    fs::remove_dir_all(sb.store().join("state")).expect("rm state");
    let out = sb.wg(&["status", &a]);
    out.code(1);
    out.stderr_has("store is damaged");
    out.stderr_has("waygate store salvage --to");

    // The salvage: everything readable into a new store, the loss recorded; the old store
    // is left exactly as it was.
    let before = contents(&sb.store());
    let out = sb.wg(&["store", "salvage", "--to", "saved"]);
    out.code(0);
    out.stdout_has("lost: event 3");
    assert_eq!(contents(&sb.store()), before, "salvage changed its source");
    assert_eq!(
        kinds_of(&sb, "saved", &a),
        ["RunStarted", "ActionStarted", "GuardsEvaluated"]
    );
    assert_eq!(
        kinds_of(&sb, "saved", &b),
        ["RunStarted", "Aborted", "RunEnded"]
    );
    let events = salvage_records(&sb);
    let lost = &events[0]["lost"];
    assert_eq!(lost[0]["first"], 3, "{events}");
    assert_eq!(lost[0]["last"], 3, "{events}");
    // The run that held dev can be aborted there, and dev is free again.
    run_in(&sb, "saved", &["abort", &a, "--reason", "salvaged"]).code(0);
    run_in(&sb, "saved", &["start", "wf.ron", "--env", "dev"]).code(0);

    // A salvage never writes into a store or a non-empty directory.
    let again = sb.wg(&["store", "salvage", "--to", "saved"]);
    again.code(1);
    again.stderr_has("not empty");
}

/// A neighbour holding the store for longer than the old 10 s limit (here `flock(1)`, so the
/// holder is plainly not waygate): `drive` waits, says who holds it, and goes on when it is
/// free, instead of exiting 1.
#[test]
fn drive_waits_for_a_store_held_longer_than_ten_seconds_and_names_the_holder() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    let run_id = sb.start("alice", "wf.ron", "dev", &[]);
    let mut holder = hold_store(&sb, &["sleep", "11"]);
    let since = Instant::now();
    let drive = sb.spawn_as("tester", "drive", &["drive", &run_id, "--no-wait"]);
    crate::helpers::wait_until(
        "drive says who holds the store",
        Duration::from_secs(10),
        || drive.stderr().contains("waiting for the store"),
    );
    let said = drive.stderr();
    assert!(said.contains("held by pid"), "{said}");
    assert!(
        said.contains("sleep 11"),
        "names the holder's command: {said}"
    );
    let ran = drive.wait(Duration::from_secs(60));
    let _ = holder.wait();
    assert!(
        since.elapsed() > Duration::from_secs(10),
        "the store was held past 10 s"
    );
    assert!(!ran.stderr.contains("try again"), "{}", ran.stderr);
    // It went on: ran the entry action, found the guard not passing, and stopped (--no-wait).
    assert_ne!(ran.code, 1, "{}", ran.stderr);
    let events = sb.history(&run_id);
    assert!(
        events.iter().any(|e| e["kind"] == "ActionFinished"),
        "{events:?}"
    );
}

/// The other branch of the lost-events advice: only the journal's tail is gone, so `audit
/// verify` reports nothing but events missing at the end, and deleting `state` accepts that.
#[test]
fn a_journal_that_lost_only_its_tail_follows_the_advice_to_delete_the_state() {
    let sb = Sandbox::new();
    let (a, b) = two_runs(&sb);
    let path = segment(&sb.store());
    let bytes = fs::read(&path).expect("read");
    // Cut back to just after `a`'s commits: `b` is lost whole.
    let (at, _) = record_of(&bytes, &b, "RunStarted");
    fs::write(&path, &bytes[..at]).expect("cut");

    let out = sb.wg(&["runs"]);
    out.code(1);
    out.stderr_has("journal has lost events");
    out.stderr_has("hint: run `waygate audit verify` first");
    let verify = sb.wg(&["audit", "verify"]);
    verify.code(1);
    assert!(
        verify
            .stdout
            .contains("missing: the journal ends after event"),
        "{}",
        verify.stdout
    );
    assert!(!verify.stdout.contains("sequence gap"), "{}", verify.stdout);
    fs::remove_dir_all(sb.store().join("state")).expect("accept the loss");
    sb.verify();
    let runs = sb.wg(&["--format", "json", "runs"]);
    runs.code(0);
    let listed = runs.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["run_id"], a.as_str());
}

/// Ctrl-C stops a `drive` that is waiting for a store a neighbour holds: it does not hang
/// until the neighbour lets go.
#[test]
fn ctrl_c_stops_a_drive_waiting_for_a_held_store() {
    use std::time::{Duration, Instant};
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    let run_id = sb.start("alice", "wf.ron", "dev", &[]);
    let mut holder = hold_store(&sb, &["sleep", "60"]);
    let drive = sb.spawn_as("tester", "drive", &["drive", &run_id]);
    crate::helpers::wait_until(
        "drive says it waits for the store",
        Duration::from_secs(10),
        || drive.stderr().contains("waiting for the store"),
    );
    let interrupted = Instant::now();
    drive.signal(libc::SIGINT);
    let ran = drive.wait(Duration::from_secs(20));
    assert!(interrupted.elapsed() < Duration::from_secs(20));
    assert!(
        holder.try_wait().expect("try_wait").is_none(),
        "the neighbour still holds the store: drive did not outwait it"
    );
    // flock(1) and its `sleep` together.
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(-(holder.id() as i32), libc::SIGKILL);
    }
    let _ = holder.wait();
    // Stopped by the operator, nothing changed: an interruption (4), not an error (1).
    ran.code(4);
    ran.stderr_has("stopped by SIGINT while waiting for the store");
    assert_eq!(sb.status(&run_id)["version"], 1, "the wait changed the run");
}

#[test]
fn a_postgres_url_that_does_not_answer_is_an_error_not_taken_for_a_directory() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("postgres://deploy:s3cret@127.0.0.1:{port}/waygate");
    for args in [
        &["start", "wf.ron", "--env", "dev"][..],
        &["runs"],
        &["audit", "verify"],
    ] {
        let mut full = vec!["--store", url.as_str()];
        full.extend_from_slice(args);
        let out = run(sb.path(), &full);
        out.code(1);
        assert!(
            out.stderr.contains("cannot reach the store at")
                && out.stderr.contains("does not answer"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("s3cret"),
            "{args:?} echoed the password"
        );
    }
    // A salvage from or into a database URL is refused, before anything is written.
    run(sb.path(), &["start", "wf.ron", "--env", "dev"]).code(0);
    let out = run(
        sb.path(),
        &["store", "salvage", "--to", "postgresql://u@h/db"],
    );
    out.code(1);
    out.stderr_has("works on a store directory");
    // Nothing named like the URL was created as a directory.
    assert_eq!(
        fs::read_dir(sb.path())
            .expect("read")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("postgres"))
            .count(),
        0
    );
}

/// A mistyped or cut-short `--expect-head` is the operator's typo, not evidence of tampering:
/// it is refused as usage (exit 2) before the store is read, never reported as a history that
/// "was cut back or rewritten". Upper case and surrounding blanks are the same hash.
#[test]
fn expect_head_that_is_not_a_hash_is_a_usage_error_not_a_tamper_alarm() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    sb.start("alice", "wf.ron", "dev", &[]);
    let json = sb
        .wg(&["--format", "json", "audit", "verify"])
        .code(0)
        .json();
    let hash = json["head"]["hash"].as_str().expect("head hash").to_owned();
    for bad in ["zz", &hash[..12], "", &format!("{hash}0"), &"g".repeat(64)] {
        let out = sb.wg(&["audit", "verify", "--expect-head", bad]);
        out.code(2);
        assert!(!out.stdout.contains("cut back"), "{bad:?}: {}", out.stdout);
        assert!(
            out.stderr.contains("64 hexadecimal"),
            "{bad:?}: {}",
            out.stderr
        );
    }
    let upper = format!(" {} ", hash.to_ascii_uppercase());
    let out = sb.wg(&["audit", "verify", "--expect-head", &upper]);
    out.code(0);
    assert!(
        out.stdout
            .contains(&format!("reaches the expected head {hash}")),
        "{}",
        out.stdout
    );
}

/// A salvage killed part-way (kill -9, a power cut) must not leave what looks like a whole
/// store: its journal is a valid chain on its own, just shorter, and without the
/// `StoreSalvaged` record. The half-written directory is refused until it is deleted and
/// the salvage run again.
#[test]
fn salvage_killed_part_way_leaves_no_store_that_passes_for_a_whole_one() {
    let sb = big_store();
    let to = sb.path().join("saved");
    let salvage = sb.spawn_as("tester", "salvage", &["store", "salvage", "--to", "saved"]);
    let first_write = Instant::now() + Duration::from_secs(60);
    let written = || {
        fs::read_dir(to.join("journal"))
            .map(|d| d.flatten().any(|e| e.metadata().is_ok_and(|m| m.len() > 0)))
            .unwrap_or(false)
    };
    while !written() && Instant::now() < first_write {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(written(), "the salvage wrote nothing");
    let finished = {
        let mut salvage = salvage;
        let done = salvage.try_finished();
        if !done {
            salvage.kill9();
        }
        done
    };
    if finished {
        // Too quick to catch: then it is whole, its loss record last.
        let records = salvage_records(&sb);
        assert_eq!(records.as_array().map(Vec::len), Some(1), "{records}");
    } else {
        let out = run_in(&sb, "saved", &["audit", "verify"]);
        out.code(1);
        out.stderr_has("salvage");
        run_in(&sb, "saved", &["runs"]).code(1);
        // Salvaging again into it is refused too; into a fresh directory it works.
        sb.wg(&["store", "salvage", "--to", "saved"]).code(1);
        sb.wg(&["store", "salvage", "--to", "saved2"]).code(0);
    }
}

/// A salvage writes into a new place, never into the damaged store it reads: a new store under
/// `.waygate/state` is deleted with sled's state on the old store's next rebuild, and any
/// directory added there changes the evidence the salvage promises to leave alone. Also
/// through a symlink, and through `..`.
#[test]
fn salvage_into_a_directory_inside_the_store_it_reads_is_refused() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    sb.start("alice", "wf.ron", "dev", &[]);
    std::os::unix::fs::symlink(sb.store(), sb.path().join("link")).expect("symlink");
    let before = listing(&sb.store());
    let store = sb.store().display().to_string();
    for to in [
        format!("{store}/state/new"),
        format!("{store}/journal/new"),
        format!("{store}/new/deeper"),
        "link/new".to_owned(),
        format!(
            "{store}/../{}/new",
            sb.store().file_name().expect("name").to_string_lossy()
        ),
    ] {
        let out = sb.wg(&["store", "salvage", "--to", &to]);
        out.code(1);
        assert!(
            out.stderr.contains("inside the store"),
            "{to}: {}",
            out.stderr
        );
    }
    assert_eq!(
        listing(&sb.store()),
        before,
        "the refused salvages changed the store"
    );
}

/// A store of about 5 MB of journal: several of salvage's 1 MiB writes, so a salvage takes a
/// while.
fn big_store() -> Sandbox {
    let sb = Sandbox::new();
    sb.write(
        "big.ron",
        r#"Workflow(name: "big", initial: "a", vars: {"v": (default: "x")},
            states: {"a": (), "z": (terminal: Success)}, transitions: [(from: "a", to: "z")])"#,
    );
    let value = format!("v={}", "x".repeat(120_000));
    for i in 0..20 {
        sb.start("tester", "big.ron", &format!("e{i}"), &["--var", &value]);
    }
    sb
}

/// Two salvages into one directory at once: one writes the store, the other is refused, and
/// the refused one leaves the winner's store whole and usable (it must not mark it as a
/// salvage still under way).
#[test]
fn two_salvages_into_one_directory_at_once_leave_one_whole_store() {
    let sb = big_store();
    let one = sb.spawn_as("tester", "one", &["store", "salvage", "--to", "saved"]);
    let two = sb.spawn_as("tester", "two", &["store", "salvage", "--to", "saved"]);
    let mut codes = [
        one.wait(Duration::from_secs(120)).code,
        two.wait(Duration::from_secs(120)).code,
    ];
    codes.sort_unstable();
    assert_eq!(codes, [0, 1]);
    let records = salvage_records(&sb);
    assert_eq!(records.as_array().map(Vec::len), Some(1), "{records}");
}

/// A store created in a directory that already exists, empty (made by a provisioning script,
/// a container volume, or by another user beforehand), is as private as one in a directory
/// `start` creates: the directory's own permissions (here 0777) used to pass to everything
/// inside, leaving the journal readable and replaceable by every local user.
#[test]
fn a_store_created_in_an_existing_open_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    fs::create_dir(sb.store()).expect("mkdir");
    fs::set_permissions(sb.store(), fs::Permissions::from_mode(0o777)).expect("chmod");
    sb.start("alice", "wf.ron", "dev", &[]);
    assert_eq!(open_to_others(&sb.store()), Vec::<String>::new());
}

/// The holder named in "waiting for the store" is another process's command line, which any
/// local user with read access to the store can choose (a reader holds the lock too): it
/// prints escaped, so it cannot clear or recolour the operator's terminal.
#[test]
fn the_store_holder_named_while_waiting_prints_escaped() {
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    sb.start("alice", "wf.ron", "dev", &[]);
    let mut holder = hold_store(&sb, &["sh", "-c", "sleep 3", "\x1b[2J\x1b[31mEVIL"]);
    let out = sb.wg(&["runs"]);
    let _ = holder.wait();
    out.code(0);
    out.stderr_has("waiting for the store");
    assert!(out.stderr.contains(r"\u{1b}[2J"), "{}", out.stderr);
    assert!(!out.stderr.contains('\x1b'), "{}", out.stderr);
}

/// A neighbour holding the store's lock: `flock(1)` (plainly not waygate) running `command`
/// in its own process group, returned once it holds the lock.
fn hold_store(sb: &Sandbox, command: &[&str]) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let lock = sb.store().join("LOCK");
    let holder = std::process::Command::new("flock")
        .arg("-x")
        .arg(&lock)
        .args(command)
        .process_group(0)
        .spawn()
        .expect("flock(1) runs");
    let held = || {
        std::process::Command::new("flock")
            .arg("-n")
            .arg(&lock)
            .arg("true")
            .status()
            .is_ok_and(|s| !s.success())
    };
    crate::helpers::wait_until(
        "flock holds the store",
        std::time::Duration::from_secs(10),
        held,
    );
    holder
}

/// `store copy` from a directory into PostgreSQL and back: every run and event as it was
/// (same history, same head), a copy that goes on working, and a non-empty destination
/// refused.
#[test]
fn store_copy_carries_a_whole_store_between_backends_and_refuses_a_non_empty_one() {
    let Some(pg) = Sandbox::on_postgres() else {
        return;
    };
    let sb = Sandbox::new();
    sb.write("wf.ron", LIFECYCLE);
    let ended = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg(&["abort", &ended, "--reason", "r"]).code(0);
    let active = sb.start("alice", "wf.ron", "dev", &[]);
    sb.wg_as("bob", &["approve", &active, "sign-off"]).code(1);
    let head = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--format", "json", "audit", "verify"]);
        let json = run(sb.path(), &full).code(0).json();
        json["head"].clone()
    };
    let url = pg.store_arg().into_string().expect("utf-8 URL");
    let source = sb.store().display().to_string();
    let copied = run(
        sb.path(),
        &[
            "--format", "json", "store", "copy", "--from", &source, "--to", &url,
        ],
    );
    copied.code(0);
    let json = copied.json();
    assert_eq!(
        (json["runs"].as_u64(), json["ok"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(json["head"], head(&["--store", &source]));
    assert_eq!(head(&["--store", &url]), head(&["--store", &source]));
    for id in [&ended, &active] {
        assert_eq!(pg.history(id), sb.history(id), "run {id}");
    }
    // And back into a new directory: the same head again.
    let back = sb.path().join("back").display().to_string();
    run(sb.path(), &["store", "copy", "--from", &url, "--to", &back]).code(0);
    assert_eq!(head(&["--store", &back]), head(&["--store", &source]));
    // Neither copy takes a second one.
    for to in [&url, &back] {
        let again = run(sb.path(), &["store", "copy", "--from", &source, "--to", to]);
        again.code(1).stderr_has("not empty");
    }
    // The copy goes on: its active run still holds its environment and can be ended there.
    pg.write("wf.ron", LIFECYCLE);
    pg.wg(&["start", "wf.ron", "--env", "dev"]).code(5);
    pg.wg(&["abort", &active, "--reason", "moved"]).code(0);
    pg.verify();
    assert_eq!(
        sb.status(&active)["status"],
        "active",
        "the source is not changed"
    );
}

#[test]
fn an_audit_report_of_a_damaged_store_is_written_says_so_and_exits_1() {
    let sb = Sandbox::new();
    let (a, b) = two_runs_one_damaged(&sb);

    let out = sb.wg(&["audit", "report", "--out", "r.html"]);
    out.code(1).stdout_has("BAD: event 3");
    assert!(
        out.stdout
            .contains(&format!("BAD: the events of run {a} cannot be read")),
        "{}",
        out.stdout
    );
    // Written all the same: what is readable, and what is not, said at the top.
    let html = fs::read_to_string(sb.path().join("r.html")).expect("written");
    assert!(html.contains("✘ BAD:</strong> event 3"), "verdict");
    assert!(html.contains("✘ The events of this run cannot be read:"));
    assert!(
        html.contains(&b) && html.contains("not today"),
        "the other run, whole"
    );

    // Salvaged, the new store's report says what was lost, whatever runs it is about.
    sb.wg(&["store", "salvage", "--to", "salvaged"]).code(0);
    let salvaged = sb.path().join("salvaged");
    let salvaged = salvaged.to_str().expect("utf-8 path");
    run_in(
        &sb,
        salvaged,
        &["audit", "report", "--run", &b, "--out", "after.html"],
    )
    .code(0);
    let html = fs::read_to_string(sb.path().join("after.html")).expect("written");
    assert!(html.contains("Events of the store"), "the salvage is shown");
    assert!(html.contains("StoreSalvaged") && html.contains("lost: event 3"));
}

/// A wrong password, for a role that must give one (scram-sha-256: `.ci/postgres` makes
/// `waygate_scram`): a clear error, exit 1, the password not echoed, nothing created.
#[test]
fn a_wrong_postgres_password_is_a_clear_error_and_creates_nothing() {
    let Some(pg) = Sandbox::on_postgres() else {
        return;
    };
    pg.write("wf.ron", LIFECYCLE);
    let url = pg.store_arg().into_string().expect("utf-8 URL");
    let as_role =
        |password: &str| url.replacen("://postgres@", &format!("://waygate_scram:{password}@"), 1);
    // The role is there and its own password lets it in: what fails below is the password.
    let right = std::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-d",
            &as_role("waygate-scram-test"),
            "-c",
            "SELECT 1",
        ])
        .output()
        .expect("psql runs");
    if !right.status.success() {
        assert!(
            std::env::var_os("WAYGATE_REQUIRE_POSTGRES").is_none(),
            "no role waygate_scram on the test server (`.ci/postgres` makes it): {}",
            String::from_utf8_lossy(&right.stderr)
        );
        eprintln!("skipped: the test server has no role waygate_scram (`.ci/postgres` makes it)");
        return;
    }
    let wrong = as_role("not-the-password");
    for args in [
        &["start", "wf.ron", "--env", "dev"][..],
        &["runs"],
        &["audit", "verify"],
    ] {
        let mut full = vec!["--store", wrong.as_str()];
        full.extend_from_slice(args);
        let out = run(pg.path(), &full);
        out.code(1);
        assert!(
            out.stderr.contains("password authentication failed"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("not-the-password"),
            "{args:?} echoed the password: {}",
            out.stderr
        );
    }
    // Nothing was created: the store's schema has no tables yet.
    let tables = std::process::Command::new("psql")
        .args(["-X", "-At", "-d", &url, "-c"])
        .arg("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
        .output()
        .expect("psql runs");
    assert_eq!(String::from_utf8_lossy(&tables.stdout).trim(), "0");
}
