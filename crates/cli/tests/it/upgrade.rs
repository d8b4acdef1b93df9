//! Runs started by an earlier waygate, whose pinned definitions break rules added since: they
//! stay readable and can be driven and aborted (docs/storage.md, "Pinned definitions").

use waygate_core::event::NewEvent;
use waygate_core::run::{Run, RunId};
use waygate_core::store::{EmbeddedStore, Store};

use crate::helpers::{kinds, Sandbox};

/// A definition an earlier waygate accepted and today's `validate` refuses: a state name with
/// a trailing space, a key written twice in a command's `env` (the last one won) and a zero
/// timeout.
const OLD: &str = r#"Workflow(
    name: "old",
    initial: "build ",
    environments: { "dev": (), "prod": () },
    states: {
        "build ": (),
        "done": (terminal: Success),
        "spare": (on_enter: [Command(run: ["true"], timeout: "0s")]),
    },
    transitions: [
        (from: "build ", to: "done", guards: [
            (name: "mode", check: Command(run: ["sh", "-c", "test \"$MODE\" = danger"], env: {"MODE": "safe", "MODE": "danger"})),
        ]),
        (from: "spare", to: "done"),
    ],
)
"#;

/// Writes a run of `OLD` in `env` as an earlier waygate did: the run and its `RunStarted`.
fn old_run(sb: &Sandbox, id: &str, env: &str) {
    let store = EmbeddedStore::open(sb.store()).expect("store opens");
    let mut run = Run::new(
        RunId(id.into()),
        "old",
        env,
        "build ",
        "alice",
        "old.ron",
        OLD,
    );
    run.workdir = Some(sb.path().display().to_string());
    let started = NewEvent::new("alice", run.started());
    store.create_run(run, vec![started]).expect("run created");
}

#[test]
fn a_run_pinned_under_older_rules_can_still_be_shown_driven_and_aborted() {
    let sb = Sandbox::new();
    // Today's rules refuse the definition as a file...
    sb.write("old.ron", OLD);
    let refused = sb.wg(&["validate", "old.ron"]);
    refused.code(1);
    for code in ["invalid-name", "duplicate-key", "bad-duration"] {
        assert!(refused.stdout.contains(code), "{code}: {}", refused.stdout);
    }

    // ...but runs that pinned it stay readable.
    old_run(&sb, "old-drive", "dev");
    old_run(&sb, "old-abort", "prod");
    let st = sb.status("old-drive");
    assert_eq!(st["state"], "build ");
    assert_eq!(st["status"], "active");
    assert_eq!(kinds(&sb.history("old-drive")), ["RunStarted"]);

    // Driving keeps the meaning the run started with: the last `MODE` wins, as it did then.
    sb.wg(&["drive", "old-drive"]).code(0);
    let st = sb.status("old-drive");
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["status"], "succeeded", "{st}");

    sb.wg(&["abort", "old-abort", "--reason", "upgraded"])
        .code(0);
    assert_eq!(sb.status("old-abort")["status"], "aborted");
    assert_eq!(
        kinds(&sb.history("old-abort")),
        ["RunStarted", "Aborted", "RunEnded"]
    );
    sb.verify();
}
