//! Running the binary and checking what it printed and how it exited.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository root (for `workflows/` and `tests/`).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A `waygate` command with a pinned environment: no colour, a fixed actor, no stray store.
pub fn waygate(cwd: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("waygate").expect("binary built");
    cmd.current_dir(cwd)
        .env_remove("WAYGATE_STORE")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("WAYGATE_ACTOR", "tester");
    cmd
}

/// What a finished command gave.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Ran {
        Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `waygate ARGS` in `cwd`.
pub fn run(cwd: &Path, args: &[&str]) -> Ran {
    waygate(cwd)
        .args(args)
        .output()
        .expect("waygate runs")
        .into()
}

impl Ran {
    /// Asserts the exit code, showing everything printed when it differs.
    #[track_caller]
    pub fn code(&self, want: i32) -> &Self {
        assert_eq!(
            self.code, want,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts that stdout contains `part`, showing stdout when it does not.
    #[track_caller]
    pub fn stdout_has(&self, part: &str) -> &Self {
        assert!(self.stdout.contains(part), "{}", self.stdout);
        self
    }

    /// Asserts that stderr contains `part`, showing stderr when it does not.
    #[track_caller]
    pub fn stderr_has(&self, part: &str) -> &Self {
        assert!(self.stderr.contains(part), "{}", self.stderr);
        self
    }

    /// The id of the run `waygate run` started, from its `started run ID` line on stderr.
    #[track_caller]
    pub fn started_run(&self) -> String {
        self.stderr
            .lines()
            .find_map(|l| l.strip_prefix("started run "))
            .unwrap_or_else(|| panic!("no `started run` line on stderr:\n{}", self.stderr))
            .to_owned()
    }
}

/// The built `waygate` binary.
pub fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("waygate")
}

/// A temporary directory holding a store (`./store`, or a schema of the test PostgreSQL
/// database: [`Sandbox::on_postgres`]), workflows and scripts: one per test. Commands run with
/// it as their working directory.
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
    postgres: Option<waygate_postgres::testing::TestSchema>,
}

/// Runs one test body against both stores: `fn NAME(sb: Sandbox) { .. }` becomes module
/// `NAME` with tests `embedded` and `postgres` (skipped with a printed reason when no test
/// database is named, mandatory in CI: `waygate_postgres::testing`). The body is written once.
macro_rules! on_both_stores {
    ($(#[$meta:meta])* fn $name:ident($sb:ident: Sandbox) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn check($sb: $crate::helpers::Sandbox) $body

            #[test]
            fn embedded() {
                check($crate::helpers::Sandbox::new());
            }

            #[test]
            fn postgres() {
                if let Some(sb) = $crate::helpers::Sandbox::on_postgres() {
                    check(sb);
                }
            }
        }
    };
}
pub(crate) use on_both_stores;

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("waygate-it-")
                .tempdir()
                .expect("tempdir"),
            postgres: None,
        }
    }

    /// A sandbox whose commands use a fresh schema of the test PostgreSQL database; `None`
    /// (the reason printed) when none is named and none is required.
    /// The test database's schema, on PostgreSQL.
    pub fn postgres(&self) -> Option<&waygate_postgres::testing::TestSchema> {
        self.postgres.as_ref()
    }

    pub fn on_postgres() -> Option<Sandbox> {
        let schema = waygate_postgres::testing::TestSchema::new()?;
        let mut sb = Sandbox::new();
        sb.postgres = Some(schema);
        Some(sb)
    }

    /// What `--store` names: the store directory, or the database URL.
    pub fn store_arg(&self) -> std::ffi::OsString {
        match &self.postgres {
            Some(schema) => schema.url().into(),
            None => self.store().into(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The store directory.
    pub fn store(&self) -> PathBuf {
        self.path().join("store")
    }

    /// Writes `text` to `name` (parents created) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    /// Writes an executable `#!/bin/sh` script.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.write(name, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// `waygate --store ./store ARGS` acting as `actor`.
    pub fn command(&self, actor: &str, args: &[&str]) -> std::process::Command {
        self.command_on(&self.store_arg(), actor, args)
    }

    /// [`Sandbox::command`] on the store `store` names (the same database through another
    /// address, say).
    pub fn command_on(
        &self,
        store: &std::ffi::OsStr,
        actor: &str,
        args: &[&str],
    ) -> std::process::Command {
        let mut cmd = std::process::Command::new(bin());
        cmd.current_dir(self.path())
            .env_remove("WAYGATE_STORE")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("WAYGATE_ACTOR", actor)
            .arg("--store")
            .arg(store)
            .args(args);
        cmd
    }

    /// Runs `waygate ARGS` as `tester` and waits for it.
    pub fn wg(&self, args: &[&str]) -> Ran {
        self.wg_as("tester", args)
    }

    /// Runs `waygate ARGS` as `actor` and waits for it.
    pub fn wg_as(&self, actor: &str, args: &[&str]) -> Ran {
        self.command(actor, args)
            .output()
            .expect("waygate runs")
            .into()
    }

    /// Starts `waygate ARGS` as `actor` in the background, stdout and stderr to files named
    /// after `tag` in the sandbox (a pipe nobody reads could block it).
    pub fn spawn_as(&self, actor: &str, tag: &str, args: &[&str]) -> Spawned {
        let out = self.path().join(format!("{tag}.stdout"));
        let err = self.path().join(format!("{tag}.stderr"));
        let child = self
            .command(actor, args)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn waygate");
        Spawned { child, out, err }
    }

    /// Starts a run of `file` in `env` as `actor`; returns its id.
    #[track_caller]
    pub fn start(&self, actor: &str, file: &str, env: &str, extra: &[&str]) -> String {
        let mut args = vec!["--format", "json", "start", file, "--env", env];
        args.extend_from_slice(extra);
        let json = self.wg_as(actor, &args).code(0).json();
        json["run_id"].as_str().expect("run_id").to_owned()
    }

    /// `status RUN --format json`.
    #[track_caller]
    pub fn status(&self, run: &str) -> serde_json::Value {
        self.wg(&["--format", "json", "status", run]).code(0).json()
    }

    /// `history RUN --format json`.
    #[track_caller]
    pub fn history(&self, run: &str) -> Vec<serde_json::Value> {
        match self
            .wg(&["--format", "json", "history", run])
            .code(0)
            .json()
        {
            serde_json::Value::Array(events) => events,
            other => panic!("history is not a list: {other}"),
        }
    }

    /// `audit verify` must pass.
    #[track_caller]
    pub fn verify(&self) {
        let json = self
            .wg(&["--format", "json", "audit", "verify"])
            .code(0)
            .json();
        assert_eq!(json["ok"], true, "{json}");
    }
}

/// The kinds of `events`, in order.
pub fn kinds(events: &[serde_json::Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("?"))
        .collect()
}

/// Events of kind `kind`.
pub fn of_kind<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// A `waygate` running in the background.
#[derive(Debug)]
pub struct Spawned {
    pub child: std::process::Child,
    out: PathBuf,
    err: PathBuf,
}

impl Spawned {
    /// Wraps a child whose stdout and stderr go to `out` and `err`.
    pub fn from_child(child: std::process::Child, out: PathBuf, err: PathBuf) -> Spawned {
        Spawned { child, out, err }
    }

    /// What it printed so far on stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    /// Sends `signal` to it.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Waits for it to exit, at most `limit` (then kills it and fails the test).
    #[track_caller]
    pub fn wait(mut self, limit: Duration) -> Ran {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Ran {
                    code: status.code().unwrap_or(-1),
                    stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
                    stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
                };
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "waygate did not exit within {limit:?}\n--- stderr\n{}",
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether it has exited already (successfully), without waiting.
    pub fn try_finished(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(status)) if status.success())
    }

    /// SIGKILL and reap.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // A failed test must not leave a `drive` running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `cond` every 100 ms until it holds; fails the test after `limit`. (Conditions that
/// run `waygate` take the store's lock: polling harder would starve the process watched.)
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A workflow named `name` on environment `env` whose `deploy` state runs `./deploy.sh` on
/// entry (with `timeout`) and then ends in `done`; on a failure `./revert.sh` runs and the run
/// ends in `rolled_back`. The tests that drive one long action (concurrency, crashes, signals)
/// write the scripts themselves.
pub fn one_action_workflow(name: &str, env: &str, timeout: &str) -> String {
    format!(
        r#"Workflow(
    name: "{name}",
    initial: "deploy",
    rollback: "rollback",
    environments: {{ "{env}": () }},
    states: {{
        "deploy": (on_enter: [Command(run: ["./deploy.sh"], timeout: "{timeout}")], on_failure: "rollback"),
        "done": (terminal: Success),
        "rollback": (on_enter: [Command(run: ["./revert.sh"])]),
        "rolled_back": (terminal: Failure),
    }},
    transitions: [
        (from: "deploy", to: "done"),
        (from: "rollback", to: "rolled_back"),
    ],
)
"#
    )
}

pub use waygate_executor::test_support::alive;

/// The pids listed one per line in `file` (written by a test script).
pub fn pids_in(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path);
                }
            }
        }
    }
    found
}

/// A tiny HTTP/1.1 server on 127.0.0.1 that the test controls: every request gets the
/// current status and body, and is recorded (request line and body).
#[derive(Debug)]
pub struct Server {
    pub port: u16,
    shared: Arc<Mutex<ServerState>>,
}

#[derive(Debug)]
struct ServerState {
    status: u16,
    body: String,
    requests: Vec<String>,
    stop: bool,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Mutex::new(ServerState {
            status: 200,
            body: "ok".into(),
            requests: Vec::new(),
            stop: false,
        }));
        let state = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if state.lock().expect("lock").stop {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let state = state.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Server { port, shared }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What every request gets from now on.
    pub fn respond(&self, status: u16, body: &str) {
        let mut s = self.shared.lock().expect("lock");
        s.status = status;
        s.body = body.to_owned();
    }

    /// Every request so far: request line, then the body.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().expect("lock").requests.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.lock().expect("lock").stop = true;
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut stream: std::net::TcpStream, state: &Mutex<ServerState>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let (status, reply) = {
        let mut s = state.lock().expect("lock");
        let line = head.lines().next().unwrap_or_default().to_owned();
        s.requests.push(format!("{line}\n{body}"));
        (s.status, s.body.clone())
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// Headless Chromium, for the tests that open what waygate writes as a person would
/// (`docs/cli.md`, `audit report`), and with chromedriver for the tests that use the pages of
/// `waygate serve` (`webdriver.rs`, `browser_pages.rs`). Debian's `chromium` and `chromium-driver`;
/// `.ci/run` installs them.
#[derive(Debug)]
pub struct Browser {
    path: PathBuf,
    driver: Option<PathBuf>,
}

/// The first of `names` found on `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Where a browser test that failed leaves its screenshot and page source:
/// `target/browser-failures/`.
pub fn browser_failures() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().map_or_else(|| tmp.clone(), Path::to_path_buf);
    target.join("browser-failures")
}

impl Browser {
    /// Chromium's switches for every test: headless, no sandbox (containers), and nothing
    /// that reaches out on its own (updates, sync, metrics), so a test sees only what its page
    /// asks for.
    pub const SWITCHES: [&str; 9] = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--disable-dev-shm-usage",
    ];

    /// The browser, or `None` with the reason printed when it is not installed. With
    /// `WAYGATE_REQUIRE_CHROMIUM=1` (set by `.ci/run`) a missing browser fails the test.
    pub fn find(test: &str) -> Option<Browser> {
        match on_path(&["chromium", "chromium-browser"]) {
            Some(path) => Some(Browser { path, driver: None }),
            None => missing(test, "chromium", "chromium"),
        }
    }

    /// [`Browser::find`], and chromedriver beside it (for a [`crate::webdriver::Session`]).
    pub fn with_driver(test: &str) -> Option<Browser> {
        let browser = Browser::find(test)?;
        match on_path(&["chromedriver"]) {
            Some(driver) => Some(Browser {
                driver: Some(driver),
                ..browser
            }),
            None => missing(test, "chromedriver", "chromium-driver"),
        }
    }

    /// The browser's program.
    pub fn program(&self) -> &Path {
        &self.path
    }

    /// chromedriver's program (found by [`Browser::with_driver`]).
    pub fn driver(&self) -> Option<&Path> {
        self.driver.as_deref()
    }

    /// Chromium, headless, with a profile of its own and the network off: every host name
    /// resolves to nothing and every request goes to a proxy that is not there, so a page
    /// that needed the network shows it.
    fn command(&self, profile: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.path);
        cmd.args(Browser::SWITCHES)
            .args([
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--proxy-server=127.0.0.1:9",
                "--proxy-bypass-list=<-loopback>",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// Runs the browser on `file` with `what` (`--dump-dom`, `--screenshot=..`, ..), bounded in
    /// time; its stdout.
    fn open(&self, file: &Path, what: &[String]) -> String {
        let profile = tempfile::tempdir().expect("browser profile");
        let mut child = self
            .command(profile.path())
            .args(what)
            .arg(format!("file://{}", file.display()))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromium starts");
        let mut out = String::new();
        let mut stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let _ = stdout.read_to_string(&mut out);
            out
        });
        let start = Instant::now();
        loop {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            if start.elapsed() > Duration::from_secs(90) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish with {file:?} in 90 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        reader.join().expect("reader")
    }

    /// The page's DOM after it loaded, as the browser serializes it.
    pub fn dom(&self, file: &Path) -> String {
        self.open(file, &["--dump-dom".to_owned()])
    }

    /// A screenshot of the page, `width` × `height` px, to `png`.
    pub fn screenshot(&self, file: &Path, png: &Path, width: u32, height: u32) {
        self.open(
            file,
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size={width},{height}"),
            ],
        );
    }

    /// The page printed to PDF, at `pdf`.
    pub fn print(&self, file: &Path, pdf: &Path) {
        self.open(
            file,
            &[
                format!("--print-to-pdf={}", pdf.display()),
                "--no-pdf-header-footer".to_owned(),
            ],
        );
    }

    /// Runs `check` on the page; when it panics, saves a screenshot of the page under
    /// `target/browser-failures/` (named after `test`) and says where, then fails as it did.
    pub fn checking(&self, test: &str, file: &Path, check: impl FnOnce() + std::panic::UnwindSafe) {
        if let Err(panic) = std::panic::catch_unwind(check) {
            let dir = browser_failures();
            let _ = std::fs::create_dir_all(&dir);
            let png = dir.join(format!("{test}.png"));
            self.screenshot(file, &png, 1200, 2400);
            eprintln!("{test}: a screenshot of the page is at {}", png.display());
            std::panic::resume_unwind(panic);
        }
    }
}

/// A browser test without its program: skipped with the reason printed, or failed when
/// `WAYGATE_REQUIRE_CHROMIUM=1` (set by `.ci/run`).
fn missing(test: &str, program: &str, package: &str) -> Option<Browser> {
    if std::env::var("WAYGATE_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
        panic!("{test}: {program} is not installed and WAYGATE_REQUIRE_CHROMIUM=1");
    }
    eprintln!(
        "{test}: skipped: {program} is not installed (apt-get install {package}; \
         .ci/run installs it and makes this test mandatory)"
    );
    None
}

/// The columns `docs/cli.md` documents for `runs`, in its order.
pub const RUNS_COLUMNS: [&str; 10] = [
    "run_id",
    "workflow",
    "env",
    "state",
    "status",
    "version",
    "initiator",
    "started_at",
    "updated_at",
    "ended_at",
];
