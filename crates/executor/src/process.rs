//! Running a program so that it can never outlive the guard that started it.
//!
//! The program runs from an argv (never through a shell) in its own process group, with
//! stdin closed. Its stdout and stderr are drained concurrently into bounded tails, so a
//! child printing gigabytes neither blocks on a full pipe nor fills our memory. On timeout
//! the whole group gets SIGTERM, then SIGKILL after a grace period; so does it on an operator's
//! stop when the spec carries one ([`ProcessSpec::stop`]). Once the leader is reaped,
//! the group is killed again, so grandchildren that were left behind (and may hold the pipes
//! open) go too; reading after the leader's exit is bounded in time as well. If the future is
//! dropped half-way (cancellation, Ctrl-C), a drop guard kills the group. That matters
//! doubly because the child's own process group does not receive the terminal's Ctrl-C. If
//! waygate itself is SIGKILLed, no guard runs; on Linux a parent-death signal still takes the
//! leader with it.
//!
//! Live output is a tap on each stream ([`Tap`]): every read is handed over as it comes and
//! nothing more is kept than the tails.
//!
//! This module never sees secrets in redactable form, so its log lines carry pids only,
//! never argv.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::time::{timeout, Instant};

use crate::error::ExecError;

/// How many bytes of each stream are kept (the tail). Twice the evidence bound, so that
/// redaction can shorten the text and still leave a full evidence tail.
pub const CAPTURE_BYTES: usize = 2 * waygate_core::outcome::MAX_EVIDENCE;

/// After the leader exits on its own, how long its output may keep flowing (from processes
/// it left behind) before the group is killed.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);
/// After the group is killed, how long to wait for the pipes to close. Only a process that
/// left the group (`setsid`) can hold them longer; it is abandoned, not waited for.
const DRAIN_AFTER_KILL: Duration = Duration::from_secs(1);

/// What to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Environment added to the inherited one.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Time allowed before the group is terminated.
    pub timeout: Duration,
    /// Pause between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// An operator's stop to honour like a timeout (SIGTERM to the group, SIGKILL after
    /// `grace`), so the program can clean up; `None`: only a timeout or a drop ends it early.
    pub stop: Option<crate::shutdown::Shutdown>,
}

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal (not ours) ended it.
    Signal(i32),
    /// It ran past its timeout and its group was terminated; `killed` when SIGTERM was not
    /// enough and SIGKILL followed.
    TimedOut {
        /// SIGKILL was needed.
        killed: bool,
    },
    /// An operator's stop ([`ProcessSpec::stop`]) terminated its group.
    Stopped {
        /// The signal waygate received.
        signal: crate::shutdown::Signal,
        /// SIGKILL was needed.
        killed: bool,
    },
}

/// The kept end of one output stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// The last [`CAPTURE_BYTES`] bytes (at most).
    pub tail: Vec<u8>,
    /// Bytes read in all.
    pub total: u64,
    /// Whether bytes before `tail` were dropped.
    pub truncated: bool,
}

impl Captured {
    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        self.tail.extend_from_slice(bytes);
        // Compact only when twice over, so the copying stays amortised O(1) per byte.
        if self.tail.len() > 2 * CAPTURE_BYTES {
            let cut = self.tail.len() - CAPTURE_BYTES;
            self.tail.drain(..cut);
            self.truncated = true;
        }
    }

    fn finish(&mut self) {
        if self.tail.len() > CAPTURE_BYTES {
            let cut = self.tail.len() - CAPTURE_BYTES;
            self.tail.drain(..cut);
            self.truncated = true;
        }
    }
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct ProcessOutput {
    /// How it ended.
    pub exit: Exit,
    /// Standard output's tail.
    pub stdout: Captured,
    /// Standard error's tail.
    pub stderr: Captured,
    /// Wall time from spawn to the last byte read.
    pub duration: Duration,
}

/// Kills a process group when dropped, unless disarmed: the guarantee that nothing survives
/// a cancelled evaluation.
#[derive(Debug)]
struct GroupKill {
    pgid: libc::pid_t,
    armed: bool,
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

fn signal_group(pgid: libc::pid_t, signal: libc::c_int) {
    if pgid <= 1 {
        return; // never signal "every process" or init's group
    }
    // SAFETY: killpg has no memory-safety preconditions; a stale group id yields ESRCH.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

/// Receives one stream's bytes as they are read, for live output ([`crate::live`]). Its
/// futures may wait (a slow reader of the output): the reading waits with them, and so, once
/// the pipe is full, does the child, while its timeout keeps running.
pub trait Tap: Send {
    /// Bytes just read.
    fn bytes(&mut self, bytes: &[u8]) -> impl Future<Output = ()> + Send;
    /// The stream ended (or is abandoned): flush what is held.
    fn end(&mut self) -> impl Future<Output = ()> + Send;
}

/// The tap of a process without live output.
#[derive(Debug)]
pub enum NoTap {}

impl Tap for NoTap {
    async fn bytes(&mut self, _: &[u8]) {}
    async fn end(&mut self) {}
}

/// Runs `spec` to completion (or timeout) and returns its exit and bounded output.
pub async fn run_process(spec: &ProcessSpec) -> Result<ProcessOutput, ExecError> {
    run_process_tapped::<NoTap>(spec, None, None).await
}

/// [`run_process`], also handing each stream's bytes to its tap as they are read.
pub async fn run_process_tapped<T: Tap>(
    spec: &ProcessSpec,
    mut out_tap: Option<&mut T>,
    mut err_tap: Option<&mut T>,
) -> Result<ProcessOutput, ExecError> {
    let program = spec.argv.first().ok_or(ExecError::EmptyCommand)?;
    let started = Instant::now();
    let mut command = Command::new(program);
    command
        .args(&spec.argv[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    die_with_parent(&mut command);
    let mut child = command.spawn().map_err(|source| ExecError::Spawn {
        program: program.clone(),
        cwd: std::path::absolute(&spec.cwd).unwrap_or_else(|_| spec.cwd.clone()),
        source,
    })?;
    let pgid = child
        .id()
        .and_then(|id| libc::pid_t::try_from(id).ok())
        .unwrap_or(0);
    let mut group = GroupKill { pgid, armed: true };
    tracing::debug!(pid = pgid, "spawned");
    let wait_err = |source| ExecError::Wait {
        program: program.clone(),
        source,
    };

    let (mut stdout, mut stderr) = (Captured::default(), Captured::default());
    let exit = {
        let out_pipe = child.stdout.take();
        let err_pipe = child.stderr.take();
        let readers = async {
            tokio::join!(
                drain(out_pipe, &mut stdout, out_tap.as_deref_mut()),
                drain(err_pipe, &mut stderr, err_tap.as_deref_mut())
            );
        };
        tokio::pin!(readers);
        let waiter = supervise(&mut child, pgid, spec);
        tokio::pin!(waiter);
        let mut readers_done = false;
        let exit = loop {
            tokio::select! {
                exit = &mut waiter => break exit.map_err(wait_err)?,
                () = &mut readers, if !readers_done => readers_done = true,
            }
        };
        if !readers_done && timeout(DRAIN_AFTER_EXIT, &mut readers).await.is_err() {
            signal_group(pgid, libc::SIGKILL);
            if timeout(DRAIN_AFTER_KILL, &mut readers).await.is_err() {
                tracing::warn!(
                    pid = pgid,
                    "output still unread after killing the group: its pipes are held open, \
                     or live output is not being taken"
                );
            }
        }
        exit
    };
    // Leftovers of the group (background grandchildren) die with the guard. The leader is
    // reaped, but the id stays reserved while any member lives; when none does, the id could
    // only have been reused if the kernel's sequential pid allocation wrapped around in the
    // microseconds since the reap.
    signal_group(pgid, libc::SIGKILL);
    group.armed = false;
    tracing::debug!(pid = pgid, ?exit, "finished");
    let duration = started.elapsed();
    // What a stream held without a final line break; bounded in time like the reading, in
    // case the output's reader is stuck.
    let ends = async {
        for tap in [out_tap, err_tap].into_iter().flatten() {
            tap.end().await;
        }
    };
    let _ = timeout(DRAIN_AFTER_KILL, ends).await;
    stdout.finish();
    stderr.finish();
    Ok(ProcessOutput {
        exit,
        stdout,
        stderr,
        duration,
    })
}

/// Asks the kernel to SIGKILL the program if waygate dies first, which no drop guard survives
/// (`kill -9`): otherwise a guard or action would run on unsupervised, and the re-run of an
/// interrupted action could overlap it. Only the leader is covered; what it started itself
/// may outlive it. (Strictly it is the spawning thread's death that counts; the runtime's
/// threads live as long as the process.)
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    // SAFETY: getpid, prctl, getppid and _exit are async-signal-safe, as a pre_exec hook
    // (run in the forked child before exec) requires; no memory is allocated or shared.
    unsafe {
        let parent = libc::getpid();
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The parent died between fork and prctl: the signal will never come.
            if libc::getppid() != parent {
                libc::_exit(137);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// Waits for the leader; past the timeout, or on an operator's stop, terminates the group
/// (TERM, grace, KILL) and reaps.
async fn supervise(
    child: &mut tokio::process::Child,
    pgid: libc::pid_t,
    spec: &ProcessSpec,
) -> io::Result<Exit> {
    let stop = async {
        match &spec.stop {
            Some(stop) => stop.wait().await,
            None => std::future::pending().await,
        }
    };
    let stopped = tokio::select! {
        waited = timeout(spec.timeout, child.wait()) => match waited {
            Ok(status) => return Ok(exit_of(status?)),
            Err(_) => None,
        },
        signal = stop => Some(signal),
    };
    signal_group(pgid, libc::SIGTERM);
    // Whatever it exits with now, it was cut short. Anything that ignored the TERM is killed
    // with the group after the reap.
    let killed = timeout(spec.grace, child.wait()).await.is_err();
    if killed {
        signal_group(pgid, libc::SIGKILL);
        child.wait().await?;
    }
    Ok(match stopped {
        Some(signal) => Exit::Stopped { signal, killed },
        None => Exit::TimedOut { killed },
    })
}

fn exit_of(status: ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        (None, None) => Exit::Code(-1),
    }
}

/// Reads `pipe` to its end, keeping the tail in `into` and passing every read to `tap`. A
/// read error ends the stream.
async fn drain(
    pipe: Option<impl AsyncRead + Unpin>,
    into: &mut Captured,
    mut tap: Option<&mut impl Tap>,
) {
    let Some(mut pipe) = pipe else { return };
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                into.push(&chunk[..n]);
                if let Some(tap) = tap.as_deref_mut() {
                    tap.bytes(&chunk[..n]).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_the_tail() {
        let mut c = Captured::default();
        for i in 0..100u8 {
            c.push(&[i; 1000]);
        }
        c.finish();
        assert_eq!(c.total, 100_000);
        assert!(c.truncated);
        assert_eq!(c.tail.len(), CAPTURE_BYTES);
        assert_eq!(*c.tail.last().expect("non-empty"), 99);
    }

    #[test]
    fn short_output_is_kept_whole() {
        let mut c = Captured::default();
        c.push(b"hello");
        c.finish();
        assert_eq!(
            (c.tail.as_slice(), c.total, c.truncated),
            (&b"hello"[..], 5, false)
        );
    }
}
