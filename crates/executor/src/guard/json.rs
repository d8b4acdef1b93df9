//! `Json(file, pointer, equals)`: passes when the value at an RFC 6901 pointer in a JSON file
//! equals the expected value (feature flags, config switches).
//!
//! Each way of not getting a value (no file, not JSON, no such pointer) fails with a detail
//! that says which, since "flags-conservative failed" alone sends people hunting.
//!
//! The file is read within bounds: only a regular file (a device such as `/dev/zero` streams
//! for ever, a named pipe blocks until someone writes), at most [`MAX_FILE`] bytes, within
//! [`READ_TIMEOUT`] (a hung network mount). See `docs/workflow-format.md` ("Json").

use std::fs::{File, FileType};
use std::future::Future;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use waygate_core::model::JsonCheck;

use crate::context::GuardContext;
use crate::guard::Verdict;

/// The largest file read; config files are small, and a huge one is a mistake to report.
pub const MAX_FILE: u64 = 16 * 1024 * 1024;

/// How long reading the file may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the file and compares the value.
pub async fn check(check: &JsonCheck, ctx: &GuardContext) -> Verdict {
    let name = match ctx.render(&check.file) {
        Ok(n) => n,
        Err(e) => return Verdict::fail(e.to_string()),
    };
    let path = ctx.resolve_path(&name);
    let text = match read_within(READ_TIMEOUT, read_blocking(path)).await {
        Ok(t) => t,
        Err(e) => return Verdict::fail(e.detail(&name)),
    };
    let doc: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => return Verdict::fail(format!("{name} is not JSON: {e}")),
    };
    compare(&doc, &check.pointer, &check.equals, &name)
}

/// Why the file gave no text.
#[derive(Debug)]
enum ReadError {
    /// Nothing at this path (absolute: the run's directory joined with the name), so the
    /// detail says where it looked.
    NotFound(PathBuf),
    Io(std::io::Error),
    NotRegular(&'static str),
    TooLarge(u64),
    TimedOut(Duration),
}

impl ReadError {
    fn detail(&self, name: &str) -> String {
        match self {
            ReadError::NotFound(looked) => {
                format!("file {name} not found (looked for {})", looked.display())
            }
            ReadError::Io(e) => format!("cannot read {name}: {e}"),
            ReadError::NotRegular(what) => {
                format!("{name} is {what}, not a regular file; only regular files are read")
            }
            ReadError::TooLarge(n) => {
                format!("{name} is too large (more than {MAX_FILE} bytes; {n} read)")
            }
            ReadError::TimedOut(d) => {
                format!("reading {name} took longer than {}s", d.as_secs())
            }
        }
    }
}

/// Reads the file on a blocking thread, giving up after `limit`. (A read stuck in the kernel
/// cannot be cancelled; its thread ends when the read does, and the guard fails now.)
async fn read_within(
    limit: Duration,
    read: impl Future<Output = Result<Vec<u8>, ReadError>>,
) -> Result<Vec<u8>, ReadError> {
    tokio::time::timeout(limit, read)
        .await
        .unwrap_or(Err(ReadError::TimedOut(limit)))
}

async fn read_blocking(path: PathBuf) -> Result<Vec<u8>, ReadError> {
    tokio::task::spawn_blocking(move || read_bounded(&path))
        .await
        .unwrap_or_else(|e| Err(ReadError::Io(std::io::Error::other(e))))
}

/// Looks before opening (opening some devices has effects of its own), opens without
/// blocking (a named pipe with no writer would block `open` itself), checks the opened file's
/// type again (the path may have been swapped in between), then reads at most one byte more
/// than [`MAX_FILE`] so a file that grows is still caught.
fn read_bounded(path: &Path) -> Result<Vec<u8>, ReadError> {
    let not_found = |e: std::io::Error| match e.kind() {
        ErrorKind::NotFound => {
            ReadError::NotFound(std::path::absolute(path).unwrap_or_else(|_| path.to_owned()))
        }
        _ => ReadError::Io(e),
    };
    let before = std::fs::metadata(path).map_err(not_found)?;
    if !before.is_file() {
        return Err(ReadError::NotRegular(type_name(before.file_type())));
    }
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(not_found)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(type_name(meta.file_type())));
    }
    if meta.len() > MAX_FILE {
        return Err(ReadError::TooLarge(meta.len()));
    }
    let mut text = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_FILE + 1)
        .read_to_end(&mut text)
        .map_err(ReadError::Io)?;
    if text.len() as u64 > MAX_FILE {
        return Err(ReadError::TooLarge(text.len() as u64));
    }
    Ok(text)
}

fn type_name(t: FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

/// The pure part: the value at `pointer` in `doc` against `expected`.
pub fn compare(doc: &Value, pointer: &str, expected: &Value, name: &str) -> Verdict {
    let Some(found) = doc.pointer(pointer) else {
        return Verdict::fail(format!("no value at {pointer} in {name}"));
    };
    let shown = if pointer.is_empty() {
        "the document"
    } else {
        pointer
    };
    if found == expected {
        Verdict::pass(format!("{shown} is {found}"))
    } else {
        Verdict::fail(format!("{shown} is {found}, expected {expected}"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use waygate_core::outcome::Outcome;
    use waygate_core::template::Template;

    use super::*;
    use crate::context::tests::ctx;

    fn check_of(file: &str, pointer: &str, equals: Value) -> JsonCheck {
        JsonCheck {
            file: Template::parse(file).expect("valid"),
            pointer: pointer.into(),
            equals,
        }
    }

    #[test]
    fn compare_cases() {
        let doc = json!({"flags": {"fsm": false, "list": [1, 2]}});
        let cases = [
            (
                "/flags/fsm",
                json!(false),
                Outcome::Pass,
                "/flags/fsm is false",
            ),
            (
                "/flags/fsm",
                json!(true),
                Outcome::Fail,
                "/flags/fsm is false, expected true",
            ),
            (
                "/flags/list/1",
                json!(2),
                Outcome::Pass,
                "/flags/list/1 is 2",
            ),
            (
                "/flags/nope",
                json!(1),
                Outcome::Fail,
                "no value at /flags/nope in f.json",
            ),
        ];
        for (pointer, expected, outcome, detail) in cases {
            let v = compare(&doc, pointer, &expected, "f.json");
            assert_eq!(
                (v.outcome, v.detail.as_str()),
                (outcome, detail),
                "{pointer}"
            );
        }
    }

    #[tokio::test]
    async fn file_problems_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bad.json"), "{not json").expect("write");
        std::fs::write(dir.path().join("good.json"), r#"{"on": true}"#).expect("write");
        let mut c = ctx();
        c.workdir = dir.path().to_owned();

        let v = check(&check_of("missing.json", "/on", json!(true)), &c).await;
        assert_eq!(
            v.detail,
            format!(
                "file missing.json not found (looked for {})",
                dir.path().join("missing.json").display()
            )
        );
        let v = check(&check_of("bad.json", "/on", json!(true)), &c).await;
        assert!(
            v.detail.starts_with("bad.json is not JSON: "),
            "{}",
            v.detail
        );
        let v = check(&check_of("good.json", "/off", json!(true)), &c).await;
        assert_eq!(v.detail, "no value at /off in good.json");
        let v = check(&check_of("${run.env}/../good.json", "/on", json!(true)), &c).await;
        assert_eq!(v.outcome, Outcome::Fail, "staging/ does not exist");
        let v = check(&check_of("good.json", "/on", json!(true)), &c).await;
        assert_eq!(v.outcome, Outcome::Pass);
    }

    #[tokio::test]
    async fn dev_zero_is_refused_without_reading_it() {
        let started = std::time::Instant::now();
        let v = check(&check_of("/dev/zero", "/on", json!(true)), &ctx()).await;
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.detail,
            "/dev/zero is a character device, not a regular file; only regular files are read"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_named_pipe_without_writer_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("flags.json");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: mkfifo reads a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let mut c = ctx();
        c.workdir = dir.path().to_owned();
        let v = tokio::time::timeout(
            Duration::from_secs(30),
            check(&check_of("flags.json", "/on", json!(true)), &c),
        )
        .await
        .expect("the check does not hang on a named pipe");
        assert_eq!(
            v.detail,
            "flags.json is a named pipe, not a regular file; only regular files are read"
        );
        let v = check(&check_of(".", "/on", json!(true)), &c).await;
        assert_eq!(
            v.detail,
            ". is a directory, not a regular file; only regular files are read"
        );
    }

    #[tokio::test]
    async fn a_file_over_the_bound_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = File::create(dir.path().join("big.json")).expect("create");
        big.set_len(MAX_FILE + 1).expect("sparse file");
        let mut c = ctx();
        c.workdir = dir.path().to_owned();
        let v = check(&check_of("big.json", "/on", json!(true)), &c).await;
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.detail.starts_with("big.json is too large"),
            "{}",
            v.detail
        );
        // Exactly at the bound is read (and is not JSON: zeros).
        big.set_len(MAX_FILE).expect("shrink");
        let v = check(&check_of("big.json", "/on", json!(true)), &c).await;
        assert!(v.detail.starts_with("big.json is not JSON"), "{}", v.detail);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_that_never_returns_times_out() {
        let v = read_within(READ_TIMEOUT, std::future::pending()).await;
        assert!(matches!(v, Err(ReadError::TimedOut(d)) if d == READ_TIMEOUT));
        assert_eq!(
            ReadError::TimedOut(READ_TIMEOUT).detail("f.json"),
            "reading f.json took longer than 10s"
        );
    }
}
