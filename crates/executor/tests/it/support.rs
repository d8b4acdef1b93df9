//! Builders for checks and contexts, and a tiny canned HTTP server.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use waygate_core::model::{Check, Guard, HttpCheck, Retry};
use waygate_core::template::Template;
use waygate_executor::GuardContext;

pub const SECRET: &str = "hunter2-very-secret";

/// A context with a secret `token` and a plain `version`.
pub fn ctx() -> GuardContext {
    let vars = HashMap::from([
        ("token".to_owned(), SECRET.to_owned()),
        ("version".to_owned(), "1.2".to_owned()),
    ]);
    let mut c = GuardContext::new(
        "run-1",
        "staging",
        "alice",
        vars,
        HashSet::from(["token".into()]),
    );
    c.kill_grace = Duration::from_millis(300);
    c
}

pub fn t(s: &str) -> Template {
    Template::parse(s).expect("valid template")
}

pub use waygate_executor::test_support::command;

pub fn http(url: &str) -> HttpCheck {
    HttpCheck {
        url: t(url),
        method: "GET".into(),
        expect_status: None,
        body_contains: None,
        timeout: Duration::from_secs(5),
        headers: Default::default(),
        body: None,
        cross_origin_redirects: false,
    }
}

pub fn guard(name: &str, check: Check) -> Guard {
    Guard {
        name: name.into(),
        check,
        retry: Retry::default(),
        overridable_by: Vec::new(),
    }
}

/// Requests the server has seen, raw.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// Serves canned answers by path: `/ok` 200 "service healthy", `/down` 503, `/created` 201,
/// `/hang` never answers, `/go/PATH` 307 to `/PATH` on the same server, `/away?to=URL` 307
/// to `URL`; anything else 404.
pub async fn server() -> (SocketAddr, Seen) {
    server_on("127.0.0.1").await
}

/// [`server`] on another loopback address (`127.0.0.2`: another host to a client).
pub async fn server_on(ip: &str) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let request = read_request(&mut socket).await;
                if let Ok(mut l) = log.lock() {
                    l.push(request.clone());
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let location = match (path.strip_prefix("/go"), path.strip_prefix("/away?to=")) {
                    (Some(rest), _) if rest.starts_with('/') => Some(rest.to_owned()),
                    (_, Some(url)) => Some(url.to_owned()),
                    _ => None,
                };
                if let Some(location) = location {
                    let response = format!(
                        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                    return;
                }
                let (status, body) = match path.as_str() {
                    "/ok" => ("200 OK", "service healthy"),
                    "/down" => ("503 Service Unavailable", "upstream down"),
                    "/created" => ("201 Created", "made"),
                    "/hang" => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    _ => ("404 Not Found", "no"),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (addr, seen)
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = socket.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0usize);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

pub use waygate_executor::test_support::alive;

/// Waits up to 2 s for `pid` to stop running; true when it did.
pub async fn gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !alive(pid)
}

/// The first line of `text` that is a pid.
pub fn pid_in(text: &str) -> i32 {
    text.lines()
        .find_map(|l| l.trim().parse().ok())
        .expect("a pid in the output")
}
