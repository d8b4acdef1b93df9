//! The check kinds of guards and actions (`Command`, `Http`, `Json`, `Approval`, `Wait`,
//! `Window`, `Watch`): each one's fields checked and turned into the model's check, with the
//! warnings about how a command is written (`shell-interpolation`, `secret-in-argv`).

use std::time::Duration;

use indexmap::IndexMap;

use super::{shell, Checker, Step, Step::Field, Step::Index};
use crate::diagnostic::Code;
use crate::model::{
    ApprovalCheck, Check, CommandCheck, HttpCheck, JsonCheck, WatchCheck, WindowCheck,
    DEFAULT_COMMAND_TIMEOUT, DEFAULT_HTTP_TIMEOUT,
};
use crate::spec::{CheckSpec, CommandSpec, HttpSpec, WindowSpec};
use crate::template::Template;

impl Checker<'_> {
    pub(super) fn check<'p>(
        &mut self,
        spec: &'p CheckSpec,
        path: &[Step<'p>],
        inside_watch: bool,
    ) -> Option<Check> {
        let at = |field: &'p str| -> Vec<Step<'p>> {
            path.iter().copied().chain([Field(field)]).collect()
        };
        match spec {
            CheckSpec::Command(c) => self.command(c, path).map(Check::Command),
            CheckSpec::Http(h) => self.http(h, path, "GET").map(Check::Http),
            CheckSpec::Json(j) => {
                let file = self.template(&j.file, &at("file"));
                let pointer_ok = pointer_valid(&j.pointer);
                if !pointer_ok {
                    let span = self.span(&at("pointer"));
                    self.report(Code::BadPointer, span, format!("{:?} is not a JSON pointer (RFC 6901)", j.pointer))
                        .help = Some("a pointer is empty or starts with `/`, e.g. \"/first_impression_fsm\"; write `~0` for `~` and `~1` for `/`".into());
                }
                Some(Check::Json(JsonCheck {
                    file: file?,
                    pointer: j.pointer.clone(),
                    equals: j.equals.clone(),
                }))
                .filter(|_| pointer_ok)
            }
            CheckSpec::Approval(a) => {
                let min = a.min.unwrap_or(1);
                if min == 0 {
                    let span = self.span(&at("min"));
                    self.report(Code::BadValue, span, "`min` must be at least 1".into());
                } else if !a.approvers.is_empty() && (min as usize) > a.approvers.len() {
                    let span = self.span(&at("min"));
                    self.report(
                        Code::BadValue,
                        span,
                        format!(
                            "`min` is {min} but only {} approvers are allowed",
                            a.approvers.len()
                        ),
                    );
                } else if !a.approvers.is_empty() {
                    // Names differing only by case are one person (`actor::same_actor`).
                    let mut people: Vec<String> = a
                        .approvers
                        .iter()
                        .map(|n| crate::actor::person(n))
                        .collect();
                    people.sort();
                    people.dedup();
                    if (min as usize) > people.len() {
                        let span = self.span(&at("min"));
                        self.report_newer(
                            Code::BadValue,
                            span,
                            format!(
                                "`min` is {min} but the approvers are only {} {}: names \
                                 differing only by case are one person",
                                people.len(),
                                if people.len() == 1 {
                                    "person"
                                } else {
                                    "people"
                                }
                            ),
                        );
                    }
                }
                self.actor_names(&a.approvers, &at("approvers"), "approver", "approve");
                let prompt = self.template(&a.prompt, &at("prompt"))?;
                Some(Check::Approval(ApprovalCheck {
                    prompt,
                    min: min.max(1),
                    approvers: a.approvers.clone(),
                    not_by_initiator: a.not_by_initiator,
                }))
            }
            CheckSpec::Wait(w) => self
                .duration(
                    &w.duration,
                    &at("duration"),
                    Some("is no bake time at all: the guard would always pass"),
                )
                .map(Check::Wait),
            CheckSpec::Window(w) => self.window(w, path).map(Check::Window),
            CheckSpec::Watch(w) => {
                let inner_path = at("check");
                if inside_watch || matches!(*w.check, CheckSpec::Approval(_) | CheckSpec::Wait(_)) {
                    let span = self.span(&inner_path);
                    let kind = check_kind(&w.check);
                    self.report(
                        Code::BadValue,
                        span,
                        format!("a Watch cannot watch a {kind} check"),
                    )
                    .help = Some("watch a Command, Http, Json or Window check".into());
                }
                let inner = self.check(&w.check, &inner_path, true);
                let duration = self.duration(
                    &w.duration,
                    &at("duration"),
                    Some("would watch nothing: the guard would always pass"),
                );
                let interval = self.duration(
                    &w.interval,
                    &at("interval"),
                    Some("would check without pause"),
                );
                if let (Some(d), Some(i)) = (duration, interval) {
                    if i > d {
                        let span = self.span(&at("interval"));
                        self.report(
                            Code::BadValue,
                            span,
                            "`interval` must be at most `duration`".into(),
                        );
                        return None;
                    }
                }
                Some(Check::Watch(WatchCheck {
                    check: Box::new(inner?),
                    duration: duration?,
                    interval: interval?,
                }))
            }
        }
    }

    /// Names of people (approvers, who may override): the actor-name rule is `actor`'s, and
    /// a name outside it can never act: "`role` `NAME` can never `verb`".
    pub(super) fn actor_names(&mut self, names: &[String], path: &[Step], role: &str, verb: &str) {
        for (i, name) in names.iter().enumerate() {
            if let Err(e) = crate::actor::check_actor_name(name) {
                let mut p = path.to_vec();
                p.push(Index(i));
                let span = self.span(&p);
                self.report_newer(
                    Code::BadValue,
                    span,
                    format!("{role} `{name}` can never {verb}: {e}"),
                )
                .help = Some(format!("write the name as the {role} gives it to `--as`"));
            }
        }
    }

    pub(super) fn command<'p>(
        &mut self,
        c: &'p CommandSpec,
        path: &[Step<'p>],
    ) -> Option<CommandCheck> {
        let at = |field: &'p str| -> Vec<Step<'p>> {
            path.iter().copied().chain([Field(field)]).collect()
        };
        if c.run.is_empty() || c.run[0].trim().is_empty() {
            let span = self.span(&at("run"));
            self.report(
                Code::BadValue,
                span,
                "`run` needs a program to run: an empty argv".into(),
            )
            .help = Some("write the argv, e.g. run: [\"python3\", \"-m\", \"pytest\"]".into());
        }
        let mut run = Vec::new();
        for (i, arg) in c.run.iter().enumerate() {
            let mut p = at("run");
            p.push(Index(i));
            run.push(self.template(arg, &p));
        }
        self.shell_interpolation(&c.run, &at("run"));
        self.secret_in_argv(&c.run, &at("run"));
        let timeout = self.timeout(
            c.timeout.as_deref(),
            &at("timeout"),
            DEFAULT_COMMAND_TIMEOUT,
        );
        let env = self.templates(&c.env, at("env"));
        let cwd = c.cwd.as_ref().map(|d| self.template(d, &at("cwd")));
        if c.run.is_empty() {
            return None;
        }
        Some(CommandCheck {
            run: run.into_iter().collect::<Option<_>>()?,
            timeout: timeout?,
            env: env?,
            cwd: cwd.transpose_opt()?,
            outputs: c.outputs.clone(),
            secret_outputs: c.secret_outputs.clone(),
        })
    }

    /// A check's `timeout` at `path`, or `default` when it has none. Zero is refused: it
    /// would give up before anything could answer.
    fn timeout(
        &mut self,
        text: Option<&str>,
        path: &[Step],
        default: Duration,
    ) -> Option<Duration> {
        match text {
            Some(t) => self.duration(t, path, Some("would give up before anything could answer")),
            None => Some(default),
        }
    }

    /// A map of templates (a command's `env`, a request's `headers`) at `path`, each value
    /// read at its key. Every value is read, so each malformed one is reported; `None` if
    /// any was.
    fn templates<'p>(
        &mut self,
        map: &'p IndexMap<String, String>,
        path: Vec<Step<'p>>,
    ) -> Option<IndexMap<String, Template>> {
        let mut out = IndexMap::new();
        let mut all_read = true;
        for (key, value) in map {
            let mut p = path.clone();
            p.push(Field(key));
            match self.template(value, &p) {
                Some(t) => {
                    out.insert(key.clone(), t);
                }
                None => all_read = false,
            }
        }
        all_read.then_some(out)
    }

    /// Warns about `${var}` inside an argument that a shell or interpreter reads as code
    /// (`sh -c SCRIPT`, `sudo bash -lc SCRIPT`, `ssh HOST CMD`, `python3 -c PROGRAM`; the
    /// rules are [`shell::code_arguments`]'s): the value is pasted into code, so quotes,
    /// spaces or `$(...)` in it (a `--var`, a name) run as commands. One warning per such
    /// argument, at its first `${`.
    pub(super) fn shell_interpolation(&mut self, run: &[String], path: &[Step]) {
        for code in shell::code_arguments(run) {
            let script = &run[code.index];
            // A malformed template was reported already.
            let Ok(template) = Template::parse(script) else {
                continue;
            };
            let Some((first, offset)) = template.vars().next() else {
                continue;
            };
            let mut names: Vec<&str> = Vec::new();
            for (name, _) in template.vars() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            let mut p = path.to_vec();
            p.push(Index(code.index));
            let start = self.reference_offset(script, &p, offset, 0);
            let listed = names
                .iter()
                .map(|n| format!("`${{{n}}}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let reader = &code.reader;
            let (message, help) = match code.kind {
                shell::CodeKind::Script => {
                    let shell = reader.trim_end_matches(" -c");
                    (
                        format!("{listed} pasted into a `{reader}` script: a value with quotes, spaces or `$(...)` would run as shell code"),
                        format!("pass values as arguments after the script and use \"$1\", \"$2\" in it: [\"{shell}\", \"-c\", \"echo \\\"$1\\\"\", \"{shell}\", \"${{{first}}}\"]"),
                    )
                }
                shell::CodeKind::ShellLine => (
                    format!("{listed} pasted into the command line `{reader}` hands to a shell: a value with quotes, spaces or `$(...)` would run as shell code"),
                    if reader == "ssh" {
                        "ssh joins everything after the host into one line for the remote shell: run a script there that takes the value on standard input, or check the value before it is used".to_owned()
                    } else {
                        format!("`{reader}` runs this text with a shell: give it a script that takes the value as an argument (\"$1\"), or pass the value in `env` and use \"$NAME\"")
                    },
                ),
                shell::CodeKind::Program => (
                    format!("{listed} pasted into the inline `{reader}` program: a value with quotes would run as code"),
                    "pass values as arguments after the program and read them there: sys.argv[1] (Python), ARGV[0] (Ruby, Perl), process.argv[1] (Node), `-v name=${..}` (awk)".to_owned(),
                ),
            };
            self.report(
                Code::ShellInterpolation,
                start..start + first.len() + 3,
                message,
            )
            .help = Some(help);
        }
    }

    /// Warns about a secret var in a command's argv: argv is in the process list
    /// (`ps`, `/proc/PID/cmdline`) of every local user while the command runs, unlike its
    /// environment, which only its owner can read. One warning per argument, at its first
    /// secret `${`.
    pub(super) fn secret_in_argv(&mut self, run: &[String], path: &[Step]) {
        for (index, arg) in run.iter().enumerate() {
            let Ok(template) = Template::parse(arg) else {
                continue;
            };
            let Some((nth, (name, offset))) = template
                .vars()
                .enumerate()
                .find(|(_, (name, _))| self.secrets.contains(*name))
            else {
                continue;
            };
            let mut p = path.to_vec();
            p.push(Index(index));
            let start = self.reference_offset(arg, &p, offset, nth);
            let env_name = name.to_ascii_uppercase();
            self.report(
                Code::SecretInArgv,
                start..start + name.len() + 3,
                format!("secret `${{{name}}}` in a command's arguments: every local user can read it in the process list while the command runs"),
            )
            .help = Some(format!(
                "pass it in the command's `env` instead, env: {{ \"{env_name}\": \"${{{name}}}\" }}, and read ${env_name} in the program (\"${env_name}\" in a `sh -c` script)"
            ));
        }
    }

    pub(super) fn http<'p>(
        &mut self,
        h: &'p HttpSpec,
        path: &[Step<'p>],
        default_method: &str,
    ) -> Option<HttpCheck> {
        let at = |field: &'p str| -> Vec<Step<'p>> {
            path.iter().copied().chain([Field(field)]).collect()
        };
        let url = self.template(&h.url, &at("url"));
        let method = h
            .method
            .clone()
            .unwrap_or_else(|| default_method.to_owned())
            .to_ascii_uppercase();
        let method_ok =
            ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&method.as_str());
        if !method_ok {
            let span = self.span(&at("method"));
            self.report(
                Code::BadValue,
                span,
                format!(
                    "unknown HTTP method {:?}",
                    h.method.as_deref().unwrap_or("")
                ),
            );
        }
        if let Some(status) = h.expect_status {
            if !(100..=599).contains(&status) {
                let span = self.span(&at("expect_status"));
                self.report(
                    Code::BadValue,
                    span,
                    format!("{status} is not an HTTP status code"),
                );
            }
        }
        let body_contains = h
            .body_contains
            .as_ref()
            .map(|b| self.template(b, &at("body_contains")));
        let timeout = self.timeout(h.timeout.as_deref(), &at("timeout"), DEFAULT_HTTP_TIMEOUT);
        let headers = self.templates(&h.headers, at("headers"));
        if let Some(body) = &h.body {
            let body_path = at("body");
            self.json_templates(body, &body_path);
        }
        if h.cross_origin_redirects && default_method == "POST" {
            // A webhook: following would resend its body and headers to another server.
            let span = self.span(&at("cross_origin_redirects"));
            self.report(
                Code::BadValue,
                span,
                "a webhook action never follows a redirect to another origin".to_owned(),
            )
            .help = Some(
                "point the webhook at the final URL; `cross_origin_redirects` is for Http checks"
                    .into(),
            );
        }
        Some(HttpCheck {
            url: url?,
            method,
            expect_status: h.expect_status,
            body_contains: body_contains.transpose_opt()?,
            timeout: timeout?,
            headers: headers?,
            body: h.body.clone(),
            cross_origin_redirects: h.cross_origin_redirects,
        })
        .filter(|_| method_ok)
    }

    /// Checks `${vars}` in the string leaves of a webhook body.
    pub(super) fn json_templates<'p>(&mut self, value: &'p serde_json::Value, path: &[Step<'p>]) {
        match value {
            serde_json::Value::String(s) => {
                self.template(s, path);
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p: Vec<Step> = path.iter().copied().chain([Index(i)]).collect();
                    self.json_templates(item, &p);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    let p: Vec<Step> = path.iter().copied().chain([Field(k.as_str())]).collect();
                    self.json_templates(item, &p);
                }
            }
            _ => {}
        }
    }

    pub(super) fn window<'p>(
        &mut self,
        w: &'p WindowSpec,
        path: &[Step<'p>],
    ) -> Option<WindowCheck> {
        let at = |field: &'p str| -> Vec<Step<'p>> {
            path.iter().copied().chain([Field(field)]).collect()
        };
        if w.days.is_empty() {
            let span = self.span(&at("days"));
            self.report(
                Code::BadValue,
                span,
                "a window needs at least one day".into(),
            );
        }
        let start = self.time_of_day(&w.start, &at("start"));
        let end = self.time_of_day(&w.end, &at("end"));
        let tz = match jiff::tz::TimeZone::get(&w.tz) {
            Ok(tz) => Some(tz),
            Err(_) => {
                let span = self.span(&at("tz"));
                self.report(
                    Code::BadTimezone,
                    span,
                    format!("{:?} is not an IANA time zone", w.tz),
                )
                .help = Some(
                    "use a name like \"Europe/London\", \"America/New_York\" or \"UTC\"".into(),
                );
                None
            }
        };
        if w.days.is_empty() {
            return None;
        }
        Some(WindowCheck {
            days: w.days.clone(),
            start: start?,
            end: end?,
            tz_name: w.tz.clone(),
            tz: tz?,
        })
    }
}

trait TransposeOpt<T> {
    fn transpose_opt(self) -> Option<Option<T>>;
}

impl<T> TransposeOpt<T> for Option<Option<T>> {
    /// `None` (field absent) is fine; `Some(None)` (present but invalid) is not.
    fn transpose_opt(self) -> Option<Option<T>> {
        match self {
            None => Some(None),
            Some(Some(t)) => Some(Some(t)),
            Some(None) => None,
        }
    }
}

fn pointer_valid(p: &str) -> bool {
    if p.is_empty() {
        return true;
    }
    if !p.starts_with('/') {
        return false;
    }
    let b = p.as_bytes();
    b.iter()
        .enumerate()
        .all(|(i, &c)| c != b'~' || matches!(b.get(i + 1), Some(b'0' | b'1')))
}

fn check_kind(c: &CheckSpec) -> &'static str {
    match c {
        CheckSpec::Command(_) => "Command",
        CheckSpec::Http(_) => "Http",
        CheckSpec::Json(_) => "Json",
        CheckSpec::Approval(_) => "Approval",
        CheckSpec::Wait(_) => "Wait",
        CheckSpec::Window(_) => "Window",
        CheckSpec::Watch(_) => "Watch",
    }
}
