//! Per-run locks that say "a process is running this run's entry actions right now".
//!
//! The journal records `ActionStarted` before an action runs and `ActionFinished` after, so
//! an action started but not finished is either still running in some process or was cut off
//! by that process dying. Only the second may be run again (the crash rule). The process
//! running a run's actions therefore holds the run's lock, and the lock must be released when
//! that process dies however it dies (`kill -9` included): a lock that can be taken means
//! nobody is running the actions, and a lock that cannot means somebody is.
//!
//! [`RunLocks`] is that promise; the engine knows nothing else. Whoever opens the store
//! supplies the implementation that fits it (the CLI, `app.rs`): [`FileRunLocks`], a `flock`
//! per run beside the embedded store, released by the kernel; a store shared between machines
//! needs a lease that expires instead.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use waygate_core::run::RunId;

/// Who is running a run's entry actions: at most one process at a time, and a process that
/// dies lets go. See the module docs.
pub trait RunLocks: Send + Sync + std::fmt::Debug {
    /// Takes the lock of `run`, waiting briefly (a tenth of a second or so) for someone who
    /// only looks ([`FileRunLocks::is_held`]); `None` if another process runs its actions.
    fn take(&self, run: &RunId) -> io::Result<Option<RunLock>>;

    /// Whether another process holds the lock of `run` now. Must not be asked by a process
    /// that holds it itself. Needs only read access: `status` by a reader who may not write.
    fn is_held(&self, run: &RunId) -> io::Result<bool>;
}

/// A held run lock; released when dropped (or when the process dies).
pub struct RunLock {
    _held: Box<dyn Send + Sync>,
}

impl RunLock {
    /// A lock held for as long as `held` lives (a locked file, a lease's keeper).
    pub fn new(held: impl Send + Sync + 'static) -> RunLock {
        RunLock {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for RunLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunLock")
    }
}

/// [`RunLocks`] as an exclusive `flock` on `DIR/<run id>` (the CLI uses `STORE/locks`).
///
/// The files are opened close-on-exec, so the actions' own child processes never inherit
/// (and never keep holding) the lock. They are left in place when a run ends: one empty file
/// per run, and removing a file another process may be about to lock would let two processes
/// hold "the" lock on two different files.
#[derive(Debug, Clone)]
pub struct FileRunLocks {
    dir: PathBuf,
}

impl RunLocks for FileRunLocks {
    fn take(&self, run: &RunId) -> io::Result<Option<RunLock>> {
        FileRunLocks::take(self, run)
    }

    fn is_held(&self, run: &RunId) -> io::Result<bool> {
        FileRunLocks::is_held(self, run)
    }
}

impl FileRunLocks {
    /// Locks kept in `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> FileRunLocks {
        FileRunLocks { dir: dir.into() }
    }

    /// Takes the lock of `run` if no other process holds it; `None` if one does.
    pub fn try_lock(&self, run: &RunId) -> io::Result<Option<RunLock>> {
        create_dir(&self.dir)?;
        let file = open(&self.path(run))?;
        // SAFETY: flock on a descriptor we own, kept open by `file`; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(RunLock::new(file)));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(err)
        }
    }

    /// Takes the lock of `run`, trying again for about a tenth of a second before answering
    /// `None`: [`FileRunLocks::is_held`] (asked by `status`) holds it for an instant to find out,
    /// and must not make a process that wants to run actions give up. A process running
    /// actions holds it far longer than that.
    pub fn take(&self, run: &RunId) -> io::Result<Option<RunLock>> {
        for pause_ms in [5, 10, 20, 40, 40] {
            if let Some(lock) = self.try_lock(run)? {
                return Ok(Some(lock));
            }
            std::thread::sleep(std::time::Duration::from_millis(pause_ms));
        }
        self.try_lock(run)
    }

    /// Whether another process holds the lock of `run` now. Must not be asked by a process
    /// that holds it itself (flock locks belong to open files: it would see itself as other).
    /// Needs only read access (a shared lock, taken for an instant): `status` by a reader who
    /// may not write to the store.
    pub fn is_held(&self, run: &RunId) -> io::Result<bool> {
        let file = match File::open(self.path(run)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        // SAFETY: flock on a descriptor we own, kept open by `file`; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(false);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(true)
        } else {
            Err(err)
        }
    }

    fn path(&self, run: &RunId) -> PathBuf {
        self.dir.join(run.as_str())
    }
}

/// Creates `dir` (parents too) with the permissions of the directory it is created in: the
/// store's, which is private to its owner (see `docs/storage.md`).
fn create_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let mode = std::fs::metadata(parent).map_or(0o700, |m| m.permissions().mode() & 0o777);
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

fn open(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let parent = path.parent().unwrap_or(Path::new("."));
    let mode = std::fs::metadata(parent).map_or(0o700, |m| m.permissions().mode() & 0o666);
    // std opens with O_CLOEXEC: child processes do not inherit the descriptor.
    OpenOptions::new()
        .mode(mode)
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_not_taken_twice_and_is_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let locks = FileRunLocks::new(dir.path().join("locks"));
        let run = RunId("r1".into());
        assert!(!locks.is_held(&run).expect("is_held"));
        let held = locks.try_lock(&run).expect("lock").expect("free");
        assert!(locks.try_lock(&run).expect("lock").is_none());
        assert!(locks.is_held(&run).expect("is_held"));
        drop(held);
        assert!(locks.try_lock(&run).expect("lock").is_some());
    }

    #[test]
    fn take_outwaits_a_lock_held_for_an_instant() {
        let dir = tempfile::tempdir().expect("tempdir");
        let locks = FileRunLocks::new(dir.path());
        let run = RunId("r1".into());
        let probe = locks.try_lock(&run).expect("lock").expect("free");
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(probe);
        });
        assert!(locks.take(&run).expect("take").is_some());
        release.join().expect("joined");
    }
}
