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
            .contains("lock       `chatbot-production`, shared (held by this run)"),
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
