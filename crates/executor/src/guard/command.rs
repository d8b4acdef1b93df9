//! `Command(run, timeout, env, cwd)`: passes when the program exits 0 within its timeout.
//!
//! The argv, env and cwd are templates rendered with the run's values; the process itself is
//! run by [`crate::process`]. The child also sees `WAYGATE_RUN_ID`, `WAYGATE_ENV` and
//! `WAYGATE_INITIATOR`, so scripts can tag what they report without extra `${..}` plumbing.
//! What it prints goes to the context's [`crate::live`] output, if any, as it comes.

use waygate_core::model::CommandCheck;
use waygate_core::outcome::Outcome;
use waygate_core::outputs::{parse as parse_outputs, OutputError, MAX_FILE, OUTPUT_ENV};

use crate::clock::human;
use crate::context::GuardContext;
use crate::error::ExecError;
use crate::guard::Verdict;
use crate::live::{Origin, Stream};
use crate::process::{run_process, run_process_tapped, Exit, ProcessOutput, ProcessSpec};

/// Runs the command once; `origin` tags its live output. A command that declares `outputs`
/// gets a fresh private file named by `$WAYGATE_OUTPUT` for this attempt alone, and passes
/// only if it wrote every declared key there (`waygate_core::outputs::parse`).
pub async fn check(check: &CommandCheck, ctx: &GuardContext, origin: &Origin) -> Verdict {
    let file = if check.outputs.is_empty() {
        None
    } else {
        // Created 0600 in the temporary directory and removed when dropped.
        match tempfile::Builder::new()
            .prefix("waygate-output-")
            .tempfile()
        {
            Ok(f) => Some(f),
            Err(e) => return Verdict::fail(format!("cannot create the ${OUTPUT_ENV} file: {e}")),
        }
    };
    let extra: Vec<(String, String)> = file
        .iter()
        .map(|f| (OUTPUT_ENV.to_owned(), f.path().display().to_string()))
        .collect();
    let out = match run(check, ctx, origin, extra).await {
        Ok(out) => out,
        Err(e) => return Verdict::fail(e.to_string()),
    };
    let v = verdict(check, ctx, &out);
    match file {
        Some(file) if v.outcome == Outcome::Pass => match published(file.path(), &check.outputs) {
            Ok(outputs) => {
                // What it printed of a secret it published is not kept either.
                let mut evidence = v.evidence.clone();
                for key in &check.secret_outputs {
                    if let (Some(e), Some(value)) = (evidence.as_mut(), outputs.get(key)) {
                        if !value.is_empty() {
                            *e = e.replace(value.as_str(), crate::context::REDACTED);
                        }
                    }
                }
                Verdict {
                    outputs,
                    evidence,
                    ..v
                }
            }
            Err(e) => Verdict::fail(format!("{}, but {e}", v.detail)).with_evidence(v.evidence),
        },
        _ => v,
    }
}

/// The declared values the command wrote to its output file.
fn published(
    path: &std::path::Path,
    declared: &[String],
) -> Result<std::collections::BTreeMap<String, String>, OutputError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let unreadable = |why: String| OutputError::Unreadable(why);
    // The command may have replaced the file: never follow a link, and never block opening
    // a named pipe nobody writes to; only a regular file is read.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => unreadable(not_regular("a symbolic link")),
            _ => unreadable(format!("cannot be read: {e}")),
        })?;
    let kind = file
        .metadata()
        .map_err(|e| unreadable(format!("cannot be read: {e}")))?
        .file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            // Dropping the temporary file would leave a directory behind.
            let _ = std::fs::remove_dir_all(path);
            "a directory"
        } else {
            "a special file"
        };
        return Err(unreadable(not_regular(what)));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(format!("cannot be read: {e}")))?;
    if bytes.len() > MAX_FILE {
        return Err(unreadable(format!("is over {MAX_FILE} bytes long")));
    }
    let text = String::from_utf8(bytes).map_err(|_| unreadable("is not UTF-8 text".to_owned()))?;
    parse_outputs(&text, declared)
}

/// Why a replaced output file is not read.
fn not_regular(what: &str) -> String {
    format!("is not a regular file (the command replaced it with {what}); write `key=value` lines to it")
}

/// Renders and runs the command, its output sent live where the context says, if anywhere;
/// `extra` is added to its environment.
pub(crate) async fn run(
    check: &CommandCheck,
    ctx: &GuardContext,
    origin: &Origin,
    extra: Vec<(String, String)>,
) -> Result<ProcessOutput, ExecError> {
    let mut spec = process_spec(check, ctx)?;
    spec.env.extend(extra);
    let Some(live) = &ctx.live else {
        return run_process(&spec).await;
    };
    let mut out = live.lines(ctx, origin, Stream::Stdout);
    let mut err = live.lines(ctx, origin, Stream::Stderr);
    run_process_tapped(&spec, Some(&mut out), Some(&mut err)).await
}

/// The concrete process for `check` in this run.
pub fn process_spec(check: &CommandCheck, ctx: &GuardContext) -> Result<ProcessSpec, ExecError> {
    let argv = check
        .run
        .iter()
        .map(|t| ctx.render(t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env = vec![
        ("WAYGATE_RUN_ID".to_owned(), ctx.run_id.clone()),
        ("WAYGATE_ENV".to_owned(), ctx.env.clone()),
        ("WAYGATE_INITIATOR".to_owned(), ctx.initiator.clone()),
    ];
    for (k, v) in &check.env {
        env.push((k.clone(), ctx.render(v)?));
    }
    let cwd = match &check.cwd {
        Some(t) => ctx.resolve_path(&ctx.render(t)?),
        None => ctx.workdir.clone(),
    };
    Ok(ProcessSpec {
        argv,
        env,
        cwd,
        timeout: check.timeout,
        grace: ctx.kill_grace,
        stop: ctx.stop.clone(),
    })
}

/// Pass on exit 0; the detail says how it ended, the evidence holds both output tails.
pub(crate) fn verdict(check: &CommandCheck, ctx: &GuardContext, out: &ProcessOutput) -> Verdict {
    let detail = match out.exit {
        Exit::Code(code) => format!("exit status {code}"),
        Exit::Signal(sig) => format!("killed by signal {sig}"),
        Exit::TimedOut { killed } => format!(
            "timed out after {}{}",
            human(check.timeout),
            if killed { " (killed)" } else { " (terminated)" }
        ),
        Exit::Stopped { signal, killed } => format!(
            "stopped: waygate received {signal}{}",
            if killed { " (killed)" } else { " (terminated)" }
        ),
    };
    let v = if out.exit == Exit::Code(0) {
        Verdict::pass(detail)
    } else {
        Verdict::fail(detail)
    };
    v.with_evidence(Some(evidence(ctx, out)))
}

/// Both streams' tails, redacted, each cut to half the evidence bound so stdout survives a
/// noisy stderr.
pub(crate) fn evidence(ctx: &GuardContext, out: &ProcessOutput) -> String {
    let half = waygate_core::outcome::MAX_EVIDENCE / 2 - 64;
    let mut text = String::new();
    for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if stream.total == 0 {
            continue;
        }
        let redacted = ctx.redact_tail(&stream.tail, stream.truncated);
        let kept = tail_chars(&redacted, half);
        let dropped = stream.total.saturating_sub(kept.len() as u64);
        if dropped > 0 {
            text.push_str(&format!(
                "--- {name} (last {} of {} bytes) ---\n",
                kept.len(),
                stream.total
            ));
        } else {
            text.push_str(&format!("--- {name} ---\n"));
        }
        text.push_str(kept);
        if !kept.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

/// The last `max` bytes of `text`, on a character boundary.
fn tail_chars(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use waygate_core::outcome::Outcome;

    use super::*;
    use crate::context::tests::ctx;

    async fn check_once(c: &CommandCheck, ctx: &GuardContext) -> Verdict {
        check(c, ctx, &Origin::Guard { name: "g".into() }).await
    }

    fn cmd(argv: &[&str]) -> CommandCheck {
        crate::test_support::command(argv, Duration::from_secs(10))
    }

    #[tokio::test]
    async fn exit_zero_passes_and_one_fails() {
        let c = ctx();
        let v = check_once(&cmd(&["true"]), &c).await;
        assert_eq!(
            (v.outcome, v.detail.as_str()),
            (Outcome::Pass, "exit status 0")
        );
        let v = check_once(&cmd(&["sh", "-c", "echo boom >&2; exit 1"]), &c).await;
        assert_eq!(
            (v.outcome, v.detail.as_str()),
            (Outcome::Fail, "exit status 1")
        );
        assert!(v.evidence.expect("stderr").contains("boom"));
    }

    #[tokio::test]
    async fn missing_program_fails_with_its_name() {
        let v = check_once(&cmd(&["waygate-no-such-program"]), &ctx()).await;
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.detail.contains("cannot run waygate-no-such-program"),
            "{}",
            v.detail
        );
    }

    #[tokio::test]
    async fn vars_are_rendered_and_secrets_redacted() {
        let v = check_once(
            &cmd(&[
                "sh",
                "-c",
                "echo v=${version} t=${token} id=$WAYGATE_RUN_ID",
            ]),
            &ctx(),
        )
        .await;
        let evidence = v.evidence.expect("stdout");
        assert!(evidence.contains("v=1.2 t=*** id=r1"), "{evidence}");
        assert!(!evidence.contains("s3cr3t"));
    }

    #[tokio::test]
    async fn missing_var_fails_clearly() {
        let v = check_once(&cmd(&["echo", "${nope}"]), &ctx()).await;
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.detail, "variable ${nope} has no value");
    }
}
