//! `approvers` hold actor names: a name outside the actor-name set could never approve.

use waygate_core::diagnostic::Code;
use waygate_core::validate::validate;

#[test]
fn an_approver_that_is_not_an_actor_name_is_an_error_at_its_position() {
    let text = r#"Workflow(
    name: "w", initial: "a",
    states: { "a": (), "done": (terminal: Success) },
    transitions: [(from: "a", to: "done", guards: [
        (name: "ok", check: Approval(prompt: "p", approvers: ["ana@example.com", "Jane Doe", "bob"])),
    ])],
)"#;
    let v = validate("w.ron", text);
    let errors: Vec<_> = v.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].code, Code::BadValue);
    assert!(
        errors[0]
            .message
            .starts_with("approver `Jane Doe` can never approve: an actor name has"),
        "{}",
        errors[0].message
    );
    assert_eq!(&text[errors[0].span.clone()], "\"Jane Doe\"");
}
