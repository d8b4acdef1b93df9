//! `cross_origin_redirects`: an opt-in on `Http` checks, refused on webhook actions.

use waygate_core::diagnostic::Code;
use waygate_core::model::{Action, Check};
use waygate_core::validate::validate;

fn workflow(check: &str, action: &str) -> String {
    format!(
        r#"Workflow(
    name: "w", initial: "a",
    states: {{ "a": (on_enter: [{action}]), "done": (terminal: Success) }},
    transitions: [(from: "a", to: "done", guards: [(name: "h", check: {check})])],
)"#
    )
}

#[test]
fn a_check_may_opt_in_to_cross_origin_redirects() {
    let text = workflow(
        r#"Http(url: "http://a.example/", cross_origin_redirects: true)"#,
        r#"Http(url: "http://hooks.example/")"#,
    );
    let v = validate("w.ron", &text);
    assert!(
        !v.diagnostics.iter().any(|d| d.is_error()),
        "{:?}",
        v.diagnostics
    );
    let w = v.workflow.expect("valid");
    let (a, state) = w.state_by_name("a").expect("a");
    let guard = &w.outgoing(a)[0].transition.guards[0];
    assert!(matches!(&guard.check, Check::Http(h) if h.cross_origin_redirects));
    assert!(matches!(&state.on_enter[0], Action::Http(h) if !h.cross_origin_redirects));
}

#[test]
fn a_webhook_that_asks_to_follow_other_origins_is_an_error_at_the_field() {
    let text = workflow(
        r#"Http(url: "http://a.example/")"#,
        r#"Http(url: "http://hooks.example/", cross_origin_redirects: true)"#,
    );
    let v = validate("w.ron", &text);
    let d: Vec<_> = v.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].code, Code::BadValue);
    assert_eq!(
        d[0].message,
        "a webhook action never follows a redirect to another origin"
    );
    assert_eq!(&text[d[0].span.clone()], "true");
    assert_eq!((d[0].line, d[0].column), (3, 91));
}
