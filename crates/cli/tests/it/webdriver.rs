//! A WebDriver client for the tests that use `waygate serve`'s pages in a real browser
//! (`browser_pages.rs`): Debian's chromedriver driving headless Chromium.
//!
//! Why a client of our own: WebDriver is JSON over HTTP/1.1 to a chromedriver on 127.0.0.1,
//! which the tests' `serve::try_request` (a std `TcpStream`) and `serde_json` already speak, so
//! the whole client is this file and adds no crate to build (`base64`, for screenshots, is
//! already in the tree). fantoccini and thirtyfour are async (a tokio runtime in every test)
//! and bring their own HTTP, URL and cookie crates; reqwest's `blocking` feature would change
//! the features of the reqwest the binary itself is built with, so `cargo build` and
//! `cargo test` would each rebuild it and every crate above it.
//!
//! A [`Session`] owns its chromedriver (on a port of its choosing) and the Chromium that
//! chromedriver starts, with a fresh profile under the test's directory. Dropping it ends the
//! browser session and kills chromedriver and every process below it, also when the test
//! panicked. On any failure (its own or the test's) it saves a screenshot and the page source
//! under `target/browser-failures/TESTNAME-PID-N.{png,html}` and says so.

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::{alive, browser_failures, wait_until, Browser};
use crate::serve::try_request;

/// The key of an element reference in WebDriver's JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Keys as WebDriver names them.
pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";

/// How long a [`Session::wait_for`] waits unless told otherwise: generous, as the machine may
/// be busy; a condition that holds returns at once.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Whether pages may run JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripts {
    On,
    Off,
}

/// One browser session: chromedriver, its Chromium, and the WebDriver session id.
#[derive(Debug)]
pub struct Session {
    test: String,
    driver: Child,
    addr: SocketAddr,
    id: String,
    profile: PathBuf,
    /// Whether the failure artifacts were saved (once per failure is enough).
    saved: Cell<bool>,
}

/// An element of the page, found by the CSS selector it keeps for messages.
#[derive(Debug)]
pub struct Element<'s> {
    session: &'s Session,
    id: String,
    css: String,
}

/// An error WebDriver answered with (`no such element`, `stale element reference`, ..).
#[derive(Debug)]
pub struct WdError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

impl Session {
    /// Starts chromedriver and a Chromium session for `test`, its profile a fresh directory
    /// under `dir` (the test's sandbox).
    #[track_caller]
    pub fn start(browser: &Browser, test: &str, dir: &Path, scripts: Scripts) -> Session {
        let driver_program = browser
            .driver()
            .expect("Browser::with_driver found chromedriver");
        let profile = tempfile::Builder::new()
            .prefix("chromium-profile-")
            .tempdir_in(dir)
            .expect("profile directory")
            .keep();
        let log = profile.with_extension("chromedriver.log");
        // Its own process group, so that drop can end it and everything it started at once.
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(driver_program)
                .arg("--port=0")
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).expect("chromedriver log"))
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("chromedriver starts")
        };
        // Owned from here on: a failure below still ends chromedriver (drop).
        let mut session = Session {
            test: test.to_owned(),
            driver: child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            id: String::new(),
            profile,
            saved: Cell::new(false),
        };
        let mut port = None;
        wait_until("chromedriver listens", PATIENCE, || {
            port = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .split("started successfully on port ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|p| p.parse::<u16>().ok());
            port.is_some()
        });
        session.addr = SocketAddr::from(([127, 0, 0, 1], port.expect("port")));
        let mut args: Vec<String> = Browser::SWITCHES.iter().map(|s| (*s).to_owned()).collect();
        args.push("--window-size=1280,1024".to_owned());
        args.push(format!("--user-data-dir={}", session.profile.display()));
        if scripts == Scripts::Off {
            args.push("--blink-settings=scriptEnabled=false".to_owned());
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 30_000 },
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": browser.program(),
                "args": args,
            },
        }}});
        // Chromium's first start on a busy machine can take a while; chromedriver gives up
        // after 60 s itself.
        match session.raw("POST", "/session", Some(caps)) {
            Ok(v) => {
                session.id = v["sessionId"].as_str().unwrap_or_default().to_owned();
            }
            Err(e) => panic!("{test}: chromedriver could not start Chromium: {e}"),
        }
        assert!(!session.id.is_empty(), "{test}: no session id");
        session
    }

    /// The profile directory (each of Chromium's processes names it on its command line).
    pub fn profile(&self) -> &Path {
        &self.profile
    }

    /// chromedriver's process id (also its process group).
    pub fn driver_pid(&self) -> i32 {
        i32::try_from(self.driver.id()).expect("pid")
    }

    /// One WebDriver command; its `value`, or the error it answered with.
    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let body = match (method, body) {
            ("POST", None) => Some("{}".to_owned()),
            (_, b) => b.map(|b| b.to_string()),
        };
        let body = (method != "GET").then(|| ("application/json", body.as_deref().unwrap_or("")));
        // Longer than chromedriver's own limits (60 s to start Chromium, 30 s to load a page).
        let patience = Duration::from_secs(90);
        let reply =
            try_request(self.addr, method, path, &[], body, patience).map_err(|e| WdError {
                error: "chromedriver unreachable".to_owned(),
                message: e.to_string(),
            })?;
        let (status, text) = (reply.status, reply.body);
        let reply: Value = serde_json::from_str(&text).map_err(|e| WdError {
            error: format!("HTTP {status}"),
            message: format!("not JSON ({e}): {text:.300}"),
        })?;
        let value = reply["value"].clone();
        if status >= 400 || status == 0 {
            return Err(WdError {
                error: value["error"].as_str().unwrap_or("error").to_owned(),
                message: value["message"].as_str().unwrap_or("").to_owned(),
            });
        }
        Ok(value)
    }

    /// A command of this session (`/session/ID{path}`).
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        self.raw(method, &format!("/session/{}{path}", self.id), body)
    }

    /// [`Session::cmd`], failing the test (with its artifacts) on an error.
    #[track_caller]
    fn must(&self, what: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.cmd(method, path, body) {
            Ok(v) => v,
            Err(e) => self.fail(&format!("{what}: {e}")),
        }
    }

    /// Fails the test: saves a screenshot and the page source, and names them in the message.
    #[track_caller]
    pub fn fail(&self, why: &str) -> ! {
        let saved = self.save_failure();
        panic!("{}: {why}\n{saved}", self.test)
    }

    /// Saves `target/browser-failures/TESTNAME-PID-N.png` and `.html`; says what it saved.
    fn save_failure(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(1);
        self.saved.set(true);
        let dir = browser_failures();
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return format!("(no screenshot: cannot create {}: {e})", dir.display());
        }
        let name: String = self
            .test
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let stem = dir.join(format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let png = stem.with_extension("png");
        let html = stem.with_extension("html");
        let shot = self
            .cmd("GET", "/screenshot", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|bytes| std::fs::write(&png, bytes));
        let source = self
            .cmd("GET", "/source", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .map(|text| std::fs::write(&html, text));
        let url = self
            .cmd("GET", "/url", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        match (shot, source) {
            (Some(Ok(())), Some(Ok(()))) => format!(
                "the page ({url}) as the browser showed it: screenshot {}, page source {}",
                png.display(),
                html.display()
            ),
            _ => format!("(the browser could not give a screenshot or the source of {url})"),
        }
    }

    /// Opens `url` and waits for it to load.
    #[track_caller]
    pub fn goto(&self, url: &str) {
        self.must(
            &format!("open {url}"),
            "POST",
            "/url",
            Some(json!({ "url": url })),
        );
    }

    /// A `GET` command whose value is a string (the url, the source, a window handle).
    #[track_caller]
    fn text_value(&self, what: &str, path: &str) -> String {
        let v = self.must(what, "GET", path, None);
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The address of the page shown.
    #[track_caller]
    pub fn url(&self) -> String {
        self.text_value("the current url", "/url")
    }

    /// The path of the page shown (`/runs/ID`), without the query.
    #[track_caller]
    pub fn path(&self) -> String {
        let url = self.url();
        let after_host = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_default();
        after_host.split(['?', '#']).next().unwrap_or("").to_owned()
    }

    /// The page's source, as the browser serializes its DOM.
    #[track_caller]
    pub fn source(&self) -> String {
        self.text_value("the page source", "/source")
    }

    /// The first element `css` selects, or `None`.
    #[track_caller]
    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        match self.cmd(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        ) {
            Ok(v) => Some(self.element(&v, css)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => self.fail(&format!("find {css}: {e}")),
        }
    }

    /// The first element `css` selects; fails the test when there is none.
    #[track_caller]
    pub fn find(&self, css: &str) -> Element<'_> {
        self.try_find(css)
            .unwrap_or_else(|| self.fail(&format!("no element matches `{css}`")))
    }

    /// Every element `css` selects.
    #[track_caller]
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self.must(
            &format!("find all {css}"),
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        self.elements(&v, css)
    }

    /// The element that has the keyboard focus.
    #[track_caller]
    pub fn active(&self) -> Element<'_> {
        let v = self.must("the focused element", "GET", "/element/active", None);
        self.element(&v, ":focus")
    }

    fn element(&self, v: &Value, css: &str) -> Element<'_> {
        Element {
            session: self,
            id: v[ELEMENT].as_str().unwrap_or_default().to_owned(),
            css: css.to_owned(),
        }
    }

    fn elements(&self, v: &Value, css: &str) -> Vec<Element<'_>> {
        v.as_array()
            .map(|all| all.iter().map(|e| self.element(e, css)).collect())
            .unwrap_or_default()
    }

    /// Types `text` into whatever has the focus (WebDriver keys: [`TAB`], [`ENTER`]).
    #[track_caller]
    pub fn keys(&self, text: &str) {
        let mut actions = Vec::new();
        for c in text.chars() {
            actions.push(json!({ "type": "keyDown", "value": c.to_string() }));
            actions.push(json!({ "type": "keyUp", "value": c.to_string() }));
        }
        self.must(
            &format!("press {text:?}"),
            "POST",
            "/actions",
            Some(json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] })),
        );
    }

    /// Runs `script` (a function body; `arguments[0]`.. are `args`) in the page; what it
    /// returned.
    #[track_caller]
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.must(
            "run a script",
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// What the browser logged as errors since the last call (scripts that failed, what the
    /// page's Content-Security-Policy refused, requests that failed), but a page's own error
    /// status (a 401 sign-in page, a 403 refusal are pages meant to be shown).
    #[track_caller]
    pub fn console_errors(&self) -> Vec<String> {
        let log = self.must(
            "the browser's log",
            "POST",
            "/se/log",
            Some(json!({ "type": "browser" })),
        );
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .filter(|e| {
                !e["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Failed to load resource: the server responded with a status of")
            })
            .map(|e| format!("browser error: {}", e["message"].as_str().unwrap_or("?")))
            .collect()
    }

    /// The handle of the window (tab) commands go to.
    #[track_caller]
    pub fn window(&self) -> String {
        self.text_value("the window handle", "/window")
    }

    /// Opens a new tab (commands still go to the current one); its handle.
    #[track_caller]
    pub fn new_tab(&self) -> String {
        let v = self.must(
            "a new tab",
            "POST",
            "/window/new",
            Some(json!({ "type": "tab" })),
        );
        v["handle"].as_str().unwrap_or_default().to_owned()
    }

    /// Sends the next commands to the tab `handle`.
    #[track_caller]
    pub fn switch_to(&self, handle: &str) {
        self.must(
            "switch tabs",
            "POST",
            "/window",
            Some(json!({ "handle": handle })),
        );
    }

    /// The cookie `name` as the browser holds it (HttpOnly ones too), or `None`.
    #[track_caller]
    pub fn cookie(&self, name: &str) -> Option<Value> {
        match self.cmd("GET", &format!("/cookie/{name}"), None) {
            Ok(v) => Some(v),
            Err(e) if e.error == "no such cookie" => None,
            Err(e) => self.fail(&format!("cookie {name}: {e}")),
        }
    }

    /// Polls `cond` every 100 ms until it holds; fails the test (with its artifacts) after
    /// `limit`.
    #[track_caller]
    pub fn wait_for(&self, what: &str, limit: Duration, mut cond: impl FnMut(&Session) -> bool) {
        let deadline = Instant::now() + limit;
        while !cond(self) {
            if Instant::now() > deadline {
                self.fail(&format!("timed out after {limit:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Does `act` (a click, Enter in a form) and waits until the browser shows another
    /// document than before: the one `act` led to, loaded. (Without this, a test could read
    /// the old page, or the store before the form's request reached the server.)
    #[track_caller]
    pub fn leave(&self, what: &str, act: impl FnOnce()) {
        let old = self.find("html");
        act();
        self.wait_for(&format!("{what} to lead to another page"), PATIENCE, |s| {
            matches!(
                s.cmd("GET", &format!("/element/{}/name", old.id), None),
                Err(e) if e.error == "stale element reference" || e.error == "no such element"
            )
        });
    }

    /// The visible text of the first element `css` selects, or `None` when there is none or
    /// it went away as it was read (a page replacing part of itself).
    pub fn text_of(&self, css: &str) -> Option<String> {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .ok()?;
        let id = v[ELEMENT].as_str()?.to_owned();
        let text = self.cmd("GET", &format!("/element/{id}/text"), None).ok()?;
        text.as_str().map(str::to_owned)
    }

    /// Every process chromedriver started, and those they started, with chromedriver.
    fn process_tree(&self) -> Vec<i32> {
        let mut parents: Vec<(i32, i32)> = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // `pid (comm) state ppid ..`: comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
        let mut tree = vec![self.driver_pid()];
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i];
            tree.extend(
                parents
                    .iter()
                    .filter(|(_, pp)| *pp == parent)
                    .map(|(p, _)| *p),
            );
            i += 1;
        }
        tree
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.saved.get() && !self.id.is_empty() {
            let saved = self.save_failure();
            eprintln!("{}: failed; {saved}", self.test);
        }
        // Chromium's processes, found before anything ends (an orphan loses its parent).
        let tree = self.process_tree();
        if !self.id.is_empty() {
            let _ = self.raw("DELETE", &format!("/session/{}", self.id), None);
        }
        // And any that left the tree (a helper that detached itself) but names our profile.
        let mut all = tree;
        all.extend(processes_naming(&self.profile).iter().map(|(pid, _)| *pid));
        // SAFETY: kill has no memory-safety preconditions; the group and the pids are ours.
        unsafe {
            libc::kill(-self.driver_pid(), libc::SIGKILL);
            for pid in &all {
                libc::kill(*pid, libc::SIGKILL);
            }
        }
        let _ = self.driver.wait();
        // Gone, not only told to go: the next test (or this one) may count processes.
        let deadline = Instant::now() + PATIENCE;
        while all.iter().any(|pid| alive(*pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The processes (pid, command line) whose command line names `path` (each of Chromium's
/// processes names its profile directory).
pub fn processes_naming(path: &Path) -> Vec<(i32, String)> {
    let needle = path.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.contains(&needle) && alive(pid)).then_some((pid, cmdline))
        })
        .collect()
}

impl Element<'_> {
    /// One command on this element; fails the test (with its artifacts) on an error.
    #[track_caller]
    fn must(&self, what: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        self.session.must(
            &format!("{what} `{}`", self.css),
            method,
            &format!("/element/{}{path}", self.id),
            body,
        )
    }

    #[track_caller]
    pub fn click(&self) {
        self.must("click", "POST", "/click", None);
    }

    /// Clicks it (a submit button, a link) and waits until the browser shows another
    /// document: the one it leads to, loaded.
    #[track_caller]
    pub fn click_to_leave(&self) {
        let old = self.session.find("html");
        self.click();
        self.session.wait_for(
            &format!("`{}` to lead to another page", self.css),
            PATIENCE,
            |s| {
                matches!(
                    s.cmd("GET", &format!("/element/{}/name", old.id), None),
                    Err(e) if e.error == "stale element reference" || e.error == "no such element"
                )
            },
        );
    }

    /// Types `text` into it (WebDriver keys: [`TAB`], [`ENTER`]).
    #[track_caller]
    pub fn send_keys(&self, text: &str) {
        self.must("type into", "POST", "/value", Some(json!({ "text": text })));
    }

    /// Its visible text.
    #[track_caller]
    pub fn text(&self) -> String {
        let v = self.must("the text of", "GET", "/text", None);
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The attribute `name`, or `None`.
    #[track_caller]
    pub fn attr(&self, name: &str) -> Option<String> {
        let v = self.must(
            &format!("attribute {name} of"),
            "GET",
            &format!("/attribute/{name}"),
            None,
        );
        v.as_str().map(str::to_owned)
    }

    /// The property `name` (`tagName`, `href` resolved, ..).
    #[track_caller]
    pub fn prop(&self, name: &str) -> Value {
        self.must(
            &format!("property {name} of"),
            "GET",
            &format!("/property/{name}"),
            None,
        )
    }

    /// The first element under it that `css` selects, or `None`.
    #[track_caller]
    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        match self.session.cmd(
            "POST",
            &format!("/element/{}/element", self.id),
            Some(json!({ "using": "css selector", "value": css })),
        ) {
            Ok(v) => Some(self.session.element(&v, &format!("{} {css}", self.css))),
            Err(e) if e.error == "no such element" => None,
            Err(e) => self
                .session
                .fail(&format!("find {css} in {}: {e}", self.css)),
        }
    }

    /// The first element under it that `css` selects; fails the test when there is none.
    #[track_caller]
    pub fn find(&self, css: &str) -> Element<'_> {
        self.try_find(css).unwrap_or_else(|| {
            self.session
                .fail(&format!("no element matches `{css}` in `{}`", self.css))
        })
    }
}
