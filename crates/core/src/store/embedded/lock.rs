//! The embedded store's lock, `DIR/LOCK`: an exclusive `flock` for every operation that reads
//! through sled or writes, a shared one for readers without write access (`replay.rs`) and for
//! salvage. The kernel releases it when a process dies, so it never outlives its holder.
//!
//! Nobody holds it for long (commands hold it only while they read or commit, `audit verify`
//! only to look at where the journal ends), but a neighbour can: a rebuild of a large store,
//! a process stopped with Ctrl-Z in the middle of an operation, a bulk import holding the
//! store. A waiting operation retries with backoff for up to `Options::lock_timeout`, and
//! meanwhile tells `Options::on_wait` who holds the lock (pid and command line, from
//! `/proc/locks`), so a caller that waits without limit (the CLI) can say why it waits.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::journal;
use super::options::Options;
use crate::store::StoreError;

/// A process holding the store's lock, as far as the system tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// Its process id (`None` where the system does not say, e.g. another pid namespace).
    pub pid: Option<u32>,
    /// Its command line, shortened (`None` when it cannot be read).
    pub command: Option<String>,
    /// True for a shared (reader's) lock, false for an exclusive one.
    pub shared: bool,
}

/// What an operation waiting for the lock knows: who holds it and for how long it has waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockWait {
    /// The store directory.
    pub dir: PathBuf,
    /// Who holds the lock now (empty when that cannot be found out).
    pub holders: Vec<LockHolder>,
    /// How long the operation has waited so far.
    pub waited: Duration,
}

/// Called while an operation waits for the store's lock: after a second of waiting, then
/// whenever the holders change and at least every ten seconds.
#[derive(Clone)]
pub struct WaitNotice(pub Arc<dyn Fn(&LockWait) + Send + Sync>);

impl std::fmt::Debug for WaitNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitNotice")
    }
}

impl PartialEq for WaitNotice {
    fn eq(&self, other: &WaitNotice) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for WaitNotice {}

/// A flag that, once set, makes every operation waiting for the store's lock stop waiting
/// and fail with [`StoreError::Locked`] (the CLI sets it on Ctrl-C: an operator who gives up
/// on a store held by a neighbour gets the prompt back). An operation that finds the lock
/// free takes it regardless.
#[derive(Debug, Clone, Default)]
pub struct StopWaiting(pub Arc<AtomicBool>);

impl StopWaiting {
    /// Stops every wait, now and later, once it has waited a moment (`STOPPED_GRACE`).
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl PartialEq for StopWaiting {
    fn eq(&self, other: &StopWaiting) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for StopWaiting {}

/// Whether `e` means "no write access here" (permissions, a read-only file system).
pub(crate) fn is_read_only(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied
        || e.raw_os_error() == Some(libc::EROFS)
        || e.raw_os_error() == Some(libc::EACCES)
}

/// Takes `DIR/LOCK` exclusively, waiting as [`Options`] says: every write to the embedded
/// store passes here first, so a store this user may not write to is said here, once.
pub(crate) fn lock(dir: &Path, options: &Options) -> Result<File, StoreError> {
    let path = dir.join("LOCK");
    let file = journal::create_options(&path)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|source| {
            if is_read_only(&source) {
                StoreError::NotWritable {
                    location: dir.display().to_string(),
                    path: path.clone(),
                    source,
                }
            } else {
                StoreError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
    flock(dir, file, libc::LOCK_EX, options)
}

/// Takes `DIR/LOCK` shared, for a reader without write access: it keeps writers out while it
/// reads (so it never sees half a commit) and needs only read access to the lock file. `None`
/// when the lock file cannot be opened even for reading: the reader reads without it.
pub(crate) fn lock_shared(dir: &Path, options: &Options) -> Result<Option<File>, StoreError> {
    match File::open(dir.join("LOCK")) {
        Ok(file) => flock(dir, file, libc::LOCK_SH, options).map(Some),
        Err(_) => Ok(None),
    }
}

/// `flock(file, mode)`, retrying with backoff (1 ms doubling to 50 ms) for up to the lock
/// timeout, telling `options.on_wait` who holds it meanwhile.
fn flock(dir: &Path, file: File, mode: i32, options: &Options) -> Result<File, StoreError> {
    let start = Instant::now();
    let timeout = options.lock_timeout;
    let mut delay = Duration::from_millis(1);
    let mut told: Option<(Instant, Vec<LockHolder>)> = None;
    loop {
        // SAFETY: flock on a descriptor we own, kept open by `file`; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), mode | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(file);
        }
        let err = std::io::Error::last_os_error();
        let busy = err.raw_os_error() == Some(libc::EWOULDBLOCK)
            || err.raw_os_error() == Some(libc::EINTR);
        if !busy {
            return Err(StoreError::Io {
                path: dir.join("LOCK"),
                source: err,
            });
        }
        let waited = start.elapsed();
        // A stopped wait still gets a moment: the operator's stop is itself recorded under
        // this lock, and a neighbour's `status` holds it for an instant, not for good.
        let stopped = options
            .stop_waiting
            .as_ref()
            .is_some_and(StopWaiting::stopped);
        if waited >= timeout || (stopped && waited >= STOPPED_GRACE) {
            return Err(StoreError::Locked {
                location: dir.display().to_string(),
                waited,
            });
        }
        if let Some(notice) = &options.on_wait {
            if waited >= Duration::from_secs(1) {
                let mut holders = holders(&file);
                // `/proc/locks` changes while it is read; a look that finds nobody while the
                // lock is plainly held missed its line, and is not news.
                if holders.is_empty() {
                    if let Some((_, before)) = &told {
                        holders = before.clone();
                    }
                }
                let due = match &told {
                    None => true,
                    Some((at, before)) => *before != holders || at.elapsed() >= TELL_EVERY,
                };
                if due {
                    (notice.0)(&LockWait {
                        dir: dir.to_owned(),
                        holders: holders.clone(),
                        waited,
                    });
                    told = Some((Instant::now(), holders));
                }
            }
        }
        std::thread::sleep(delay.min(timeout - waited));
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// How long a wait goes on after it is told to stop (see [`StopWaiting`]): long enough for a
/// lock held for an instant, short enough that Ctrl-C still feels immediate.
const STOPPED_GRACE: Duration = Duration::from_secs(2);

/// How often a waiting operation repeats who holds the lock when nothing changes.
const TELL_EVERY: Duration = Duration::from_secs(10);

/// Who holds a `flock` on `file`: the lines of `/proc/locks` for its device and inode (Linux;
/// elsewhere, or when it cannot be read, nobody is named).
fn holders(file: &File) -> Vec<LockHolder> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = file.metadata() else {
        return Vec::new();
    };
    let Some(locks) = read_at_once(Path::new("/proc/locks")) else {
        return Vec::new();
    };
    let dev = meta.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let wanted = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let mut out = Vec::new();
    for line in locks.lines() {
        // "1: FLOCK  ADVISORY  WRITE 4242 08:01:131 0 EOF" (a "->" marks a waiter: skipped).
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"FLOCK") || fields.get(5) != Some(&wanted.as_str()) {
            continue;
        }
        let pid = fields
            .get(4)
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|p| *p > 0);
        out.push(LockHolder {
            pid,
            command: pid.and_then(command_line),
            shared: fields.get(3) == Some(&"READ"),
        });
    }
    out
}

/// The whole of a `/proc` file read with as few `read` calls as possible: the kernel builds each
/// call's answer afresh, so lines added or removed between two small reads shift the rest and a
/// line can be missed (seen on a busy machine, where every `cargo` holds locks).
fn read_at_once(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut file = File::open(path).ok()?;
    let mut buf = vec![0u8; 1 << 18];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).ok()
}

/// The command line of process `pid`, arguments joined by spaces, at most 120 characters.
fn command_line(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text: String = String::from_utf8_lossy(&raw)
        .split('\0')
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    })
}
