//! Several `waygate serve` replicas on one PostgreSQL store: a lease per driven run
//! (`docs/api.md`, Replicas). Skipped with a printed reason when no test database is named.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{wait_until, Sandbox};
use crate::serve::{http, spawn_server_args, Served};

/// Leases short enough for a test: a dead replica's runs are free after 2 s at most.
const LEASE: [&str; 4] = ["--lease", "2s", "--lease-renew", "300ms"];

/// A bake of two seconds, then an action on arrival.
const BAKED: &str = r#"Workflow(name: "baked", initial: "a", environments: { "dev": () },
    states: { "a": (), "done": (terminal: Success, on_enter: [Command(run: ["sh", "-c", "echo once >> acted"])]) },
    transitions: [(from: "a", to: "done", guards: [(name: "bake", check: Wait(duration: "2s"))])])"#;
/// A bake that outlasts the test.
const LONG: &str = r#"Workflow(name: "long", initial: "a", environments: { "dev": () },
    states: { "a": (), "done": (terminal: Success) },
    transitions: [(from: "a", to: "done", guards: [(name: "bake", check: Wait(duration: "10m"))])])"#;

/// A first replica on a fresh schema of the test database, with [`BAKED`] and [`LONG`].
fn first_replica() -> Option<Served> {
    let sb = Sandbox::on_postgres()?;
    sb.write("workflows/baked.ron", BAKED);
    sb.write("workflows/long.ron", LONG);
    Some(Served::with(sb, &LEASE))
}

fn call(s: &Served, addr: SocketAddr, method: &str, path: &str) -> (u16, Value) {
    let body = (method == "POST").then(|| json!({}).to_string());
    let (status, text) = http(addr, method, path, Some(s.token("op")), body.as_deref());
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn leases_held(s: &Served, addr: SocketAddr) -> Option<u64> {
    let (_, text) = http(addr, "GET", "/metrics", Some(s.token("aud")), None);
    text.lines()
        .find_map(|l| l.strip_prefix("waygate_leases_held "))
        .and_then(|n| n.trim().parse().ok())
}

fn count(history: &[Value], kind: &str) -> usize {
    history.iter().filter(|e| e["kind"] == kind).count()
}

#[test]
fn a_killed_replicas_run_is_taken_over_once_its_lease_lapses_and_ends_once() {
    let Some(mut s) = first_replica() else { return };
    let (b, b_addr) = spawn_server_args(&s.sb, "replica-b", None, &[], &LEASE, &[]);
    let run = s.start("op", "baked");
    let (status, reply) = call(&s, s.addr, "POST", &format!("/v1/runs/{run}/drive"));
    assert_eq!(
        (status, reply["driving"].as_bool()),
        (202, Some(true)),
        "{reply}"
    );
    // While A's lease lasts, B refuses to drive the run too.
    let (status, reply) = call(&s, b_addr, "POST", &format!("/v1/runs/{run}/drive"));
    assert_eq!(status, 409, "{reply}");
    assert!(reply.to_string().contains("lease"), "{reply}");
    wait_until("A holds one lease", Duration::from_secs(10), || {
        leases_held(&s, s.addr) == Some(1)
    });
    assert_eq!(leases_held(&s, b_addr), Some(0));

    s.server.take().expect("replica A").kill9();
    s.server = Some(b);
    s.addr = b_addr;
    wait_until(
        "B drives the run to its end",
        Duration::from_secs(30),
        || {
            let (_, body) = call(&s, b_addr, "GET", &format!("/v1/runs/{run}"));
            body["run"]["status"] == "succeeded"
        },
    );
    assert!(s.log().contains("resuming a drive"), "{}", s.log());
    let history = s.history(&run);
    assert_eq!(count(&history, "Transitioned"), 1, "{history:?}");
    assert_eq!(count(&history, "ActionStarted"), 1, "{history:?}");
    assert_eq!(count(&history, "ActionFinished"), 1, "{history:?}");
    let moved = history.iter().find(|e| e["kind"] == "Transitioned");
    assert_eq!(moved.map(|e| e["actor"].clone()), Some(json!("op")));
    let acted = std::fs::read_to_string(s.sb.path().join("acted")).unwrap_or_default();
    assert_eq!(acted, "once\n");
    // The drive ended: its lease is gone, and B holds none.
    wait_until("the lease is removed", Duration::from_secs(10), || {
        scalar(&s, "SELECT count(*) FROM waygate_leases") == "0"
    });
    let server = s.server.take().expect("replica B");
    server.signal(libc::SIGTERM);
    let ran = server.wait(Duration::from_secs(30));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

/// A TCP relay to the test database that can be cut: the database becomes unreachable for
/// the replica behind it only.
struct Relay {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn to(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (c, o) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if c.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                for s in [&client, &server] {
                    o.lock().expect("relay").push(s.try_clone().expect("clone"));
                }
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (
                        from.try_clone().expect("clone"),
                        to.try_clone().expect("clone"),
                    );
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { addr, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().expect("relay").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn a_replica_that_cannot_renew_its_lease_stops_driving_and_another_takes_over() {
    let Some(mut s) = first_replica() else { return };
    let url = s.sb.postgres().expect("postgres").url().to_owned();
    // postgres://user@HOST:PORT/db?...: A reaches the same database through the relay.
    let authority = url
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("host:port");
    let target: SocketAddr = authority.parse().expect("the test database on an IP:port");
    let relay = Relay::to(target);
    let relayed = url.replacen(authority, &relay.addr.to_string(), 1);
    let (a, a_addr) = spawn_server_args(&s.sb, "replica-a", Some(&relayed), &[], &LEASE, &[]);
    let run = s.start("op", "long");
    let (status, reply) = call(&s, a_addr, "POST", &format!("/v1/runs/{run}/drive"));
    assert_eq!(
        (status, reply["driving"].as_bool()),
        (202, Some(true)),
        "{reply}"
    );
    wait_until("A holds the lease", Duration::from_secs(10), || {
        leases_held(&s, a_addr) == Some(1)
    });

    relay.cut();
    wait_until("A stops driving", Duration::from_secs(10), || {
        a.stderr().contains("lease lost: stopping this drive")
    });
    assert!(
        a.stderr().contains("cannot renew the leases"),
        "{}",
        a.stderr()
    );
    // Once A's lease lapsed, the other replica drives the run (and only it).
    wait_until("B takes the run over", Duration::from_secs(15), || {
        s.log().contains("resuming a drive") && leases_held(&s, s.addr) == Some(1)
    });
    let history = s.history(&run);
    assert_eq!(count(&history, "Transitioned"), 0, "{history:?}");
    a.kill9();
    // SIGTERM gives the lease up at once, still listed for the next replica.
    let server = s.server.take().expect("replica B");
    server.signal(libc::SIGTERM);
    let ran = server.wait(Duration::from_secs(30));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        scalar(
            &s,
            "SELECT count(*) FROM waygate_leases WHERE expires_at < now()"
        ),
        "1"
    );
}

/// The one value `sql` selects, through the real `psql`.
fn scalar(s: &Served, sql: &str) -> String {
    let out = s.sb.postgres().expect("postgres").psql(sql);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().nth(2).unwrap_or_default().trim().to_owned()
}
