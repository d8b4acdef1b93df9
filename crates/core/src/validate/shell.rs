//! Where an argv hands a string to a shell or another interpreter as code.
//!
//! A `Command`'s `run` is an argv, never a shell line, so `${var}` values are data. Unless the
//! argv starts a program that treats one of its arguments as code: `sh -c SCRIPT`, or a
//! wrapper in front of one (`env`, `sudo`, `nice`, `timeout`, `xargs`, `busybox`...), or a
//! program that runs a string through a shell itself (`ssh HOST CMD..`, `su -c CMD`,
//! `watch CMD`, `flock FILE -c CMD`, `script -c CMD`), or an interpreter given a program inline
//! (`python3 -c`, `perl -e`, `node -e`, `awk PROGRAM`). A value pasted into such an argument
//! runs as code when it holds quotes, spaces or `$(...)`. [`code_arguments`] finds those
//! arguments; validation warns about `${..}` in them (`shell-interpolation`,
//! `docs/workflow-format.md`). The option tables follow each program's manual; an option this
//! module does not know is taken to have no argument, which can only miss a warning, never
//! invent one about data.

/// One argument that is code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodeArgument {
    /// Its index in the argv.
    pub index: usize,
    /// Which program reads it, as people say it: `bash -c`, `ssh`, `python3 -c`, `awk`.
    pub reader: String,
    /// What kind of code it is, for the message and the advice.
    pub kind: CodeKind,
}

/// What reads a code argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeKind {
    /// A shell's `-c` script; values belong after it as `"$1"`, `"$2"`.
    Script,
    /// A command line a program passes to a shell as one string (`ssh`, `su -c`, `watch`):
    /// there is no argument slot, so values need another way in.
    ShellLine,
    /// A program of another language given inline (`python3 -c`).
    Program,
}

/// The arguments of `argv` that a shell or interpreter reads as code, outermost first.
pub(crate) fn code_arguments(argv: &[String]) -> Vec<CodeArgument> {
    let mut found = Vec::new();
    scan(argv, 0, &mut found, 0);
    found
}

/// Deep enough for `sudo env A=1 nice timeout 5 bash -c ..`; the limit only bounds work on
/// a pathological argv.
const MAX_DEPTH: usize = 16;

fn scan(argv: &[String], base: usize, found: &mut Vec<CodeArgument>, depth: usize) {
    let Some(program) = argv.first() else { return };
    if depth > MAX_DEPTH {
        return;
    }
    let name = program.rsplit('/').next().unwrap_or(program);
    let mut push = |index: usize, reader: String, kind: CodeKind| {
        found.push(CodeArgument {
            index: base + index,
            reader,
            kind,
        })
    };
    let then = |index: usize, found: &mut Vec<CodeArgument>| {
        if index < argv.len() {
            scan(&argv[index..], base + index, found, depth + 1);
        }
    };
    if is_shell(name) {
        if let Some(i) = shell_script(argv) {
            push(i, format!("{name} -c"), CodeKind::Script);
        }
        return;
    }
    if let Some((flags, reader)) = inline_program(name) {
        if let Some(i) = inline_code(argv, flags) {
            push(i, reader(name), CodeKind::Program);
        }
        return;
    }
    match name {
        // Wrappers: options, maybe fixed operands, then the command they run.
        "env" => {
            let o = options(argv, 1, "uCS", &["unset", "chdir", "split-string"]);
            // `env -S STRING` splits STRING into the command line itself, with quotes:
            // a value pasted into it can add words, and so options and commands.
            if let Some(i) = o.code_of(&["S", "split-string"]) {
                push(i, "env -S".into(), CodeKind::ShellLine);
                return;
            }
            let mut i = o.next;
            // `env - CMD` is `env -i CMD`; then `NAME=VALUE` assignments.
            if argv.get(i).is_some_and(|a| a == "-") {
                i += 1;
            }
            while argv.get(i).is_some_and(|a| a.contains('=')) {
                i += 1;
            }
            then(i, found);
        }
        // `sudo -s CMD` and `sudo -i CMD` hand the command to a shell with every character
        // but letters, digits, `_`, `-` and `$` backslash-escaped: no command runs from a
        // value, so the command is followed like any other.
        "sudo" | "doas" => {
            let o = options(
                argv,
                1,
                "CDghpRrTtUu",
                &[
                    "close-from",
                    "chdir",
                    "group",
                    "host",
                    "prompt",
                    "chroot",
                    "role",
                    "type",
                    "command-timeout",
                    "other-user",
                    "user",
                ],
            );
            then(o.next, found);
        }
        "nice" => then(options(argv, 1, "n", &["adjustment"]).next, found),
        "nohup" | "setsid" | "command" | "exec" | "builtin" => {
            then(options(argv, 1, "", &[]).next, found)
        }
        "stdbuf" => then(
            options(argv, 1, "ioe", &["input", "output", "error"]).next,
            found,
        ),
        "time" => then(options(argv, 1, "fo", &["format", "output"]).next, found),
        "timeout" => then(
            options(argv, 1, "sk", &["signal", "kill-after"]).next + 1,
            found,
        ),
        "chroot" => then(
            options(argv, 1, "", &["userspec", "groups"]).next + 1,
            found,
        ),
        "chrt" | "taskset" => then(options(argv, 1, "", &[]).next + 1, found),
        "ionice" => then(
            options(argv, 1, "cnp", &["class", "classdata", "pid"]).next,
            found,
        ),
        "xargs" => then(
            options(
                argv,
                1,
                "adEeIiLlnPs",
                &[
                    "arg-file",
                    "delimiter",
                    "eof",
                    "replace",
                    "max-lines",
                    "max-args",
                    "max-procs",
                    "max-chars",
                    "process-slot-var",
                ],
            )
            .next,
            found,
        ),
        "busybox" => then(1, found),
        "find" => {
            let mut i = 1;
            while i < argv.len() {
                if matches!(argv[i].as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
                    let end = argv[i + 1..]
                        .iter()
                        .position(|a| a == ";" || a == "+")
                        .map_or(argv.len(), |p| i + 1 + p);
                    scan(&argv[i + 1..end], base + i + 1, found, depth + 1);
                    i = end;
                }
                i += 1;
            }
        }
        // Programs that hand a string to a shell.
        // su and runuser take their options anywhere (`su deploy -c CMD`).
        "su" | "runuser" => {
            let o = options_anywhere(
                argv,
                1,
                "cgGsuw",
                &[
                    "command",
                    "session-command",
                    "group",
                    "supp-group",
                    "shell",
                    "user",
                    "whitelist-environment",
                ],
            );
            match o.code_of(&["c", "command", "session-command"]) {
                Some(i) => push(i, format!("{name} -c"), CodeKind::ShellLine),
                // `runuser -u USER -- CMD..` runs an argv.
                None if name == "runuser" => then(options(argv, 1, "gGu", &[]).next, found),
                None => {}
            }
        }
        // `flock [OPTIONS] FILE -c CMD`, or `flock [OPTIONS] FILE CMD ARGS..`.
        "flock" => {
            let file = options(argv, 1, "wE", &["timeout", "conflict-exit-code"]).next;
            match argv.get(file + 1).map(String::as_str) {
                Some("-c" | "--command") if file + 2 < argv.len() => {
                    push(file + 2, "flock -c".into(), CodeKind::ShellLine)
                }
                _ => then(file + 1, found),
            }
        }
        "script" => {
            let o = options(
                argv,
                1,
                "cEIlmOoBT",
                &[
                    "command",
                    "echo",
                    "log-in",
                    "log-out",
                    "log-io",
                    "log-timing",
                    "logging-format",
                    "output-limit",
                ],
            );
            if let Some(i) = o.code_of(&["c", "command"]) {
                push(i, "script -c".into(), CodeKind::ShellLine);
            }
        }
        "watch" => {
            let o = options(argv, 1, "nq", &["interval", "equexit"]);
            if o.flags.iter().any(|f| f == "x" || f == "exec") {
                then(o.next, found);
            } else {
                for i in o.next..argv.len() {
                    push(i, "watch".into(), CodeKind::ShellLine);
                }
            }
        }
        "ssh" => {
            let host = options(argv, 1, "BbcDEeFIiJLlmOoPpQRSWw", &[]).next;
            for i in host + 1..argv.len() {
                push(i, "ssh".into(), CodeKind::ShellLine);
            }
        }
        // Containers: the command after the container (or image) is an argv again.
        "docker" | "podman" | "nerdctl" => {
            let mut i = options(argv, 1, "cHl", &["config", "context", "host", "log-level"]).next;
            if matches!(
                argv.get(i).map(String::as_str),
                Some("container" | "compose")
            ) {
                i += 1;
            }
            match argv.get(i).map(String::as_str) {
                Some("exec") => {
                    let o = options(
                        argv,
                        i + 1,
                        "euw",
                        &["env", "env-file", "user", "workdir", "detach-keys", "index"],
                    );
                    then(o.next + 1, found);
                }
                Some("run") => then(options(argv, i + 1, RUN_SHORT, RUN_LONG).next + 1, found),
                _ => {}
            }
        }
        "kubectl" | "oc" => {
            if let Some(dashes) = argv.iter().position(|a| a == "--") {
                if argv[1..dashes]
                    .iter()
                    .any(|a| a == "exec" || a == "debug" || a == "run")
                {
                    then(dashes + 1, found);
                }
            }
        }
        _ => {}
    }
}

/// `docker run` options that take a value (the common ones).
const RUN_SHORT: &str = "acehlmpuvw";
const RUN_LONG: &[&str] = &[
    "add-host",
    "attach",
    "cap-add",
    "cap-drop",
    "cgroupns",
    "cidfile",
    "cpus",
    "cpu-shares",
    "device",
    "dns",
    "entrypoint",
    "env",
    "env-file",
    "expose",
    "gpus",
    "group-add",
    "hostname",
    "ip",
    "label",
    "label-file",
    "log-driver",
    "log-opt",
    "memory",
    "mount",
    "name",
    "network",
    "platform",
    "publish",
    "pull",
    "restart",
    "runtime",
    "security-opt",
    "shm-size",
    "stop-signal",
    "stop-timeout",
    "tmpfs",
    "ulimit",
    "user",
    "userns",
    "volume",
    "volumes-from",
    "workdir",
];

/// Shells whose `-c` takes a script.
fn is_shell(name: &str) -> bool {
    matches!(
        name,
        "sh" | "bash"
            | "rbash"
            | "dash"
            | "zsh"
            | "ksh"
            | "ksh93"
            | "mksh"
            | "pdksh"
            | "ash"
            | "yash"
            | "posh"
            | "fish"
            | "csh"
            | "tcsh"
    )
}

/// One argument as a getopt-style reader sees it, before the operands start.
#[derive(Debug, PartialEq, Eq)]
enum Arg<'a> {
    /// `--`: the next argument is the first operand.
    EndOfOptions,
    /// `--name` or `--name=value`.
    Long {
        name: &'a str,
        value: Option<&'a str>,
    },
    /// A bundle of short options (`-abc`: `abc`).
    Short(&'a str),
    /// The first operand: the options have ended.
    Operand,
}

/// Whether `+x` is an option (a shell's way to unset one) or an operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plus {
    IsOption,
    IsOperand,
}

impl<'a> Arg<'a> {
    fn of(a: &'a str, plus: Plus) -> Self {
        if a == "--" {
            return Arg::EndOfOptions;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, value) = long
                .split_once('=')
                .map_or((long, None), |(n, v)| (n, Some(v)));
            return Arg::Long { name, value };
        }
        let flags = match plus {
            Plus::IsOption => a.strip_prefix('-').or_else(|| a.strip_prefix('+')),
            Plus::IsOperand => a.strip_prefix('-'),
        };
        match flags {
            Some(flags) if !flags.is_empty() => Arg::Short(flags),
            _ => Arg::Operand,
        }
    }
}

/// The index of a shell's `-c` script: after `-c` (alone or in a bundle such as `-lc`, `-ec`,
/// `+x -c`, or fish's `--command`), the first operand; `-o NAME` and the rc-file options take
/// a value.
fn shell_script(argv: &[String]) -> Option<usize> {
    let mut command = false;
    let mut i = 1;
    while i < argv.len() {
        let flags = match Arg::of(&argv[i], Plus::IsOption) {
            Arg::EndOfOptions => {
                i += 1;
                break;
            }
            Arg::Operand => break,
            Arg::Long { name, value } => {
                match name {
                    "command" if value.is_some() => return Some(i),
                    "command" => command = true,
                    "rcfile" | "init-file" | "init-command" if value.is_none() => i += 1,
                    _ => {}
                }
                i += 1;
                continue;
            }
            Arg::Short(flags) => flags,
        };
        if flags.contains('c') {
            command = true;
        }
        if flags.contains('o') || flags.contains('O') {
            i += 1;
        }
        i += 1;
    }
    (command && i < argv.len()).then_some(i)
}

/// Interpreters that take a program inline: the options that introduce it, and how the
/// reader is named.
type Reader = fn(&str) -> String;

fn inline_program(name: &str) -> Option<(&'static InlineFlags, Reader)> {
    static PYTHON: InlineFlags = InlineFlags {
        code: "c",
        code_long: &[],
        with_value: "WXm",
        stop: "m",
        operand_is_code: false,
    };
    static PERL: InlineFlags = InlineFlags {
        code: "eE",
        code_long: &[],
        with_value: "IMmixdDC",
        stop: "",
        operand_is_code: false,
    };
    static RUBY_R: InlineFlags = InlineFlags {
        code: "e",
        code_long: &[],
        with_value: "CIrE",
        stop: "",
        operand_is_code: false,
    };
    static LUA: InlineFlags = InlineFlags {
        code: "e",
        code_long: &[],
        with_value: "l",
        stop: "",
        operand_is_code: false,
    };
    static NODE: InlineFlags = InlineFlags {
        code: "ep",
        code_long: &["eval", "print"],
        with_value: "r",
        stop: "",
        operand_is_code: false,
    };
    static PHP: InlineFlags = InlineFlags {
        code: "r",
        code_long: &[],
        with_value: "cdfz",
        stop: "f",
        operand_is_code: false,
    };
    static AWK: InlineFlags = InlineFlags {
        code: "",
        code_long: &["source"],
        with_value: "vF",
        stop: "f",
        operand_is_code: true,
    };
    let python = name
        .strip_prefix("python")
        .or_else(|| name.strip_prefix("pypy"));
    if python.is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.')) {
        return Some((&PYTHON, |n| format!("{n} -c")));
    }
    match name {
        "perl" => Some((&PERL, |n| format!("{n} -e"))),
        "ruby" | "Rscript" => Some((&RUBY_R, |n| format!("{n} -e"))),
        "lua" | "luajit" => Some((&LUA, |n| format!("{n} -e"))),
        "node" | "nodejs" => Some((&NODE, |n| format!("{n} -e"))),
        "php" => Some((&PHP, |n| format!("{n} -r"))),
        "awk" | "gawk" | "mawk" | "nawk" => Some((&AWK, |n| n.to_owned())),
        _ => None,
    }
}

/// How an interpreter's command line carries inline code.
#[derive(Debug)]
struct InlineFlags {
    /// Short options whose value is code (`c` for python, `e` for perl).
    code: &'static str,
    /// Long options whose value is code (`--eval`).
    code_long: &'static [&'static str],
    /// Other short options that take a value (attached or next).
    with_value: &'static str,
    /// Short options after which no inline code follows (`python -m`, `awk -f`).
    stop: &'static str,
    /// Whether the first operand is the program (awk) when no option gave one.
    operand_is_code: bool,
}

/// The index of the argument holding an interpreter's inline code.
fn inline_code(argv: &[String], f: &InlineFlags) -> Option<usize> {
    let mut i = 1;
    while i < argv.len() {
        let flags = match Arg::of(&argv[i], Plus::IsOperand) {
            Arg::EndOfOptions => {
                i += 1;
                break;
            }
            Arg::Operand => break,
            Arg::Long { name, value } => {
                if f.code_long.contains(&name) {
                    return Some(if value.is_some() { i } else { i + 1 })
                        .filter(|&j| j < argv.len());
                }
                if name == "file" || name == "exec" {
                    return None;
                }
                i += 1;
                continue;
            }
            Arg::Short(flags) => flags,
        };
        for (at, c) in flags.char_indices() {
            if f.stop.contains(c) {
                return None;
            }
            if f.code.contains(c) {
                let attached = at + 1 < flags.len();
                return Some(if attached { i } else { i + 1 }).filter(|&j| j < argv.len());
            }
            if f.with_value.contains(c) {
                if at + 1 == flags.len() {
                    i += 1;
                }
                break;
            }
        }
        i += 1;
    }
    (f.operand_is_code && i < argv.len()).then_some(i)
}

/// The options a program was given, and where its operands start.
#[derive(Debug, Default)]
struct Options {
    /// Each option seen: a short one as its letter, a long one as its name.
    flags: Vec<String>,
    /// For options with a value: the option and the index of the argument holding the value
    /// (the option's own argument when the value is attached).
    values: Vec<(String, usize)>,
    /// The first operand.
    next: usize,
    /// Whether `--` ended the options.
    dashes: bool,
}

impl Options {
    /// The index holding the value of the first of `names` given.
    fn code_of(&self, names: &[&str]) -> Option<usize> {
        self.values
            .iter()
            .find(|(n, _)| names.contains(&n.as_str()))
            .map(|&(_, i)| i)
    }
}

/// Reads getopt-style options from `argv[start..]`: short bundles (`-abc`, a value attached or
/// in the next argument for the letters in `short_value`), `--long`, `--long=value`,
/// `--long value` for the names in `long_value`, up to `--` or the first operand.
fn options(argv: &[String], start: usize, short_value: &str, long_value: &[&str]) -> Options {
    let mut o = Options::default();
    let mut i = start;
    while i < argv.len() {
        let flags = match Arg::of(&argv[i], Plus::IsOperand) {
            Arg::EndOfOptions => {
                o.dashes = true;
                i += 1;
                break;
            }
            Arg::Operand => break,
            Arg::Long { name, value } => {
                o.flags.push(name.to_owned());
                if value.is_some() {
                    o.values.push((name.to_owned(), i));
                } else if long_value.contains(&name) {
                    o.values.push((name.to_owned(), i + 1));
                    i += 1;
                }
                i += 1;
                continue;
            }
            Arg::Short(flags) => flags,
        };
        for (at, c) in flags.char_indices() {
            o.flags.push(c.to_string());
            if short_value.contains(c) {
                if at + c.len_utf8() == flags.len() {
                    o.values.push((c.to_string(), i + 1));
                    i += 1;
                } else {
                    o.values.push((c.to_string(), i));
                }
                break;
            }
        }
        i += 1;
    }
    o.next = i.min(argv.len());
    o.values.retain(|&(_, v)| v < argv.len());
    o
}

/// [`options`] for programs whose options may follow operands (GNU getopt's default order):
/// every option up to `--` or the end; `next` is then where `--` ended them, or the end.
fn options_anywhere(
    argv: &[String],
    start: usize,
    short_value: &str,
    long_value: &[&str],
) -> Options {
    let mut all = Options::default();
    let mut i = start;
    loop {
        let o = options(argv, i, short_value, long_value);
        all.flags.extend(o.flags);
        all.values.extend(o.values);
        all.next = o.next;
        if o.dashes || o.next >= argv.len() {
            return all;
        }
        i = o.next + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(argv, [(index, reader)])`: where the code is, and who reads it.
    type Case = (&'static [&'static str], &'static [(usize, &'static str)]);

    #[test]
    fn code_arguments_are_found_behind_wrappers_and_in_every_shell() {
        let cases: &[Case] = &[
            (&["sh", "-c", "S"], &[(2, "sh -c")]),
            (&["/bin/bash", "-lc", "S"], &[(2, "bash -c")]),
            (&["bash", "-e", "-c", "S", "bash", "arg"], &[(3, "bash -c")]),
            (&["bash", "-o", "pipefail", "-c", "S"], &[(4, "bash -c")]),
            (&["bash", "-c", "-x", "S"], &[(3, "bash -c")]),
            (&["zsh", "-xec", "S"], &[(2, "zsh -c")]),
            (&["dash", "-c", "S"], &[(2, "dash -c")]),
            (&["ksh", "-c", "S"], &[(2, "ksh -c")]),
            (&["fish", "-c", "S"], &[(2, "fish -c")]),
            (&["fish", "--command=S"], &[(1, "fish -c")]),
            (&["tcsh", "-c", "S"], &[(2, "tcsh -c")]),
            (&["env", "sh", "-c", "S"], &[(3, "sh -c")]),
            (
                &["/usr/bin/env", "-i", "A=1", "B=2", "bash", "-c", "S"],
                &[(6, "bash -c")],
            ),
            (&["env", "-u", "X", "sh", "-c", "S"], &[(5, "sh -c")]),
            // `env -S` splits its string into a command line itself, quotes and all.
            (&["env", "-S", "sh -c 'S'"], &[(2, "env -S")]),
            (&["env", "--split-string=sh -c 'S'"], &[(1, "env -S")]),
            (&["sudo", "sh", "-c", "S"], &[(3, "sh -c")]),
            (
                &["sudo", "-u", "deploy", "-E", "bash", "-lc", "S"],
                &[(6, "bash -c")],
            ),
            (&["sudo", "-s", "sh", "-c", "S"], &[(4, "sh -c")]),
            (&["env", "-", "sh", "-c", "S"], &[(4, "sh -c")]),
            (&["doas", "-u", "root", "sh", "-c", "S"], &[(5, "sh -c")]),
            (&["nice", "-n", "10", "sh", "-c", "S"], &[(5, "sh -c")]),
            (&["nohup", "sh", "-c", "S"], &[(3, "sh -c")]),
            (
                &["timeout", "-s", "KILL", "30s", "sh", "-c", "S"],
                &[(6, "sh -c")],
            ),
            (&["timeout", "30", "bash", "-c", "S"], &[(4, "bash -c")]),
            (&["xargs", "-I", "{}", "sh", "-c", "S"], &[(5, "sh -c")]),
            (&["xargs", "-0", "sh", "-c", "S"], &[(4, "sh -c")]),
            (&["busybox", "sh", "-c", "S"], &[(3, "sh -c")]),
            (&["stdbuf", "-oL", "sh", "-c", "S"], &[(4, "sh -c")]),
            (&["setsid", "sh", "-c", "S"], &[(3, "sh -c")]),
            (
                &[
                    "sudo", "env", "A=1", "nice", "timeout", "5", "sh", "-c", "S",
                ],
                &[(8, "sh -c")],
            ),
            (&["su", "-c", "S", "deploy"], &[(2, "su -c")]),
            (&["su", "deploy", "-c", "S"], &[(3, "su -c")]),
            (&["su", "-", "deploy", "--command=S"], &[(3, "su -c")]),
            (&["su", "-lcS"], &[(1, "su -c")]),
            (&["su", "--command", "S"], &[(2, "su -c")]),
            (
                &["runuser", "-u", "deploy", "--", "sh", "-c", "S"],
                &[(6, "sh -c")],
            ),
            (
                &["flock", "-w", "5", "/tmp/l", "-c", "S"],
                &[(5, "flock -c")],
            ),
            (&["flock", "/tmp/l", "--command", "S"], &[(3, "flock -c")]),
            (&["flock", "/tmp/l", "sh", "-c", "S"], &[(4, "sh -c")]),
            (&["watch", "-n", "5", "S"], &[(3, "watch")]),
            (&["watch", "-x", "sh", "-c", "S"], &[(4, "sh -c")]),
            (&["ssh", "host", "S"], &[(2, "ssh")]),
            (
                &["ssh", "-p", "22", "-o", "X=y", "host", "deploy", "S"],
                &[(6, "ssh"), (7, "ssh")],
            ),
            (&["ssh", "host"], &[]),
            (
                &["docker", "exec", "-u", "app", "web", "sh", "-c", "S"],
                &[(7, "sh -c")],
            ),
            (
                &["docker", "exec", "-it", "web", "bash", "-lc", "S"],
                &[(6, "bash -c")],
            ),
            (
                &["docker", "compose", "exec", "web", "sh", "-c", "S"],
                &[(6, "sh -c")],
            ),
            (
                &["podman", "run", "--rm", "-v", "a:b", "img", "sh", "-c", "S"],
                &[(8, "sh -c")],
            ),
            (
                &["kubectl", "exec", "-n", "x", "pod", "--", "sh", "-c", "S"],
                &[(8, "sh -c")],
            ),
            (
                &["find", ".", "-exec", "sh", "-c", "S", "{}", ";"],
                &[(5, "sh -c")],
            ),
            (&["python3", "-c", "S"], &[(2, "python3 -c")]),
            (&["python3.12", "-u", "-c", "S"], &[(3, "python3.12 -c")]),
            (&["python3", "-m", "http.server", "-c", "S"], &[]),
            (&["perl", "-lne", "S"], &[(2, "perl -e")]),
            (&["perl", "-eS"], &[(1, "perl -e")]),
            (&["ruby", "-e", "S"], &[(2, "ruby -e")]),
            (&["lua", "-l", "socket", "-e", "S"], &[(4, "lua -e")]),
            (
                &["script", "-q", "-c", "S", "/dev/null"],
                &[(3, "script -c")],
            ),
            (&["node", "--eval", "S"], &[(2, "node -e")]),
            (&["node", "-e", "S"], &[(2, "node -e")]),
            (&["php", "-r", "S"], &[(2, "php -r")]),
            (&["awk", "-F", ":", "S", "file"], &[(3, "awk")]),
            (&["awk", "-f", "prog.awk", "file"], &[]),
            // Not code: scripts and arguments.
            (&["sh", "deploy.sh", "S"], &[]),
            (&["sh", "--norc", "deploy.sh", "S"], &[]),
            (&["sh", "-c"], &[]),
            (&["bash", "-x", "deploy.sh", "-c", "S"], &[]),
            (&["python3", "deploy.py", "-c", "S"], &[]),
            (&["git", "commit", "-m", "S"], &[]),
            (&["env", "A=1", "deploy", "S"], &[]),
            (&["sudo", "deploy", "-c", "S"], &[]),
            (&["docker", "exec", "web", "deploy", "S"], &[]),
            (&["kubectl", "exec", "pod", "--", "deploy", "S"], &[]),
            (&[], &[]),
        ];
        for (argv, want) in cases {
            let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
            let got: Vec<(usize, String)> = code_arguments(&argv)
                .into_iter()
                .map(|c| (c.index, c.reader))
                .collect();
            let want: Vec<(usize, String)> = want.iter().map(|&(i, r)| (i, r.to_owned())).collect();
            assert_eq!(got, want, "{argv:?}");
        }
    }

    #[test]
    fn kinds_follow_the_reader() {
        let kind = |argv: &[&str]| {
            let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
            code_arguments(&argv)[0].kind
        };
        assert_eq!(kind(&["sh", "-c", "S"]), CodeKind::Script);
        assert_eq!(kind(&["ssh", "h", "S"]), CodeKind::ShellLine);
        assert_eq!(kind(&["su", "-c", "S"]), CodeKind::ShellLine);
        assert_eq!(kind(&["python3", "-c", "S"]), CodeKind::Program);
    }

    #[test]
    fn a_deep_chain_of_wrappers_ends() {
        let mut argv = vec!["nohup".to_owned(); 10_000];
        argv.extend(["sh".into(), "-c".into(), "S".into()]);
        assert!(code_arguments(&argv).is_empty());
    }
}
