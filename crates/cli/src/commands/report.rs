//! `audit report`: gathers the runs in scope, their events and pinned workflows, verifies the
//! chain, and writes the HTML that `waygate_view::report` renders, to a new file (an existing
//! one is never replaced: a report is evidence, and an older report is too).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;

use waygate_core::event::Event;
use waygate_core::run::{Run, RunId};
use waygate_core::store::{EventFilter, RunFilter};
use waygate_core::validate::pinned_workflow;
use waygate_view::report::{render, Report, RunReport};

use crate::app::{process_clock, run_id, shell_word};
use crate::cli::ReportArgs;
use crate::exit::{CliError, Exit};
use crate::ops::Ops;
use crate::output;
use waygate_executor::Clock as _;

/// Runs the command.
pub fn run(ops: &Ops, args: &ReportArgs) -> Result<Exit, CliError> {
    // `--since` after `--until` was refused before the store was opened
    // (`Command::check_time_window`).
    let since = args.since.as_ref().map(|t| t.at);
    let until = args.until.as_ref().map(|t| t.at);
    // `--out -` is stdout, as for every Unix tool; a file named `-` is `--out ./-`.
    let to_stdout = args.out.as_os_str() == "-";
    // Before any work: an existing file is refused, not replaced (checked again, atomically,
    // when the report is written).
    if !to_stdout && args.out.exists() {
        return Err(exists(&args.out));
    }
    // Not among the store's files: the store would take the report for one of its own (a
    // journal segment) and overwrite it.
    if !to_stdout && ops.store_holds(&args.out)? {
        return Err(CliError::BadInput(format!(
            "{} is inside the store ({}): an audit report is written outside the store it \
             reports on; choose a file elsewhere",
            args.out.display(),
            ops.store_name()
        )));
    }

    // A damaged store may refuse to list its runs (a journal that lost its last events): the
    // report is written all the same, saying so, since that is what an auditor most needs to see.
    let (runs, unlisted) = match runs_in_scope(ops, args) {
        Ok(runs) => (runs, None),
        Err(CliError::Store(e)) if e.is_damage() => (Vec::new(), Some(e.to_string())),
        Err(e) => return Err(e),
    };
    let in_window = |r: &Run| r.going_between(since, until);
    let reports: Vec<RunReport> = runs
        .into_iter()
        .filter(in_window)
        .map(|run| run_report(|id| ops.run_with_events(id).map_err(|e| e.to_string()), run))
        .collect();
    // The store's own events (a salvage); a damaged store may not give them, which the
    // report says, as it says the verification.
    let store_events = ops
        .scan_events(&EventFilter {
            kind: Some("StoreSalvaged".into()),
            ..EventFilter::default()
        })
        .map_err(|e| e.to_string());
    // After reading the runs: the head covers every event the report shows.
    let verification = ops.verify(None)?;
    let exported_at = process_clock().now();

    // Neither a URL's password nor a server token (were one typed as an argument) goes into
    // a report that is handed around.
    let command = std::env::args_os()
        .map(|a| shell_word(&ops.without_token(&redact(&a.to_string_lossy()))))
        .collect::<Vec<_>>()
        .join(" ");
    let store = redact(&ops.store_name());
    let scope = scope(args);
    let html = render(&Report {
        runs: &reports,
        unlisted: unlisted.as_deref(),
        store_events: store_events.as_deref().map_err(String::as_str),
        verification: &verification,
        exported_at,
        command: &command,
        store: &store,
        scope: &scope,
        version: env!("CARGO_PKG_VERSION"),
    });
    if to_stdout {
        output::print(&html).map_err(|e| match e {
            CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                CliError::ReportCutOff(e)
            }
            e => e,
        })?;
    } else {
        write_new(&args.out, html.as_bytes())?;
    }

    let events: usize = reports.iter().map(|r| r.events.len()).sum();
    let written = if to_stdout {
        "the report to stdout".into()
    } else {
        waygate_core::text::escape_control(&args.out.to_string_lossy()).into_owned()
    };
    let mut text = format!(
        "wrote {written}: {} run{}, {events} events\n",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
    );
    match (&verification.first_bad, &verification.head) {
        (None, Some(h)) => text.push_str(&format!(
            "ok: {} events, checksums and hash chain intact\nhead: event {} {}\n",
            verification.events, h.seq, h.hash
        )),
        (None, None) => text.push_str("ok: no events yet\n"),
        (Some(b), _) => text.push_str(&format!(
            "BAD: event {}: {} (the report says so)\n",
            b.seq,
            waygate_core::text::escape_control(&b.problem)
        )),
    }
    if let Some(why) = &unlisted {
        text.push_str(&format!(
            "BAD: the runs cannot be read: {} (the report says so)\n",
            waygate_core::text::escape_control(why)
        ));
    }
    for r in &reports {
        if let Some(why) = &r.unreadable {
            text.push_str(&format!(
                "BAD: the events of run {} cannot be read: {} (the report says so)\n",
                waygate_core::text::escape_control(r.run.id.as_str()),
                waygate_core::text::escape_control(why)
            ));
        }
    }
    // With the HTML on stdout, what was written goes where progress goes: stdout stays the
    // report alone.
    if to_stdout {
        eprint!("{text}");
    } else {
        output::print(&text)?;
    }
    let complete = unlisted.is_none() && reports.iter().all(|r| r.unreadable.is_none());
    Ok(Exit::of_report(verification.is_ok(), complete))
}

/// One run's part of the report: its record and its events in one `read`
/// (`Store::load_run_with_events`, one snapshot on every backend; one status request to a
/// server: [`Ops::run_with_events`]), so a run that moves while
/// the report is made is shown as it was at one moment, its header agreeing with its timeline.
/// `listed` (the run as the scope was chosen from) is what is shown when that read fails: a
/// damaged record must not hide the rest, so the run is reported without its events, saying
/// why, and the command exits 1.
fn run_report(
    read: impl FnOnce(&RunId) -> Result<(Run, Vec<Event>), String>,
    listed: Run,
) -> RunReport {
    let (run, events, unreadable) = match read(&listed.id) {
        Ok((run, events)) => (run, events, None),
        Err(e) => (listed, Vec::new(), Some(e)),
    };
    // Runs of one workflow share a few definitions: each is read once (the pinned cache).
    let workflow = pinned_workflow(&run.definition_hash, &run.file, &run.definition)
        .map(|w| (*w).clone())
        .map_err(|diagnostics| {
            diagnostics
                .iter()
                .find(|d| d.is_error())
                .map(|d| d.message.clone())
                .unwrap_or_else(|| "the definition does not make a workflow".into())
        });
    RunReport {
        run,
        workflow,
        events,
        unreadable,
    }
}

/// The runs the flags name: `--run` ones (each must exist), else all; `--workflow` and `--env`
/// narrow either. Oldest first, each once.
fn runs_in_scope(ops: &Ops, args: &ReportArgs) -> Result<Vec<Run>, CliError> {
    let filter = RunFilter {
        workflow: args.workflow.clone(),
        env: args.env.clone(),
        status: None,
    };
    if args.runs.is_empty() {
        return ops.list_runs(&filter);
    }
    let mut seen = BTreeSet::new();
    let mut runs = Vec::new();
    for id in &args.runs {
        let id = run_id(id);
        if !seen.insert(id.clone()) {
            continue;
        }
        let (run, _) = ops.run_with_events(&id)?;
        let matches = filter.workflow.as_ref().is_none_or(|w| *w == run.workflow)
            && filter.env.as_ref().is_none_or(|e| *e == run.env);
        if matches {
            runs.push(run);
        }
    }
    runs.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
    Ok(runs)
}

/// The scope as the report states it.
fn scope(args: &ReportArgs) -> Vec<(String, String)> {
    let mut scope = Vec::new();
    if !args.runs.is_empty() {
        scope.push(("Runs".into(), args.runs.join(", ")));
    }
    let text = |t: &Option<crate::cli::Time>| t.as_ref().map(|t| t.text.clone());
    let flags = [
        ("Workflow", args.workflow.clone()),
        ("Environment", args.env.clone()),
        ("Still going at or after", text(&args.since)),
        ("Started at or before", text(&args.until)),
    ];
    for (what, value) in flags {
        if let Some(v) = value {
            scope.push((what.into(), v));
        }
    }
    scope
}

/// A URL's password, if a word holds one, as `***`: `postgres://ana:s3cret@db/w` becomes
/// `postgres://ana:***@db/w`. The report is handed around; a store URL's password must not be.
fn redact(word: &str) -> String {
    let Some(scheme_end) = word.find("://") else {
        return word.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &word[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return word.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return word.to_owned();
    };
    format!(
        "{}{}***{}",
        &word[..rest_start],
        &authority[..=colon],
        &word[rest_start + at..]
    )
}

fn exists(path: &Path) -> CliError {
    CliError::BadInput(format!(
        "{} exists: an audit report is never replaced; choose another file name, or remove \
         the old report first",
        path.display()
    ))
}

/// Writes `bytes` to `path`, which must not exist: into a file beside it that has no name
/// until it is complete, then linked into place only if nothing is there, so a reader never
/// sees half a report, two reports to one name cannot both win, and a report stopped part-way
/// (Ctrl-C, `kill -9`, a power cut) leaves nothing behind. A file system that cannot make a
/// nameless file (`O_TMPFILE`) gets a named temporary instead, removed on every error.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let cannot =
        |e: std::io::Error| CliError::BadInput(format!("cannot write {}: {e}", path.display()));
    let linked = match Nameless::create(dir) {
        Ok(Some(mut file)) => {
            file.0.write_all(bytes).map_err(cannot)?;
            file.0.sync_all().map_err(cannot)?;
            file.link_as(path)
        }
        Ok(None) => write_named(dir, path, bytes).map_err(cannot)?,
        Err(e) => return Err(cannot(e)),
    };
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists(path)),
        Err(e) => Err(cannot(e)),
    }
}

/// A new file in a directory, with no name there (`O_TMPFILE`): nothing to clean up if the
/// process dies before it is linked.
struct Nameless(std::fs::File);

impl Nameless {
    /// The file, or `None` when `dir`'s file system cannot make one.
    fn create(dir: &Path) -> std::io::Result<Option<Nameless>> {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Readable as any new file is (the umask applies), not private like a temporary file.
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .mode(0o666)
            .custom_flags(libc::O_TMPFILE)
            .open(dir);
        match opened {
            Ok(file) => Ok(Some(Nameless(file))),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Gives the file the name `path`, which must not exist (`AlreadyExists` otherwise).
    fn link_as(self, path: &Path) -> std::io::Result<()> {
        use std::os::fd::AsRawFd as _;
        use std::os::unix::ffi::OsStrExt as _;
        let from = std::ffi::CString::new(format!("/proc/self/fd/{}", self.0.as_raw_fd()))
            .map_err(std::io::Error::other)?;
        let to =
            std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
        // SAFETY: both are valid NUL-terminated paths that live across the call; linkat only
        // reads them.
        let done = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if done == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// [`write_new`] where there is no nameless file: a named temporary beside `path`, removed
/// when anything fails (a process killed while writing leaves it, which cannot be helped).
fn write_named(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<std::io::Result<()>> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".waygate-report-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    Ok(tmp.persist_noclobber(path).map(|_| ()).map_err(|e| e.error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use waygate_core::event::{Cause, EventKind, NewEvent};
    use waygate_core::store::{
        MemoryStore, RunChange, Store, StoreError, VerifyReport, Write, Written,
    };

    /// A store on which run `review` moves to `done` just before any read of the run's record
    /// or events is answered, once: what a `drive` in another process does while a report is
    /// being made.
    struct MovesDuringTheReport {
        inner: MemoryStore,
        moved: AtomicBool,
    }

    impl MovesDuringTheReport {
        fn move_once(&self, id: &RunId) {
            if self.moved.swap(true, Ordering::SeqCst) {
                return;
            }
            let run = self.inner.load_run(id).expect("run");
            let moved = EventKind::Transitioned {
                from: "review".into(),
                to: "done".into(),
                cause: Cause::Advance,
                reason: None,
            };
            self.inner
                .commit(
                    id,
                    run.version,
                    RunChange::to_state("done"),
                    vec![NewEvent::new("bob", moved)],
                )
                .expect("moves");
        }
    }

    impl Store for MovesDuringTheReport {
        fn write(&self, write: Write) -> Result<Written, StoreError> {
            self.inner.write(write)
        }
        fn load_run(&self, id: &RunId) -> Result<Run, StoreError> {
            self.move_once(id);
            self.inner.load_run(id)
        }
        fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
            self.inner.list_runs(filter)
        }
        fn run_events(&self, id: &RunId) -> Result<Vec<Event>, StoreError> {
            self.move_once(id);
            self.inner.run_events(id)
        }
        fn load_run_with_events(&self, id: &RunId) -> Result<(Run, Vec<Event>), StoreError> {
            self.move_once(id);
            self.inner.load_run_with_events(id)
        }
        fn scan_events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
            self.inner.scan_events(filter)
        }
        fn verify(&self) -> Result<VerifyReport, StoreError> {
            self.inner.verify()
        }
    }

    /// A run that moves while the report is made is shown as it was at one moment: its header
    /// (state, version) agrees with its timeline.
    #[test]
    fn a_run_moving_during_the_report_is_shown_consistently() {
        let store = MovesDuringTheReport {
            inner: MemoryStore::new(),
            moved: AtomicBool::new(false),
        };
        let now = jiff::Timestamp::now();
        let run = Run::new(
            RunId::generate(now),
            "gate",
            "dev",
            "review",
            "ana",
            "gate.ron",
            "",
        );
        let started = EventKind::RunStarted {
            workflow: "gate".into(),
            env: "dev".into(),
            state: "review".into(),
            file: "gate.ron".into(),
            definition_hash: run.definition_hash.clone(),
            vars: Default::default(),
            workdir: None,
            file_path: None,
        };
        store
            .create_run(run, vec![NewEvent::new("ana", started)])
            .expect("created");
        let listed = store.list_runs(&RunFilter::default()).expect("listed");
        let [listed] = listed.as_slice() else {
            panic!("one run: {listed:?}")
        };
        assert_eq!(listed.state, "review");
        let report = run_report(
            |id| store.load_run_with_events(id).map_err(|e| e.to_string()),
            listed.clone(),
        );
        let last_move = report.events.iter().rev().find_map(|e| match &e.kind {
            EventKind::Transitioned { to, .. } => Some(to.as_str()),
            _ => None,
        });
        assert_eq!(
            (report.run.state.as_str(), last_move, report.run.version),
            ("done", Some("done"), 2),
            "the header says {} (version {}), the timeline {:?}",
            report.run.state,
            report.run.version,
            report.events
        );
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        // (word, shown)
        let cases = [
            (
                "postgres://ana:s3cret@db:5432/w",
                "postgres://ana:***@db:5432/w",
            ),
            (
                "--store=postgres://ana:p@ss@db/w",
                "--store=postgres://ana:***@db/w",
            ),
            ("postgres://ana@db/w", "postgres://ana@db/w"),
            (
                "https://example.invalid/a:b@c",
                "https://example.invalid/a:b@c",
            ),
            ("--out", "--out"),
            ("report.html", "report.html"),
        ];
        for (word, shown) in cases {
            assert_eq!(redact(word), shown, "{word}");
        }
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A report stopped while it is written (Ctrl-C, `kill -9`) leaves nothing behind: until
    /// it is whole, the file has no name in the directory.
    #[test]
    fn a_report_has_no_name_until_it_is_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut file = Nameless::create(dir.path())
            .expect("create")
            .expect("this file system makes nameless files");
        file.0.write_all(b"<!DOCTYPE html>").expect("write");
        assert!(
            names_in(dir.path()).is_empty(),
            "{:?}",
            names_in(dir.path())
        );
        let path = dir.path().join("r.html");
        file.link_as(&path).expect("linked");
        assert_eq!(names_in(dir.path()), ["r.html"]);
        assert_eq!(std::fs::read(&path).expect("read"), b"<!DOCTYPE html>");
        // Never over an existing file.
        let second = Nameless::create(dir.path()).expect("create").expect("made");
        let refused = second.link_as(&path).expect_err("exists");
        assert_eq!(refused.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).expect("read"), b"<!DOCTYPE html>");
    }
}
