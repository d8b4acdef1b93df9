//! The `Store` conformance suite and the PostgreSQL store's own promises, against a real
//! server (`WAYGATE_TEST_POSTGRES`; skipped with a reason without one, mandatory in CI).
#![allow(clippy::unwrap_used)]

use waygate_core::run::RunId;
use waygate_core::store::conformance::{self, create, moved};
use waygate_core::store::{RunChange, Store, StoreError};
use waygate_postgres::testing::TestSchema;
use waygate_postgres::{PgStore, Tables};

/// Asserts that `text` (a refusal) says every one of `parts`.
fn says_all<S: AsRef<str>>(text: &str, parts: &[S]) {
    for part in parts {
        let part = part.as_ref();
        assert!(text.contains(part), "{part:?} in {text}");
    }
}

fn open(schema: &TestSchema) -> PgStore {
    PgStore::open(schema.url(), true).expect("open").0
}

#[test]
fn the_conformance_suite_passes() {
    if TestSchema::new().is_none() {
        return;
    }
    conformance::run_all("postgres", |check| {
        let schema = TestSchema::new().unwrap();
        check(&open(&schema));
    });
}

#[test]
fn racers_on_separate_connections_have_one_winner() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    open(&schema);
    conformance::racers_on_separate_handles(&|| Box::new(open(&schema)) as Box<dyn Store>);
}

#[test]
fn verify_names_an_event_altered_with_psql() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = open(&schema);
    conformance::verify_names_an_altered_event(&store, &|seq| {
        let out = schema.psql(&format!(
            "ALTER TABLE waygate_events DISABLE TRIGGER USER; \
             UPDATE waygate_events SET actor = 'mallory' WHERE seq = {seq}; \
             ALTER TABLE waygate_events ENABLE TRIGGER USER;"
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

#[test]
fn events_refuse_update_and_delete_and_verify_catches_rows_deleted_or_inserted() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = open(&schema);
    let run = create(&store, "r1", "prod");
    for to in ["a", "b"] {
        let version = store.load_run(&run.id).unwrap().version;
        store
            .commit(
                &run.id,
                version,
                RunChange::to_state(to),
                vec![moved("x", to)],
            )
            .unwrap();
    }
    for sql in [
        "UPDATE waygate_events SET actor = 'mallory' WHERE seq = 2",
        "DELETE FROM waygate_events WHERE seq = 3",
        "TRUNCATE waygate_events",
    ] {
        let out = schema.psql(sql);
        assert!(!out.status.success(), "{sql} was taken");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("append-only"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(store.verify().unwrap().is_ok());
    // The last event deleted with the trigger off: its run's row still records it.
    let out = schema.psql(
        "ALTER TABLE waygate_events DISABLE TRIGGER USER; \
         DELETE FROM waygate_events WHERE seq = 3; \
         ALTER TABLE waygate_events ENABLE TRIGGER USER;",
    );
    assert!(out.status.success());
    let report = store.verify().unwrap();
    let bad = report.first_bad.unwrap();
    assert_eq!(bad.seq, 3, "{}", bad.problem);
    assert!(bad.problem.contains("missing"), "{}", bad.problem);
    assert_eq!(report.head.unwrap().seq, 2);
    // A row inserted past the head.
    let out = schema.psql(
        "INSERT INTO waygate_events SELECT 3, run_id, at, at_us, actor, kind_name, kind, hash, \
         hash FROM waygate_events WHERE seq = 2",
    );
    assert!(out.status.success());
    let bad = store.verify().unwrap().first_bad.unwrap();
    assert_eq!(bad.seq, 3, "{}", bad.problem);
}

/// Each run's row records the seq of its last event, appends included, whether the write
/// took one round trip (the writer's end still its own) or three (another handle wrote
/// meanwhile): an appended event deleted at the end is named by `verify`, and one added past
/// the end too.
#[test]
fn each_run_row_records_its_last_event_and_verify_holds_the_chain_to_it() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let last_seq = |id: &str| {
        let out = schema.psql(&format!(
            "SELECT last_seq FROM waygate_runs WHERE id = '{id}'"
        ));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(2)
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let store = open(&schema);
    let a = create(&store, "a", "prod");
    let b = create(&store, "b", "qa");
    assert_eq!((last_seq("a"), last_seq("b")), (1, 2));
    // One round trip: this handle wrote last.
    store.append(&a.id, vec![conformance::approved()]).unwrap();
    assert_eq!(last_seq("a"), 3);
    // Another handle: three round trips; then this one's guess fails and it reads.
    let other = open(&schema);
    other.append(&b.id, vec![conformance::approved()]).unwrap();
    assert_eq!(last_seq("b"), 4);
    let appended = store.append(&a.id, vec![conformance::approved()]).unwrap();
    assert_eq!(appended[0].seq, 5);
    assert_eq!(last_seq("a"), 5);
    store
        .commit(
            &b.id,
            1,
            RunChange::to_state("x"),
            vec![moved("build", "x")],
        )
        .unwrap();
    assert_eq!((last_seq("a"), last_seq("b")), (5, 6));
    assert!(store.verify().unwrap().is_ok());

    // The appended event at the end of `a`, deleted: the chain ends at 6 but a's row says 5;
    // delete 6 and 5 both and the rows still say 6.
    let out = schema.psql(
        "ALTER TABLE waygate_events DISABLE TRIGGER USER; \
         DELETE FROM waygate_events WHERE seq >= 5; \
         ALTER TABLE waygate_events ENABLE TRIGGER USER;",
    );
    assert!(out.status.success(), "{out:?}");
    let report = store.verify().unwrap();
    let bad = report.first_bad.unwrap();
    assert_eq!(bad.seq, 5, "{}", bad.problem);
    assert!(
        bad.problem.contains(
            "missing: the chain ends after event 4, but the runs' rows record events up to 6"
        ),
        "{}",
        bad.problem
    );
    assert_eq!(report.head.unwrap().seq, 4);
}

/// Every event's run has a row: a run's row deleted behind the store's back is named at the
/// run's first event, even when another run holds the chain's end.
#[test]
fn verify_names_the_events_of_a_run_whose_row_was_deleted() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = open(&schema);
    let a = create(&store, "a", "prod");
    create(&store, "b", "qa");
    store
        .commit(
            &a.id,
            1,
            RunChange::to_state("x"),
            vec![moved("build", "x")],
        )
        .unwrap();
    store
        .append(&RunId::from("b"), vec![conformance::approved()])
        .unwrap();
    assert!(store.verify().unwrap().is_ok());
    let out = schema.psql("DELETE FROM waygate_runs WHERE id = 'a'");
    assert!(out.status.success(), "{out:?}");
    let report = store.verify().unwrap();
    let bad = report.first_bad.unwrap();
    assert_eq!(bad.seq, 1, "{}", bad.problem);
    assert!(
        bad.problem.contains(
            "its run a has no row in waygate_runs: the run's row was deleted behind the store's back"
        ),
        "{}",
        bad.problem
    );
}

/// `verify` hashes the stored columns as they are and decodes only a row where that fails:
/// the decoded verdict is the same as before that shortcut (a kind whose bytes changed but
/// not its meaning still verifies; one whose meaning changed does not), and the index columns
/// are still held to the event.
#[test]
fn verify_judges_a_row_whose_stored_bytes_differ_by_the_decoded_event() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = open(&schema);
    let run = create(&store, "r1", "prod");
    store
        .commit(&run.id, 1, RunChange::to_state("a"), vec![moved("x", "a")])
        .unwrap();
    let tamper = |set: &str| {
        let out = schema.psql(&format!(
            "ALTER TABLE waygate_events DISABLE TRIGGER USER; \
             UPDATE waygate_events SET {set} WHERE seq = 2; \
             ALTER TABLE waygate_events ENABLE TRIGGER USER;"
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Same meaning, other bytes: decoded, encoded again, and right.
    tamper("kind = replace(kind, '\"kind\":', '\"kind\": ')");
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.first_bad);
    assert_eq!(report.events, 2);
    // Another meaning: named.
    tamper("kind = replace(kind, '\"to\":\"a\"', '\"to\":\"b\"')");
    let bad = store.verify().unwrap().first_bad.unwrap();
    assert_eq!(bad.seq, 2);
    assert!(bad.problem.contains("hash mismatch"), "{}", bad.problem);
    tamper("kind = replace(kind, '\"to\":\"b\"', '\"to\":\"a\"')");
    assert!(store.verify().unwrap().is_ok());
    // The index columns must agree with the event whose hash is right.
    for set in ["kind_name = 'Approved'", "at_us = at_us + 1"] {
        let undo = if set.starts_with("kind_name") {
            "kind_name = 'Transitioned'"
        } else {
            "at_us = at_us - 1"
        };
        tamper(set);
        let bad = store.verify().unwrap().first_bad.unwrap();
        assert_eq!(bad.seq, 2);
        assert!(
            bad.problem.contains("kind_name or at_us"),
            "{set}: {}",
            bad.problem
        );
        tamper(undo);
    }
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn tables_are_created_on_first_use_and_another_schema_version_is_refused() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    match PgStore::open(schema.url(), false) {
        Err(StoreError::NoStore { .. }) => {}
        other => panic!("expected NoStore, got {other:?}"),
    }
    assert_eq!(
        PgStore::open(schema.url(), true).unwrap().1,
        Tables::Created
    );
    assert_eq!(
        PgStore::open(schema.url(), true).unwrap().1,
        Tables::Existing
    );
    assert!(schema
        .psql("UPDATE waygate_schema SET version = 7")
        .status
        .success());
    match PgStore::open(schema.url(), false) {
        Err(e @ StoreError::UnsupportedVersion { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("waygate schema 7") && text.contains("waygate schema 4"),
                "{text}"
            );
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
}

/// Turns a store's tables back into what schema 3 made: the head row (the last event's seq,
/// hash and time), no `last_seq` in the runs' rows (the runs and the chain kept).
const BACK_TO_SCHEMA_3: &str = "\
    CREATE TABLE waygate_head (one boolean PRIMARY KEY DEFAULT true CHECK (one), \
        seq bigint NOT NULL, hash text NOT NULL, at text); \
    INSERT INTO waygate_head SELECT true, seq, hash, at FROM waygate_events \
        ORDER BY seq DESC LIMIT 1; \
    ALTER TABLE waygate_runs DROP COLUMN last_seq; \
    DELETE FROM waygate_schema; INSERT INTO waygate_schema (version) VALUES (3);";

/// And schema 2: each run's definition in its row, no `waygate_definitions`, a b-tree time
/// index.
const BACK_TO_SCHEMA_2: &str = "\
    ALTER TABLE waygate_runs ADD COLUMN definition text; \
    UPDATE waygate_runs r SET definition = d.definition \
        FROM waygate_definitions d WHERE d.hash = r.definition_hash; \
    ALTER TABLE waygate_runs ALTER COLUMN definition SET NOT NULL; \
    ALTER TABLE waygate_runs DROP COLUMN definition_hash; \
    DROP TABLE waygate_definitions; \
    DROP INDEX waygate_events_at; \
    CREATE INDEX waygate_events_at ON waygate_events (at_us); \
    DELETE FROM waygate_schema; INSERT INTO waygate_schema (version) VALUES (2);";

/// And schema 1: schema 2 without the leases.
const BACK_TO_SCHEMA_1: &str = "DROP TABLE waygate_leases; DELETE FROM waygate_schema; \
     INSERT INTO waygate_schema (version) VALUES (1);";

/// The statements that turn a store's tables back into what schema `version` made.
fn back_to(version: i32) -> String {
    let steps = [
        (3, BACK_TO_SCHEMA_3),
        (2, BACK_TO_SCHEMA_2),
        (1, BACK_TO_SCHEMA_1),
    ];
    steps
        .iter()
        .filter(|(v, _)| *v >= version)
        .map(|(_, sql)| *sql)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Three runs, two of them of one definition, one moved on; what they are after.
fn runs_to_migrate(store: &PgStore) -> Vec<waygate_core::run::Run> {
    let a = create(store, "a", "prod");
    let b = create(store, "b", "qa");
    let mut other = conformance::run("c", "other", "prod");
    other.definition.push_str("\n// another text");
    other.definition_hash = waygate_core::run::sha256_hex(other.definition.as_bytes());
    let started = conformance::started(&other);
    let c = store.create_run(other, vec![started]).unwrap().0;
    let (a, _) = store
        .commit(
            &a.id,
            1,
            RunChange::to_state("next"),
            vec![moved("build", "next")],
        )
        .unwrap();
    vec![a, b, c]
}

/// A store with [`runs_to_migrate`], its tables turned back into what schema `from` made,
/// opens migrated from `from`, with its runs as they were, its chain intact, each definition
/// once, and takes commits and new runs.
fn migrates_from(from: i32) {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let runs = runs_to_migrate(&open(&schema));
    let out = schema.psql(&back_to(from));
    assert!(out.status.success(), "{out:?}");
    let (store, tables) = PgStore::open(schema.url(), false).unwrap();
    assert_eq!(tables, Tables::Migrated(from));
    for run in &runs {
        assert_eq!(&store.load_run(&run.id).unwrap(), run);
    }
    assert!(store.verify().unwrap().first_bad.is_none());
    let out = schema.psql(
        "SELECT max(version), to_regclass('waygate_leases') IS NOT NULL, \
                (SELECT count(*) FROM waygate_definitions), \
                (SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam \
                 WHERE c.oid = 'waygate_events_at'::regclass) \
         FROM waygate_schema",
    );
    let text = String::from_utf8_lossy(&out.stdout).replace(' ', "");
    assert!(text.contains("4|t|2|brin"), "{text}");
    // No head row; each run's row records its last event, the pair index is there.
    let out = schema.psql(
        "SELECT to_regclass('waygate_head') IS NULL, \
                to_regclass('waygate_runs_one_active_pair') IS NOT NULL, \
                bool_and(r.last_seq = (SELECT max(seq) FROM waygate_events e \
                                       WHERE e.run_id = r.id)) \
         FROM waygate_runs r",
    );
    let text = String::from_utf8_lossy(&out.stdout).replace(' ', "");
    assert!(text.contains("t|t|t"), "{text}");
    store
        .commit(
            &runs[1].id,
            1,
            RunChange::to_state("next"),
            vec![moved("build", "next")],
        )
        .unwrap();
    let d = create(&store, "d", "staging");
    assert_eq!(
        store.load_run(&d.id).unwrap().definition,
        runs[1].definition
    );
    assert_eq!(store.list_runs(&Default::default()).unwrap().len(), 4);
    assert!(store.verify().unwrap().is_ok());
    drop(store);
    assert_eq!(
        PgStore::open(schema.url(), false).unwrap().1,
        Tables::Existing
    );
}

#[test]
fn a_schema_2_database_is_migrated_on_first_use_and_keeps_its_runs() {
    migrates_from(2);
}

#[test]
fn a_schema_3_database_is_migrated_on_first_use_and_keeps_its_runs() {
    migrates_from(3);
}

/// Schema 3's head row is the only record of where the chain ended: a migration finding it
/// elsewhere than the last event (an event deleted at the end behind the store's back) is
/// refused saying so, and changes nothing.
#[test]
fn a_schema_3_head_row_that_is_not_the_last_event_refuses_the_migration() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    runs_to_migrate(&open(&schema));
    let out = schema.psql(&format!(
        "{} ALTER TABLE waygate_events DISABLE TRIGGER USER; \
         DELETE FROM waygate_events WHERE seq = 4; \
         ALTER TABLE waygate_events ENABLE TRIGGER USER;",
        back_to(3)
    ));
    assert!(out.status.success(), "{out:?}");
    let refused = PgStore::open(schema.url(), false).unwrap_err().to_string();
    says_all(
        &refused,
        &[
            "at schema 3 and this waygate needs schema 4: ",
            "its head row records the chain up to event 4",
            "but the last event is 3",
            "`waygate audit verify`",
            "nothing was written",
        ],
    );
    let out = schema
        .psql("SELECT max(version), to_regclass('waygate_head') IS NOT NULL FROM waygate_schema");
    let text = String::from_utf8_lossy(&out.stdout).replace(' ', "");
    assert!(text.contains("3|t"), "{text}");
}

#[test]
fn a_schema_1_database_is_migrated_on_first_use_and_keeps_its_runs() {
    migrates_from(1);
}

#[test]
fn an_unreachable_server_and_a_missing_database_say_so_without_the_password() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let unreachable = format!("postgres://ana:s3cret@127.0.0.1:{port}/w");
    let missing = schema.url().replace("/waygate_test", "/no_such_db");
    for (url, words) in [
        (unreachable.as_str(), "does not answer"),
        (missing.as_str(), "no_such_db"),
    ] {
        match PgStore::open(url, true) {
            Err(e @ StoreError::Unavailable { .. }) => {
                let text = e.to_string();
                assert!(text.contains(words), "{text}");
                assert!(!text.contains("s3cret"), "{text}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}

#[test]
fn an_sslmode_asking_for_tls_is_refused_saying_why_and_disable_or_prefer_connect() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // Refused before any connection is tried: no server needs to be there.
    for mode in ["require", "verify-ca", "verify-full"] {
        let url = format!("postgres://ana:s3cret@127.0.0.1:1/w?sslmode={mode}");
        match PgStore::open(&url, true) {
            Err(e @ StoreError::Unavailable { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains(&format!("`sslmode={mode}` asks for TLS")),
                    "{text}"
                );
                assert!(text.contains("sslmode=disable"), "{text}");
                assert!(!text.contains("s3cret"), "{text}");
            }
            other => panic!("{mode}: expected Unavailable, got {other:?}"),
        }
    }
    let with = |mode: &str| format!("{}&sslmode={mode}", schema.url());
    for mode in ["disable", "prefer"] {
        let (store, _) = PgStore::open(&with(mode), true).unwrap();
        create(&store, &format!("r-{mode}"), mode);
    }
}

#[test]
fn quotes_and_backslashes_in_ids_and_environments_are_only_text() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = open(&schema);
    for (id, env) in [
        ("r'1\\", "pr'od\\"),
        ("x'); DROP TABLE waygate_events; --", "e"),
    ] {
        let run = create(&store, id, env);
        store
            .commit(
                &run.id,
                1,
                RunChange::to_state("next"),
                vec![moved("build", "next")],
            )
            .unwrap();
        assert_eq!(store.load_run(&run.id).unwrap().state, "next");
    }
    let again = conformance::run("r2", "web", "pr'od\\");
    let first = conformance::started(&again);
    assert!(matches!(
        store.create_run(again, vec![first]),
        Err(StoreError::EnvironmentBusy { .. })
    ));
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn sessions_the_server_ended_between_commits_are_replaced_and_the_next_commit_goes_through() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // Named apart, so only this test's sessions are ended (tests run in parallel).
    let name = format!("waygate_{}", schema.name());
    let url = format!("{}&application_name={name}", schema.url());
    let store = PgStore::open(&url, true).unwrap().0;
    let run = create(&store, "r1", "prod");
    // A reading connection waits idle in the pool.
    assert_eq!(store.load_run(&run.id).unwrap().version, 1);
    // The server ends this store's sessions (the writer's and the idle readers').
    let out = schema.psql(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = '{name}'"
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `pg_terminate_backend` only signals: wait until the sessions are gone, or a commit sent
    // at once on a busy machine can still reach a session that has not ended yet.
    let gone = schema.sessions_ended(&name, std::time::Duration::from_secs(10));
    assert!(gone, "the store's sessions did not end within 10 s");
    // The writer finds its session ended before sending anything, and opens a new one in its
    // place; the read finds its pooled connection lost and reads again on a new one.
    store
        .commit(
            &run.id,
            1,
            RunChange::to_state("a"),
            vec![moved("build", "a")],
        )
        .unwrap();
    assert_eq!(store.load_run(&run.id).unwrap().version, 2);
    assert_eq!(store.run_events(&run.id).unwrap().len(), 2);
    assert!(store.verify().unwrap().is_ok());
}

/// A TCP proxy to the test server. Once `cut` is set, the next bytes a client sends are passed
/// on, the server's whole answer (up to its `ReadyForQuery`) is read, and both sides are closed
/// without the answer reaching the client: a connection lost after the server committed.
struct CutProxy {
    addr: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CutProxy {
    fn to(server: String) -> CutProxy {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let cut_all = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let Ok(mut server) = TcpStream::connect(&server) else {
                    return;
                };
                let armed = Arc::new(AtomicBool::new(false));
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (cut, armed2) = (cut_all.clone(), armed.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n @ 1..) = c2.read(&mut buf) {
                        if cut.swap(false, Ordering::SeqCst) {
                            armed2.store(true, Ordering::SeqCst);
                        }
                        if s2.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s2.shutdown(Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    let mut held = Vec::new();
                    while let Ok(n @ 1..) = server.read(&mut buf) {
                        if armed.load(Ordering::SeqCst) {
                            held.extend_from_slice(&buf[..n]);
                            // ReadyForQuery: 'Z', length 5, a status byte.
                            if held.len() >= 6
                                && held[held.len() - 6..held.len() - 1] == *b"Z\0\0\0\x05"
                            {
                                break;
                            }
                        } else if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                });
            }
        });
        CutProxy { addr, cut }
    }
}

#[test]
fn a_connection_lost_after_the_server_committed_says_maybe_and_the_next_read_tells() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let url = schema.url().to_owned();
    let Some(server) = url
        .split_once('@')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(addr, _)| addr.to_owned())
    else {
        panic!("no host:port in {url}");
    };
    let proxy = CutProxy::to(server.clone());
    let store = PgStore::open(&url.replacen(&server, &proxy.addr, 1), true)
        .unwrap()
        .0;
    let run = create(&store, "r1", "prod");
    store
        .commit(
            &run.id,
            1,
            RunChange::to_state("a"),
            vec![moved("build", "a")],
        )
        .unwrap();
    proxy.cut.store(true, std::sync::atomic::Ordering::SeqCst);
    let lost = store.commit(&run.id, 2, RunChange::to_state("b"), vec![moved("a", "b")]);
    match lost {
        Err(e @ StoreError::Backend { .. }) => {
            let text = e.to_string();
            assert!(text.contains("may or may not have been recorded"), "{text}");
        }
        other => panic!("expected a lost connection, got {other:?}"),
    }
    // The next reads tell: the server committed before the connection was cut.
    let fresh = open(&schema);
    let now = fresh.load_run(&run.id).unwrap();
    assert_eq!((now.version, now.state.as_str()), (3, "b"));
    assert!(fresh.verify().unwrap().is_ok());
    // And the store that lost its connection goes on from there.
    store
        .commit(&run.id, 3, RunChange::to_state("c"), vec![moved("b", "c")])
        .unwrap();
    assert!(fresh.verify().unwrap().is_ok());
}

/// The database itself holds one active run per (workflow, env), whatever lock key the row
/// names (core's `run::LockKeys`): a row written past waygate's checks is refused by the
/// index. A database whose tables lack the index gets it when it is migrated.
#[test]
fn the_database_refuses_a_second_active_run_of_a_pair_under_another_lock() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = with_a_shared_lock_run(&schema);
    let out = schema.psql(SECOND_OF_THE_PAIR);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("waygate_runs_one_active_pair"), "{stderr}");
    drop(store);

    // A schema-3 database made before the pair index (by main between two changes).
    let out = schema.psql(&format!(
        "DROP INDEX waygate_runs_one_active_pair; {}",
        back_to(3)
    ));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        PgStore::open(schema.url(), false).unwrap().1,
        Tables::Migrated(3)
    );
    assert!(!schema.psql(SECOND_OF_THE_PAIR).status.success());
}

/// A store at `schema` holding `r1`, active, of `web` in `prod` under the shared lock `shared`.
fn with_a_shared_lock_run(schema: &TestSchema) -> PgStore {
    let store = open(schema);
    let mut run = conformance::run("r1", "web", "prod");
    run.lock = Some("shared".into());
    let first = conformance::started(&run);
    store.create_run(run, vec![first]).unwrap();
    store
}

/// A row past waygate's checks: `r2`, a second active run of `r1`'s pair under no lock.
const SECOND_OF_THE_PAIR: &str = "INSERT INTO waygate_runs \
     (id, workflow, env, lock_key, definition_hash, last_seq, status, active, version, run) \
     SELECT 'r2', workflow, env, 'web/prod', definition_hash, last_seq, status, true, 1, run \
     FROM waygate_runs WHERE id = 'r1'";

/// A database where a waygate before schema 3 let two runs of one (workflow, env) be active
/// at once (one of them under a shared lock) cannot get the pair index: the migration is
/// refused naming the runs and what to do, writes nothing, and goes through once all but one
/// of them have ended.
#[test]
fn a_migration_meeting_two_active_runs_of_one_pair_names_them_and_what_to_do() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    drop(with_a_shared_lock_run(&schema));
    let out = schema.psql(&format!(
        "DROP INDEX waygate_runs_one_active_pair; {SECOND_OF_THE_PAIR}; {}",
        back_to(2)
    ));
    assert!(out.status.success(), "{out:?}");

    let refused = PgStore::open(schema.url(), false).unwrap_err().to_string();
    says_all(
        &refused,
        &[
            "at schema 2 and this waygate needs schema 4: ",
            "runs r1 and r2 are both active in environment `prod` of workflow `web`",
            "`waygate abort RUN --reason ..`",
            "nothing was written",
        ],
    );
    let version = schema.psql("SELECT max(version) FROM waygate_schema");
    assert!(String::from_utf8_lossy(&version.stdout).contains(" 2\n"));

    let out = schema.psql("UPDATE waygate_runs SET active = false WHERE id = 'r2'");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        PgStore::open(schema.url(), false).unwrap().1,
        Tables::Migrated(2)
    );
}

/// A role that may use the tables but not change them (the grants of docs/storage.md) meets
/// a database of an older schema: the refusal says who may migrate it and what to run.
#[test]
fn a_role_that_may_not_migrate_is_told_who_may_and_what_to_run() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let (role, as_role) = app_role_at(&schema, 2, "waygate_events");
    let refused = PgStore::open(&as_role, false)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    let owner = schema.psql("SELECT current_user");
    let owner = String::from_utf8_lossy(&owner.stdout)
        .lines()
        .nth(2)
        .unwrap()
        .trim()
        .to_owned();
    says_all(
        &refused,
        &[
            "at schema 2 and this waygate needs schema 4: ".to_owned(),
            format!("{role} may not"),
            format!("as the tables' owner `{owner}`"),
            "waygate_definitions".to_owned(),
            "nothing was written".to_owned(),
        ],
    );
    assert_eq!(
        PgStore::open(schema.url(), false).unwrap().1,
        Tables::Migrated(2)
    );
    // Migrated by the owner, the role still lacks the new table's grant, and is told where
    // the grants are.
    let (store, _) = PgStore::open(&as_role, false).unwrap();
    let run = conformance::run("b", "web", "qa");
    let first = conformance::started(&run);
    let refused = store.create_run(run, vec![first]).unwrap_err().to_string();
    assert!(
        refused.contains("waygate_definitions")
            && refused.contains(
                "(the grants the role waygate uses needs: docs/storage.md, PostgreSQL, Grants)"
            ),
        "{refused}"
    );
    drop(store);
    drop_role(&schema, &role);
}

/// `store copy` into PostgreSQL of a store holding two active runs of one (workflow, env)
/// (which an embedded store written before layout 4 can) is refused naming them, writing
/// nothing: the pair index could not take them.
#[test]
fn a_copy_holding_two_active_runs_of_one_pair_is_refused_naming_them() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = open(&schema);
    let (mut runs, events) = conformance::two_active_runs_of_one_pair();
    let refused = store.import(&runs, &events).unwrap_err().to_string();
    assert!(
        refused.contains(
            "runs r1 and r2 are both active in environment `prod` of workflow `web`; end all but \
             one of each in the source (`waygate abort RUN --reason ..`), then copy again; \
             nothing was written"
        ),
        "{refused}"
    );
    assert!(store.list_runs(&Default::default()).unwrap().is_empty());
    // With one of them ended, the copy goes in.
    runs[1].status = waygate_core::run::RunStatus::Aborted;
    store.import(&runs, &events).unwrap();
    assert_eq!(store.list_runs(&Default::default()).unwrap().len(), 2);
}

/// A writer that keeps guessing right (one round trip a commit, nobody else's write in
/// between) does not keep another connection's transaction from ever writing: the guess
/// waits for the chain's lock, so the transaction, which read the chain's end under it,
/// is not beaten to the seq it took. Before, each of the other's twenty attempts could lose
/// that seq to the next guess, and its write failed on `waygate_events_pkey`.
#[test]
fn a_writer_guessing_in_a_loop_does_not_starve_another_connection() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let busy = open(&schema);
    let other = open(&schema);
    let busy_runs: Vec<_> = (0..4)
        .map(|i| create(&busy, &format!("a{i}"), &format!("prod{i}")))
        .collect();
    let b = create(&other, "b", "qa");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for a in &busy_runs {
            let (busy, stop) = (&busy, &stop);
            scope.spawn(move || {
                let (mut version, mut at) = (a.version, "build");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let to = if at == "build" { "next" } else { "build" };
                    let change = RunChange::to_state(to);
                    let (run, _) = busy
                        .commit(&a.id, version, change, vec![moved(at, to)])
                        .unwrap();
                    (version, at) = (run.version, to);
                }
            });
        }
        let (mut version, mut at) = (b.version, "build");
        let mut failed = Vec::new();
        for _ in 0..100 {
            let to = if at == "build" { "next" } else { "build" };
            match other.commit(&b.id, version, RunChange::to_state(to), vec![moved(at, to)]) {
                Ok((run, _)) => (version, at) = (run.version, to),
                Err(e) => failed.push(e.to_string()),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(
            failed.is_empty(),
            "{} of 100 failed: {failed:?}",
            failed.len()
        );
    });
    assert!(busy.verify().unwrap().first_bad.is_none());
}

/// A role that may not migrate a schema-3 database (an auditor's read-only role, or the
/// role waygate uses) is told who may, and not to take a grant on `waygate_definitions`,
/// which it has from schema 3 on (an auditor told so would take INSERT); once the owner
/// migrated, the role writes and verifies with the grants it had.
#[test]
fn a_role_that_may_not_migrate_schema_3_is_told_no_new_grant_is_needed() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let (role, as_role) = app_role_at(&schema, 3, "waygate_events, waygate_definitions");
    let refused = PgStore::open(&as_role, false)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    says_all(
        &refused,
        &[
            "at schema 3 and this waygate needs schema 4: ".to_owned(),
            format!("{role} may not"),
            format!("({role} needs no new grant after)"),
            "nothing was written".to_owned(),
        ],
    );
    assert!(!refused.contains("GRANT"), "{refused}");
    assert_eq!(
        PgStore::open(schema.url(), false).unwrap().1,
        Tables::Migrated(3)
    );
    let (store, _) = PgStore::open(&as_role, false).unwrap();
    create(&store, "b", "qa");
    assert!(store.verify().unwrap().first_bad.is_none());
    drop(store);
    drop_role(&schema, &role);
}

/// A store at `schema` with one run, turned back to schema `version`, and a role granted what
/// the role waygate uses had at that schema (SELECT and INSERT on `inserted`): the role and
/// the store's URL as that role.
fn app_role_at(schema: &TestSchema, version: i32, inserted: &str) -> (String, String) {
    create(&open(schema), "a", "prod");
    let out = schema.psql(&back_to(version));
    assert!(out.status.success(), "{out:?}");
    let role = format!("{}_app", schema.name());
    let out = schema.psql(&format!(
        "CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA {name} TO {role}; \
         GRANT SELECT, INSERT ON {inserted} TO {role}; \
         GRANT SELECT, INSERT, UPDATE ON waygate_runs, waygate_head TO {role}; \
         GRANT SELECT ON waygate_schema TO {role};",
        name = schema.name()
    ));
    assert!(out.status.success(), "{out:?}");
    let as_role = url_as(schema, &role);
    (role, as_role)
}

/// The URL of the store at `schema` as `role` (without a password: the test server trusts
/// it).
fn url_as(schema: &TestSchema, role: &str) -> String {
    let (scheme, rest) = schema.url().split_once("://").unwrap();
    let (_, host) = rest.split_once('@').unwrap();
    format!("{scheme}://{role}@{host}")
}

/// Drops `role` and what it owns, as the test database's owner.
fn drop_role(schema: &TestSchema, role: &str) {
    let out = schema.psql(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
    assert!(out.status.success(), "{out:?}");
}

/// The writing connection is opened by the first write: an auditor's role that may only read
/// opens one connection and reads everything, and a write it tries is refused, pointing at the
/// grants, with nothing written.
#[test]
fn a_role_that_may_only_read_opens_one_connection_and_a_write_is_refused_cleanly() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let run = create(&open(&schema), "a", "prod");
    let role = format!("{}_ro", schema.name());
    let out = schema.psql(&format!(
        "CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA {name} TO {role}; \
         GRANT SELECT ON ALL TABLES IN SCHEMA {name} TO {role};",
        name = schema.name()
    ));
    assert!(out.status.success(), "{out:?}");
    let app = format!("ro_{}", schema.name());
    let as_role = format!("{}&application_name={app}", url_as(&schema, &role));
    let sessions = || {
        let out = schema.psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'"
        ));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let (store, _) = PgStore::open(&as_role, false).unwrap();
    assert_eq!(store.list_runs(&Default::default()).unwrap().len(), 1);
    assert_eq!(store.run_events(&run.id).unwrap().len(), 1);
    assert!(store.verify().unwrap().first_bad.is_none());
    assert!(
        sessions().lines().any(|l| l.trim() == "1"),
        "{}",
        sessions()
    );
    let refused = store
        .commit(
            &run.id,
            1,
            RunChange::to_state("a"),
            vec![moved("build", "a")],
        )
        .unwrap_err()
        .to_string();
    says_all(
        &refused,
        &["permission denied", "nothing was written", "Grants"],
    );
    assert_eq!(store.load_run(&run.id).unwrap().version, 1);
    drop(store);
    drop_role(&schema, &role);
}

/// A session whose default is `synchronous_commit = off` (here from the URL's options; a
/// role's or a database's setting does the same) would have its commits acknowledged before
/// they are on disk: the writing connection turns it back on, as a trigger in its session sees.
#[test]
fn the_writing_connection_turns_synchronous_commit_back_on() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let url = format!("{}%20-csynchronous_commit%3Doff", schema.url());
    let store = PgStore::open(&url, true).unwrap().0;
    let out = schema.psql(
        "CREATE TABLE seen (setting text); \
         CREATE FUNCTION see() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN \
             INSERT INTO seen VALUES (current_setting('synchronous_commit')); RETURN NEW; \
         END$$; \
         CREATE TRIGGER see AFTER INSERT ON waygate_events \
             FOR EACH ROW EXECUTE FUNCTION see();",
    );
    assert!(out.status.success(), "{out:?}");
    let run = create(&store, "r1", "prod");
    // The next commit goes in one round trip, outside a transaction.
    store
        .commit(
            &run.id,
            1,
            RunChange::to_state("a"),
            vec![moved("build", "a")],
        )
        .unwrap();
    let out = schema.psql("SELECT setting || ' ' || count(*) FROM seen GROUP BY setting");
    let seen = String::from_utf8_lossy(&out.stdout).into_owned();
    let settings: Vec<&str> = seen
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with(char::is_numeric) && !l.starts_with('('))
        .collect();
    assert_eq!(settings, ["on 2"], "{seen}");
}
