//! `kill -9` of a process committing to PostgreSQL at random moments, fifteen times: nothing
//! acknowledged is lost, nothing half-committed shows, the chain verifies, and the store takes
//! the next commit. The parts are core's (`conformance::crash`), shared with the embedded
//! store's crash test. The seed of the kill moments is printed (`WAYGATE_TEST_SEED` replays).
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use waygate_core::store::conformance::crash::{self, Acked};
use waygate_postgres::testing::TestSchema;
use waygate_postgres::PgStore;

const CHILD_ENV: &str = "WAYGATE_CRASH_CHILD_URL";

/// The child: commits until it is killed, printing what was acknowledged.
#[test]
#[ignore = "run by kill_9_at_random_moments_loses_no_acknowledged_commit as its child"]
fn child_commits_until_killed() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (store, _) = PgStore::open(&url, true).expect("open");
    crash::commit_until_killed(&store, None);
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_commit() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let mut rng = crash::Rng::new();
    let mut acked = Acked::default();
    // The child's sessions go by a name of their own: once it is killed, the server finishes
    // what it last sent (a commit under way still lands or not), and only then is the store
    // as the crash left it.
    let child_name = format!("crash_{}", schema.name());
    let child_url = format!("{}&application_name={child_name}", schema.url());
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < 15 && started.elapsed() < Duration::from_secs(60) {
        rounds += 1;
        let mut child = Command::new(&exe);
        child
            .args([
                "--exact",
                "child_commits_until_killed",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, &child_url);
        crash::kill_at_a_random_moment(child, &mut rng, Duration::from_millis(300), &mut acked);
        assert!(
            schema.sessions_ended(&child_name, Duration::from_secs(10)),
            "the killed child's sessions did not end within 10 s"
        );
        let (store, _) = PgStore::open(schema.url(), false).expect("open after kill");
        crash::nothing_acknowledged_is_lost(&store, &acked);
    }
    eprintln!(
        "{rounds} kills, {} acknowledged events, {} runs",
        acked.max_seq,
        acked.runs.len()
    );
    assert!(rounds >= 15, "only {rounds} kills in the time given");
    assert!(
        acked.max_seq > 20,
        "the child got too little done to test anything ({} events)",
        acked.max_seq
    );
    crash::takes_the_next_commit(&PgStore::open(schema.url(), false).unwrap().0);
}
