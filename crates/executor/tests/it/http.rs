//! `Http` checks and webhook actions against a real server on 127.0.0.1.

use std::time::{Duration, Instant};

use serde_json::json;
use waygate_core::model::{Action, Check};
use waygate_core::outcome::Outcome;
use waygate_executor::{evaluate_guard, run_action};

use crate::support::{ctx, guard, http, server, server_on, t, SECRET};

#[tokio::test]
async fn status_200_passes_and_503_fails() {
    let (addr, _) = server().await;
    let r = evaluate_guard(
        &guard("health", Check::Http(http(&format!("http://{addr}/ok")))),
        &ctx(),
    )
    .await;
    assert_eq!((r.outcome, r.detail.as_str()), (Outcome::Pass, "HTTP 200"));
    assert!(r.evidence.expect("evidence").contains("service healthy"));

    let r = evaluate_guard(
        &guard("health", Check::Http(http(&format!("http://{addr}/down")))),
        &ctx(),
    )
    .await;
    assert_eq!(
        (r.outcome, r.detail.as_str()),
        (Outcome::Fail, "HTTP 503, expected 2xx")
    );
}

#[tokio::test]
async fn expect_status_is_exact() {
    let (addr, _) = server().await;
    let mut check = http(&format!("http://{addr}/created"));
    check.expect_status = Some(200);
    let r = evaluate_guard(&guard("h", Check::Http(check)), &ctx()).await;
    assert_eq!(
        (r.outcome, r.detail.as_str()),
        (Outcome::Fail, "HTTP 201, expected 200")
    );
}

#[tokio::test]
async fn body_contains() {
    let (addr, _) = server().await;
    let mut check = http(&format!("http://{addr}/ok"));
    check.body_contains = Some(t("healthy"));
    let r = evaluate_guard(&guard("h", Check::Http(check.clone())), &ctx()).await;
    assert_eq!(r.outcome, Outcome::Pass);
    check.body_contains = Some(t("degraded"));
    let r = evaluate_guard(&guard("h", Check::Http(check)), &ctx()).await;
    assert_eq!(
        (r.outcome, r.detail.as_str()),
        (Outcome::Fail, "HTTP 200, body lacks \"degraded\"")
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let (addr, _) = server().await;
    let mut check = http(&format!("http://{addr}/hang"));
    check.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let r = evaluate_guard(&guard("h", Check::Http(check)), &ctx()).await;
    assert_eq!(
        (r.outcome, r.detail.as_str()),
        (Outcome::Fail, "timed out after 300ms")
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn connection_refused_is_a_clear_failure() {
    // Bind then drop: the port is (almost certainly) closed now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let r = evaluate_guard(
        &guard("h", Check::Http(http(&format!("http://127.0.0.1:{port}/")))),
        &ctx(),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(r.detail.starts_with("cannot connect"), "{}", r.detail);
}

#[tokio::test]
async fn secret_in_the_url_is_redacted() {
    let (addr, _) = server().await;
    let r = evaluate_guard(
        &guard(
            "h",
            Check::Http(http(&format!("http://{addr}/down?k=${{token}}"))),
        ),
        &ctx(),
    )
    .await;
    let evidence = r.evidence.expect("evidence");
    assert!(
        evidence.contains("k=***") && !evidence.contains(SECRET),
        "{evidence}"
    );
}

#[tokio::test]
async fn webhook_posts_rendered_json() {
    let (addr, seen) = server().await;
    let mut hook = http(&format!("http://{addr}/created"));
    hook.method = String::new(); // as if not written: webhooks default to POST
    hook.body =
        Some(json!({"text": "deployed ${version} as ${run.id}", "n": 3, "tags": ["${run.env}"]}));
    let r = run_action(&Action::Http(hook), 0, &ctx()).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "HTTP 201");
    assert_eq!(r.description, format!("Http POST http://{addr}/created"));
    let requests = seen.lock().expect("lock").clone();
    let request = requests.first().expect("one request");
    assert!(request.starts_with("POST /created"), "{request}");
    assert!(
        request.contains(r#"{"text":"deployed 1.2 as run-1","n":3,"tags":["staging"]}"#),
        "{request}"
    );
    assert!(request
        .to_ascii_lowercase()
        .contains("content-type: application/json"));

    let r = run_action(
        &Action::Http(http(&format!("http://{addr}/down"))),
        0,
        &ctx(),
    )
    .await;
    assert!(!r.ok);
    assert_eq!(r.detail, "HTTP 503, expected 2xx");
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn https_without_the_tls_feature_says_so() {
    let r = evaluate_guard(
        &guard("h", Check::Http(http("https://127.0.0.1:9/"))),
        &ctx(),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Fail);
    assert_eq!(
        r.detail,
        "HTTP client: https needs the executor built with its `tls` feature"
    );
}

/// A check of `url` and the servers' request logs: `a` on 127.0.0.1 redirects, `b` elsewhere.
async fn redirected_check(
    check: waygate_core::model::HttpCheck,
    seen_b: &crate::support::Seen,
) -> (waygate_core::outcome::GuardResult, usize) {
    let r = evaluate_guard(&guard("h", Check::Http(check)), &ctx()).await;
    let reached_b = seen_b.lock().expect("lock").len();
    (r, reached_b)
}

#[tokio::test]
async fn a_redirect_within_the_origin_is_followed() {
    let (a, _) = server().await;
    let (r, _) = redirected_check(http(&format!("http://{a}/go/ok")), &Default::default()).await;
    assert_eq!((r.outcome, r.detail.as_str()), (Outcome::Pass, "HTTP 200"));
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed() {
    let (a, _) = server().await;
    let (b, seen_b) = server_on("127.0.0.2").await;
    let (r, reached_b) =
        redirected_check(http(&format!("http://{a}/away?to=http://{b}/ok")), &seen_b).await;
    assert_eq!(reached_b, 0, "the other host was asked");
    assert_eq!(r.outcome, Outcome::Fail);
    assert_eq!(
        r.detail,
        format!(
            "HTTP 307, expected 2xx, redirect to http://{b}/ok not followed (another origin; \
             `cross_origin_redirects: true` allows it)"
        )
    );
}

#[tokio::test]
async fn a_redirect_to_another_port_or_scheme_is_another_origin() {
    let (a, _) = server().await;
    let (b, seen_b) = server().await;
    for to in [
        format!("http://{b}/ok"),
        format!("https://{a}/ok"),
        format!("http://localhost:{}/ok", a.port()),
    ] {
        let (r, reached_b) =
            redirected_check(http(&format!("http://{a}/away?to={to}")), &seen_b).await;
        assert_eq!((r.outcome, reached_b), (Outcome::Fail, 0), "{to}: {r:?}");
        assert!(r.detail.contains("not followed"), "{}", r.detail);
    }
}

#[tokio::test]
async fn cross_origin_redirects_are_followed_when_the_check_says_so() {
    let (a, _) = server().await;
    let (b, seen_b) = server_on("127.0.0.2").await;
    let mut check = http(&format!("http://{a}/away?to=http://{b}/ok"));
    check.cross_origin_redirects = true;
    let (r, reached_b) = redirected_check(check, &seen_b).await;
    assert_eq!((r.outcome, r.detail.as_str()), (Outcome::Pass, "HTTP 200"));
    assert_eq!(reached_b, 1);
}

#[tokio::test]
async fn a_webhook_never_resends_its_body_to_another_host() {
    let (a, _) = server().await;
    let (b, seen_b) = server_on("127.0.0.2").await;
    let mut hook = http(&format!("http://{a}/away?to=http://{b}/created"));
    hook.method = "POST".into();
    hook.headers.insert("X-Api-Key".into(), t("${token}"));
    hook.body = Some(json!({"text": "deployed ${version}"}));
    let r = run_action(&Action::Http(hook), 0, &ctx()).await;
    assert!(!r.ok, "{r:?}");
    assert!(r.detail.contains("not followed"), "{}", r.detail);
    assert!(seen_b.lock().expect("lock").is_empty());
}
