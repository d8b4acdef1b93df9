//! `waygate validate [--policy FILE].. FILE..`: every diagnostic of every file, and every rule
//! of every policy broken (docs/policies.md); exit 1 if any is an error.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use waygate_core::diagnostic::{Code, Diagnostic, Severity};
use waygate_core::policy::{self, Policy};
use waygate_core::text::escape_control;
use waygate_core::validate::validate;

use crate::cli::Format;
use crate::exit::{CliError, Exit};
use crate::{diagnostics, workflow};

/// Everything found so far, and the text for people.
struct Report {
    all: Vec<Diagnostic>,
    human: String,
    human_wanted: bool,
}

impl Report {
    /// A file that cannot be read: said once, on stderr for people, as a finding in JSON.
    fn unreadable(&mut self, d: Diagnostic) {
        if self.human_wanted {
            eprintln!("error: {}", escape_control(&d.to_string()));
            if let Some(help) = &d.help {
                eprintln!("  help: {help}");
            }
        }
        self.all.push(d);
    }

    /// The findings in one file, rendered with its text, and its summary line.
    fn file(&mut self, name: &str, text: &str, found: Vec<Diagnostic>, summary: bool) {
        if self.human_wanted {
            self.human
                .push_str(&diagnostics::render(name, text, &found));
            if summary {
                self.human.push_str(&summary_line(name, &found));
            }
        }
        self.all.extend(found);
    }
}

fn summary_line(name: &str, found: &[Diagnostic]) -> String {
    let shown = escape_control(name);
    let errors = found.iter().filter(|d| d.is_error()).count();
    let warnings = found.len() - errors;
    match (errors, warnings) {
        (0, 0) => format!("{shown}: ok\n"),
        (0, w) => format!("{shown}: ok, {w} warning{}\n", plural(w)),
        (e, w) => format!(
            "{shown}: {e} error{}, {w} warning{}\n",
            plural(e),
            plural(w)
        ),
    }
}

/// Policy files read so far, by path, each read (and its own findings reported) once.
#[derive(Default)]
struct Policies {
    read: HashMap<PathBuf, Option<Policy>>,
}

impl Policies {
    fn load(&mut self, path: &Path, report: &mut Report) -> Option<&Policy> {
        if !self.read.contains_key(path) {
            let policy = Self::read(path, report);
            self.read.insert(path.to_owned(), policy);
        }
        self.read.get(path).and_then(Option::as_ref)
    }

    fn read(path: &Path, report: &mut Report) -> Option<Policy> {
        let name = path.display().to_string();
        let text = match workflow::read(path) {
            Ok(text) => text,
            Err(CliError::File(d)) => {
                report.unreadable(*d);
                return None;
            }
            Err(_) => return None,
        };
        let read = policy::read(&name, &text);
        if !read.diagnostics.is_empty() {
            report.file(&name, &text, read.diagnostics, true);
        }
        read.policy
    }
}

/// Runs the command.
pub fn run(files: &[PathBuf], policy_files: &[PathBuf], format: Format) -> Result<Exit, CliError> {
    let mut report = Report {
        all: Vec::new(),
        human: String::new(),
        human_wanted: matches!(format, Format::Human | Format::Csv),
    };
    let mut policies = Policies::default();
    for path in policy_files {
        policies.load(path, &mut report);
    }
    for path in files {
        let name = path.display().to_string();
        let text = match workflow::read(path) {
            Ok(text) => text,
            Err(CliError::File(d)) => {
                report.unreadable(*d);
                continue;
            }
            Err(e) => return Err(e),
        };
        let validated = validate(&name, &text);
        let mut found = validated.diagnostics;
        // A rule naming what the workflow lacks is found in its policy, and rendered with it.
        let (mut in_policies, mut shown) = (Vec::new(), String::new());
        let mut unchecked = Vec::new();
        if let Some(workflow) = &validated.workflow {
            let dir = path.parent().unwrap_or(Path::new(""));
            // `validate` refused `..` and absolute paths; a symbolic link must not lead out
            // either (what does not parse is shown, and would be another file's lines).
            let inside = |p: &PathBuf| {
                let (Ok(p), Ok(d)) = (p.canonicalize(), dir.canonicalize()) else {
                    return true; // a missing file is reported as such
                };
                p.starts_with(d)
            };
            let (own, outside): (Vec<PathBuf>, Vec<PathBuf>) = workflow
                .policies
                .iter()
                .map(|p| dir.join(p))
                .partition(inside);
            for p in outside {
                let shown = escape_control(&p.display().to_string()).into_owned();
                unchecked.push(shown.clone());
                report.unreadable(Diagnostic::whole_file(
                    &name,
                    Code::BadValue,
                    format!("policy {shown} leads out of the workflow's directory (a symbolic link); give it with `--policy` instead"),
                ));
            }
            // One check per policy, however many ways it is named (`--policy` and `policies`).
            let mut seen = std::collections::HashSet::new();
            let named = policy_files.iter().cloned().chain(own);
            for policy_path in named.filter(|p| seen.insert(p.canonicalize().unwrap_or(p.clone())))
            {
                let Some(policy) = policies.load(&policy_path, &mut report) else {
                    unchecked.push(escape_control(&policy_path.display().to_string()).into_owned());
                    continue;
                };
                let (here, there): (Vec<_>, Vec<_>) = policy::check(policy, workflow, &name, &text)
                    .into_iter()
                    .partition(|d| d.file == name);
                found.extend(here);
                if report.human_wanted && !there.is_empty() {
                    shown.push_str(&diagnostics::render(&policy.file, &policy.text, &there));
                }
                in_policies.extend(there);
            }
        }
        found.sort_by_key(|d| (d.line, d.column));
        let mut summary = summary_line(&name, &[found.as_slice(), &in_policies].concat());
        if !unchecked.is_empty() {
            // A policy that cannot be read or has errors proves nothing about this workflow.
            summary.pop();
            summary.push_str(&format!(
                " (not checked against {}: see above)\n",
                unchecked.join(", ")
            ));
        }
        report.human.push_str(&shown);
        report.file(&name, &text, found, false);
        report.all.extend(in_policies);
        if report.human_wanted {
            report.human.push_str(&summary);
        }
    }
    let Report { all, human, .. } = report;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&all).map_err(std::io::Error::from)?
        )?,
        Format::Jsonl => {
            for d in &all {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(d).map_err(std::io::Error::from)?
                )?;
            }
        }
        Format::Human | Format::Csv | Format::Svg => out.write_all(human.as_bytes())?,
    }
    if all.iter().any(|d| d.severity == Severity::Error) {
        return Ok(Exit::Error);
    }
    Ok(Exit::Ok)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
