//! `Command` guards with real child processes: exits, timeouts with grandchildren, huge
//! output, secrets.

use std::time::{Duration, Instant};

use waygate_core::model::Check;
use waygate_core::outcome::{Outcome, MAX_EVIDENCE};
use waygate_executor::{evaluate_guard, evaluate_transition};

use crate::support::{command, ctx, gone, guard, pid_in, SECRET};

#[tokio::test]
async fn exit_codes_and_missing_programs() {
    let c = ctx();
    let cases = [
        (vec!["true"], Outcome::Pass, "exit status 0"),
        (vec!["sh", "-c", "exit 1"], Outcome::Fail, "exit status 1"),
        (
            // `$$` is a template escape for `$`: the shell's `$$` is written `$$$$`.
            vec!["sh", "-c", "kill -9 $$$$"],
            Outcome::Fail,
            "killed by signal 9",
        ),
    ];
    for (argv, outcome, detail) in cases {
        let r = evaluate_guard(
            &guard("c", Check::Command(command(&argv, Duration::from_secs(10)))),
            &c,
        )
        .await;
        assert_eq!(
            (r.outcome, r.detail.as_str()),
            (outcome, detail),
            "{argv:?}"
        );
    }
    let r = evaluate_guard(
        &guard(
            "c",
            Check::Command(command(&["waygate-missing-tool"], Duration::from_secs(10))),
        ),
        &c,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(
        r.detail.starts_with("cannot run waygate-missing-tool in /"),
        "{}",
        r.detail
    );
}

#[tokio::test]
async fn hanging_command_with_grandchild_is_killed_at_its_timeout() {
    let check = command(
        &["sh", "-c", "sleep 100 & echo $!; sleep 100"],
        Duration::from_millis(500),
    );
    let started = Instant::now();
    let r = evaluate_guard(&guard("hang", Check::Command(check)), &ctx()).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(
        r.detail.starts_with("timed out after 500ms"),
        "{}",
        r.detail
    );
    let evidence = r.evidence.expect("the pid was printed");
    let pid = pid_in(&evidence);
    assert!(gone(pid).await, "grandchild {pid} outlived its guard");
}

#[tokio::test]
async fn a_command_ignoring_sigterm_is_killed_after_the_grace() {
    let check = command(
        &["sh", "-c", "trap '' TERM; sleep 100 & echo $!; wait"],
        Duration::from_millis(300),
    );
    let r = evaluate_guard(&guard("stubborn", Check::Command(check)), &ctx()).await;
    assert_eq!(
        (r.outcome, r.detail.as_str()),
        (Outcome::Fail, "timed out after 300ms (killed)")
    );
    let evidence = r.evidence.expect("pid");
    let pid = pid_in(&evidence);
    assert!(gone(pid).await, "{pid} survived");
}

#[tokio::test]
async fn a_hundred_mebibytes_of_output_is_bounded() {
    let check = command(
        &["head", "-c", "104857600", "/dev/zero"],
        Duration::from_secs(60),
    );
    let r = evaluate_guard(&guard("flood", Check::Command(check)), &ctx()).await;
    assert_eq!(r.outcome, Outcome::Pass, "{}", r.detail);
    let evidence = r.evidence.expect("stdout tail");
    assert!(
        evidence.len() <= MAX_EVIDENCE + 64,
        "{} bytes of evidence",
        evidence.len()
    );
    assert!(
        evidence.contains("of 104857600 bytes"),
        "{}",
        &evidence[..80.min(evidence.len())]
    );
}

#[tokio::test]
async fn an_echoed_secret_is_redacted() {
    let check = command(
        &["sh", "-c", "echo token=${token}; echo ${token} >&2; exit 1"],
        Duration::from_secs(10),
    );
    let r = evaluate_guard(&guard("leaky", Check::Command(check)), &ctx()).await;
    let evidence = r.evidence.expect("output");
    assert!(evidence.contains("token=***"), "{evidence}");
    assert!(!evidence.contains(SECRET) && !r.detail.contains(SECRET));
}

#[tokio::test]
async fn a_secret_cut_by_truncation_does_not_leak_its_tail() {
    // 100 000 bytes, then the secret 500 times, then 7 bytes: the kept 8 KiB tail begins
    // 15 bytes before the end of a secret, and redaction shrinks the rest enough that the
    // cut piece would survive into the evidence if it were not recognised.
    let script = "head -c 100000 /dev/zero | tr '\\0' a; i=0; \
        while [ $$i -lt 500 ]; do printf '%s' \"$$T\"; i=$$((i+1)); done; printf bbbbbbb";
    let mut check = command(&["sh", "-c", script], Duration::from_secs(20));
    check.env.insert("T".into(), crate::support::t("${token}"));
    let r = evaluate_guard(&guard("cut", Check::Command(check)), &ctx()).await;
    assert_eq!(r.outcome, Outcome::Pass, "{}", r.detail);
    let evidence = r.evidence.expect("output");
    assert!(evidence.contains("\n******"), "{evidence}");
    for n in 4..SECRET.len() {
        assert!(
            !evidence.contains(&SECRET[SECRET.len() - n..]),
            "a piece of the secret leaked"
        );
        assert!(
            !evidence.contains(&SECRET[..n]),
            "a piece of the secret leaked"
        );
    }
}

#[tokio::test]
async fn cancelling_a_transition_kills_its_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pid");
    let script = format!("sleep 100 & echo $! > {}; sleep 100", pidfile.display());
    let guards = vec![
        guard(
            "hangs",
            Check::Command(command(&["sh", "-c", &script], Duration::from_secs(100))),
        ),
        guard(
            "quick",
            Check::Command(command(&["true"], Duration::from_secs(100))),
        ),
    ];
    // What Ctrl-C during `drive` amounts to: the evaluation's future is dropped.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(500),
        evaluate_transition(&guards, &ctx()),
    )
    .await;
    assert!(cancelled.is_err());
    let pid = pid_in(&std::fs::read_to_string(&pidfile).expect("the script wrote its pid"));
    assert!(
        gone(pid).await,
        "grandchild {pid} survived the cancelled transition"
    );
}

#[tokio::test]
async fn cwd_is_relative_to_the_workdir_and_env_is_rendered() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    let mut c = ctx();
    c.workdir = dir.path().to_owned();
    let mut check = command(&["sh", "-c", "pwd; echo v=$V"], Duration::from_secs(10));
    check.cwd = Some(crate::support::t("sub"));
    check
        .env
        .insert("V".into(), crate::support::t("${version}-${run.env}"));
    let r = evaluate_guard(&guard("where", Check::Command(check)), &c).await;
    assert_eq!(r.outcome, Outcome::Pass, "{}", r.detail);
    let evidence = r.evidence.expect("stdout");
    assert!(
        evidence.contains("/sub\n") && evidence.contains("v=1.2-staging"),
        "{evidence}"
    );
}
