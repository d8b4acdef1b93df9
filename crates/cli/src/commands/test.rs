//! `waygate test SCENARIO..`: runs each scenario (docs/scenarios.md) through the real engine
//! with its guards' outcomes scripted (`waygate_executor::scenario`), and reports pass or fail
//! with the path the run took.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};
use waygate_core::duration::format_duration;
use waygate_core::scenario::{self, Scenario};
use waygate_core::text::escape_control;
use waygate_executor::scenario::Ran;

use crate::cli::Format;
use crate::exit::{CliError, Exit};
use crate::{diagnostics, workflow};

/// One scenario's result.
struct Outcome {
    file: String,
    name: String,
    ran: Option<Ran>,
    exit: Option<u8>,
    /// What did not match, or why it could not run; empty when it passed.
    problems: Vec<String>,
    millis: u128,
}

/// Runs the command.
pub fn run(files: &[PathBuf], format: Format) -> Result<Exit, CliError> {
    let mut outcomes = Vec::new();
    for path in files {
        let started = Instant::now();
        let mut outcome = one(path);
        outcome.millis = started.elapsed().as_millis();
        outcomes.push(outcome);
    }
    let failed = outcomes.iter().filter(|o| !o.problems.is_empty()).count();
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            let list: Vec<Value> = outcomes.iter().map(as_json).collect();
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&list).map_err(std::io::Error::from)?
            )?;
        }
        _ => {
            for o in &outcomes {
                out.write_all(human(o).as_bytes())?;
            }
            writeln!(
                out,
                "{} scenario{}: {} passed, {failed} failed",
                outcomes.len(),
                if outcomes.len() == 1 { "" } else { "s" },
                outcomes.len() - failed
            )?;
        }
    }
    Ok(Exit::of_tests(failed))
}

fn refused(file: &str, name: &str, problem: String) -> Outcome {
    Outcome {
        file: file.to_owned(),
        name: name.to_owned(),
        ran: None,
        exit: None,
        problems: vec![problem],
        millis: 0,
    }
}

/// Reads, checks and runs one scenario file.
fn one(path: &Path) -> Outcome {
    let file = path.display().to_string();
    let text = match workflow::read(path) {
        Ok(text) => text,
        Err(e) => return refused(&file, "", e.to_string()),
    };
    let read = scenario::read(&file, &text);
    let Some(scenario) = read.scenario else {
        eprint!("{}", diagnostics::render(&file, &text, &read.diagnostics));
        return refused(&file, "", "the scenario file has errors".into());
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let loaded = match workflow::load(&dir.join(&scenario.workflow)) {
        Ok(loaded) => loaded,
        Err(e) => return refused(&file, &scenario.name, e.to_string()),
    };
    let found = scenario::check(&scenario, &loaded.workflow, &file, &text);
    if !found.is_empty() {
        eprint!("{}", diagnostics::render(&file, &text, &found));
        return refused(
            &file,
            &scenario.name,
            "the scenario does not fit its workflow".into(),
        );
    }
    let ran = match waygate_executor::scenario::run(
        &scenario,
        &loaded.workflow,
        &loaded.file,
        &loaded.text,
    ) {
        Ok(ran) => ran,
        Err(e) => return refused(&file, &scenario.name, e.to_string()),
    };
    let exit = Exit::of_drive(&ran.end) as u8;
    Outcome {
        problems: mismatches(&scenario, &ran, exit),
        file,
        name: scenario.name,
        ran: Some(ran),
        exit: Some(exit),
        millis: 0,
    }
}

/// What the run did that the scenario did not expect.
fn mismatches(scenario: &Scenario, ran: &Ran, exit: u8) -> Vec<String> {
    let expect = &scenario.expect;
    let mut problems = Vec::new();
    if ran.looping {
        problems.push(format!(
            "stopped after {} moves: under this script the run goes round a loop without end",
            waygate_executor::scenario::MAX_MOVES
        ));
    }
    if ran.looked_too_often {
        problems.push(format!(
            "stopped after {} looks at the waiting run: its script asks for more waits than a scenario runs",
            waygate_executor::scenario::MAX_LOOKS
        ));
    }
    if ran.state != expect.state {
        problems.push(format!(
            "expected to end in `{}`, ended in `{}`",
            expect.state, ran.state
        ));
    }
    let status = expect.status.run_status();
    if ran.status != status {
        problems.push(format!(
            "expected status {}, got {}",
            status.as_str(),
            ran.status.as_str()
        ));
    }
    if let Some(want) = expect.exit.filter(|&want| want != exit) {
        problems.push(format!("expected exit {want}, got {exit}"));
    }
    if let Some(want) = expect.path.as_ref().filter(|&want| *want != ran.path) {
        problems.push(format!("expected path {}", want.join(" -> ")));
    }
    problems
}

fn human(o: &Outcome) -> String {
    let verdict = if o.problems.is_empty() {
        "PASS"
    } else {
        "FAIL"
    };
    let mut out = if o.name.is_empty() {
        format!("{verdict} {}\n", escape_control(&o.file))
    } else {
        format!(
            "{verdict} {} ({})\n",
            escape_control(&o.name),
            escape_control(&o.file)
        )
    };
    if let (Some(ran), Some(exit)) = (&o.ran, o.exit) {
        out.push_str(&format!(
            "  path: {}\n  ended: `{}`, {}, exit {exit}; {} guard evaluations, {} of run time in {}ms\n",
            escape_control(&ran.path.join(" -> ")),
            escape_control(&ran.state),
            ran.status.as_str(),
            ran.evaluations,
            format_duration(ran.took),
            o.millis
        ));
    }
    for r in o.ran.iter().flat_map(|r| r.refused.iter().chain(&r.unused)) {
        out.push_str(&format!("  note: {}\n", escape_control(r)));
    }
    for p in &o.problems {
        out.push_str(&format!("  {}\n", escape_control(p)));
    }
    out
}

fn as_json(o: &Outcome) -> Value {
    json!({
        "file": o.file,
        "name": o.name,
        "passed": o.problems.is_empty(),
        "problems": o.problems,
        "path": o.ran.as_ref().map(|r| &r.path),
        "state": o.ran.as_ref().map(|r| &r.state),
        "status": o.ran.as_ref().map(|r| r.status.as_str()),
        "exit": o.exit,
        "evaluations": o.ran.as_ref().map(|r| r.evaluations),
        "refused": o.ran.as_ref().map(|r| &r.refused),
        "unused": o.ran.as_ref().map(|r| &r.unused),
        "run_time_ms": o.ran.as_ref().map(|r| u64::try_from(r.took.as_millis()).unwrap_or(u64::MAX)),
        "elapsed_ms": o.millis,
    })
}
