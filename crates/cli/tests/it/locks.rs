//! Locks shared across workflows: `environments: { "production": (lock: "NAME") }`.

use crate::helpers::{on_both_stores, Sandbox};

fn flow(name: &str) -> String {
    format!(
        r#"Workflow(
    name: "{name}", initial: "hold",
    environments: {{ "production": (lock: "chatbot-production"), "staging": () }},
    states: {{ "hold": (), "done": (terminal: Success) }},
    transitions: [(from: "hold", to: "done", guards: [(name: "ok", check: Approval(prompt: "go"))])],
)"#
    )
}

on_both_stores! {
    fn runs_of_two_workflows_naming_one_lock_exclude_each_other_and_say_who_holds_it(sb: Sandbox) {
    sb.write("alpha.ron", &flow("alpha"));
    sb.write("beta.ron", &flow("beta"));
    let holder = sb.start("ana", "alpha.ron", "production", &[]);

    let refused = sb.wg(&["start", "beta.ron", "--env", "production"]);
    refused.code(5).stderr_has(&format!(
        "lock `chatbot-production` (environment `production` of workflow `beta`) is held by run {holder}"
    ));
    // An environment without a shared lock keeps the (workflow, env) lock.
    sb.start("ana", "beta.ron", "staging", &[]);

    let status = sb.status(&holder);
    assert_eq!(status["lock"], "chatbot-production");
    assert_eq!(status["lock_holder"], holder.as_str());
    let human = sb.wg(&["status", &holder]);
    assert!(
        human
            .stdout
            .contains("lock       `chatbot-production`, shared, and environment `production` of `alpha` (held by this run)"),
        "{}",
        human.stdout
    );

    // Ended, the holder lets the other workflow in; its status names the new holder.
    sb.wg(&["abort", &holder, "--reason", "make way"]).code(0);
    let next = sb.start("bob", "beta.ron", "production", &[]);
    let status = sb.status(&holder);
    assert_eq!(status["lock_holder"], next.as_str());
    sb.verify();
    }
}

/// `deploy` with `production` under the shared lock `lock` (`None`: none).
fn deploy(lock: Option<&str>) -> String {
    let production = lock.map_or_else(|| "()".to_owned(), |name| format!("(lock: \"{name}\")"));
    flow("deploy").replace(r#"(lock: "chatbot-production")"#, &production)
}

on_both_stores! {
    /// A run holds its (workflow, env) lock whatever lock its environment names: editing the
    /// file to name a lock, rename it or drop it while a run is going never starts a second
    /// production run.
    fn editing_the_lock_while_a_run_is_going_lets_no_second_run_of_the_pair_in(sb: Sandbox) {
    let busy = |holder: &str| {
        format!("environment `production` of workflow `deploy` is busy with run {holder}")
    };
    sb.write("deploy.ron", &deploy(None));
    let first = sb.start("ana", "deploy.ron", "production", &[]);
    // Someone adds a shared lock to the file meanwhile.
    sb.write("deploy.ron", &deploy(Some("chatbot-production")));
    sb.wg(&["start", "deploy.ron", "--env", "production"])
        .code(5)
        .stderr_has(&busy(&first));
    // The refusal took nothing: another workflow naming the lock gets it.
    sb.write("hotfix.ron", &flow("hotfix"));
    let hotfix = sb.start("bob", "hotfix.ron", "production", &[]);
    sb.wg(&["abort", &first, "--reason", "make way"]).code(0);
    sb.wg(&["abort", &hotfix, "--reason", "make way"]).code(0);

    // The reverse: a run under the lock, and the file then renames the lock, or drops it.
    let second = sb.start("ana", "deploy.ron", "production", &[]);
    let human = sb.wg(&["status", &second]);
    human.code(0).stdout_has(
        "lock       `chatbot-production`, shared, and environment `production` of `deploy` (held by this run)",
    );
    for edited in [deploy(Some("chatbot-prod")), deploy(None)] {
        sb.write("deploy.ron", &edited);
        sb.wg(&["start", "deploy.ron", "--env", "production"])
            .code(5)
            .stderr_has(&busy(&second));
    }
    // Ended, the run frees both of its locks.
    sb.wg(&["abort", &second, "--reason", "done"]).code(0);
    let third = sb.start("bob", "deploy.ron", "production", &[]);
    assert_eq!(sb.status(&second)["lock_holder"], third.as_str());
    // Its holders now: the shared lock's first.
    let shared = sb.start("bob", "hotfix.ron", "production", &[]);
    assert_eq!(sb.status(&second)["lock_holder"], shared.as_str());
    sb.verify();
    }
}

#[test]
fn a_lock_name_outside_the_name_rule_is_refused_at_its_position() {
    let sb = Sandbox::new();
    sb.write(
        "bad.ron",
        &flow("bad").replace("\"chatbot-production\"", "\"Chatbot Production\""),
    );
    let ran = sb.wg(&["--format", "json", "validate", "bad.ron"]);
    ran.code(1);
    let d = &ran.json()[0];
    assert_eq!(d["code"], "invalid-name");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(3), Some(42))
    );
}
