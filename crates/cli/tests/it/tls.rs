//! `waygate serve --tls-cert --tls-key`: HTTPS with a CA made here (the `openssl` command),
//! and the CLI as its client trusting that CA with `--ca-cert` or `WAYGATE_CA_CERT`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::{Ran, Sandbox};
use crate::serve::{assert_closed_within, new_token, spawn_server_args, SERVE, WORKFLOWS};

/// Runs `openssl ARGS` in `dir`; a test machine without the command fails here, saying so.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the TLS tests need the `openssl` command");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl req` making a new unencrypted P-256 key, then `args`.
fn new_ec_key(dir: &Path, args: &[&str]) {
    let mut all = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    all.extend_from_slice(args);
    openssl(dir, &all);
}

/// In the sandbox: a CA (`ca.pem`), a certificate it signed for 127.0.0.1 (`server.pem`,
/// `server.key`), and a key of nothing (`other.key`).
fn make_certificates(sb: &Sandbox) {
    let dir = sb.path();
    new_ec_key(
        dir,
        &[
            "-x509",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=waygate test CA",
        ],
    );
    new_ec_key(
        dir,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    sb.write(
        "server.ext",
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    new_ec_key(
        dir,
        &[
            "-keyout",
            "other.key",
            "-out",
            "other.csr",
            "-subj",
            "/CN=other",
        ],
    );
}

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    for (name, text) in WORKFLOWS {
        sb.write(&format!("workflows/{name}.ron"), text);
    }
    make_certificates(&sb);
    sb
}

const TLS: [&str; 4] = ["--tls-cert", "server.pem", "--tls-key", "server.key"];

/// `waygate --server URL ARGS` with `token`, without `WAYGATE_CA_CERT` unless in `env`.
fn client(sb: &Sandbox, url: &str, token: &str, env: &[(&str, &str)], args: &[&str]) -> Ran {
    let mut all = vec!["--server", url];
    all.extend_from_slice(args);
    sb.command("x", &all)
        .env("WAYGATE_TOKEN", token)
        .env_remove("WAYGATE_CA_CERT")
        .envs(env.iter().copied())
        .output()
        .expect("waygate runs")
        .into()
}

#[test]
fn https_serves_a_client_that_trusts_its_ca_and_refuses_the_rest() {
    let sb = sandbox();
    let token = new_token(&sb, "ana", &["operator", "approver"]);
    let (server, addr) = spawn_server_args(&sb, "serve", None, &[], &TLS, &[]);
    assert!(
        server
            .stderr()
            .contains(&format!("listening on https://{addr}")),
        "{}",
        server.stderr()
    );
    // Connected, never says hello: dropped after the header-read timeout (10 s).
    let silent = TcpStream::connect(addr).expect("connect");
    let silent_since = Instant::now();

    let url = format!("https://{addr}");
    let started = client(
        &sb,
        &url,
        &token,
        &[],
        &["--ca-cert", "ca.pem", "start", "free", "--env", "dev"],
    );
    started.code(0);
    let run = started.stdout.trim().to_owned();
    let status = client(
        &sb,
        &url,
        &token,
        &[("WAYGATE_CA_CERT", "ca.pem")],
        &["--format", "json", "status", &run],
    );
    status.code(0);
    status.stdout_has(&format!("\"{run}\""));

    // The public roots alone do not trust this server; the error says how to.
    let untrusted = client(&sb, &url, &token, &[], &["status", &run]);
    untrusted.code(1);
    untrusted.stderr_has("invalid peer certificate");
    untrusted.stderr_has("--ca-cert");
    // A CA file that holds no certificate is refused before any request.
    client(&sb, &url, &token, &[], &["--ca-cert", "server.key", "runs"])
        .code(1)
        .stderr_has("--ca-cert server.key: no PEM certificate");

    // Plain HTTP to the TLS port is refused at once, not left hanging.
    let began = Instant::now();
    let plain = client(&sb, &format!("http://{addr}"), &token, &[], &["runs"]);
    plain.code(1);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    let mut raw = TcpStream::connect(addr).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    raw.write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer)
        .expect("the server closes a plain HTTP connection on its TLS port");
    assert!(
        !String::from_utf8_lossy(&answer).contains("200"),
        "{answer:?}"
    );

    assert_closed_within(silent, silent_since, Duration::from_secs(20));

    // SIGTERM with a handshake pending stops the server at once, exit 0.
    let _pending = TcpStream::connect(addr).expect("connect");
    server.signal(libc::SIGTERM);
    let began = Instant::now();
    assert_eq!(server.wait(Duration::from_secs(30)).code, 0);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
}

#[test]
fn bad_certificates_and_keys_stop_the_server_before_it_listens() {
    let sb = sandbox();
    new_token(&sb, "ana", &["operator"]);
    sb.write("notes.txt", "not a certificate\n");
    let serve = |extra: &[&str]| {
        let mut args = SERVE.to_vec();
        args.extend_from_slice(extra);
        let ran = sb.wg(&args);
        assert!(!ran.stderr.contains("listening"), "{}", ran.stderr);
        ran
    };
    serve(&["--tls-cert", "server.pem", "--tls-key", "other.key"])
        .code(1)
        .stderr_has("the key does not belong to the certificate");
    serve(&["--tls-cert", "missing.pem", "--tls-key", "server.key"])
        .code(1)
        .stderr_has("--tls-cert missing.pem: No such file");
    serve(&["--tls-cert", "notes.txt", "--tls-key", "server.key"])
        .code(1)
        .stderr_has("--tls-cert notes.txt: no PEM certificate");
    serve(&["--tls-cert", "server.pem", "--tls-key", "server.pem"])
        .code(1)
        .stderr_has("--tls-key server.pem: no PEM private key");
    serve(&["--tls-cert", "server.pem"]).code(2);
    serve(&["--tls-key", "server.key"]).code(2);
    // Refused before the store was even opened.
    assert!(!sb.store().exists());
}

#[test]
fn over_https_the_session_cookie_is_secure() {
    let sb = sandbox();
    let token = new_token(&sb, "ana", &["approver"]);
    let (_server, addr) = spawn_server_args(&sb, "serve", None, &[], &TLS, &[]);
    let body = format!("token={token}");
    let request = format!(
        "POST /signin HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://{addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut client = Command::new("openssl")
        .args([
            "s_client", "-quiet", "-ign_eof", "-CAfile", "ca.pem", "-connect",
        ])
        .arg(addr.to_string())
        .current_dir(sb.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_client");
    client
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.as_bytes())
        .expect("send");
    let out = client.wait_with_output().expect("answer");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "; Secure"] {
        assert!(cookie.contains(part), "{cookie}");
    }
}
