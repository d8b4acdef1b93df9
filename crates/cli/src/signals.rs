//! The signals that stop a command cleanly: SIGINT (Ctrl-C), SIGTERM (`kill`, a cancelled CI
//! job, a stopped container) and SIGHUP (a closed terminal). Only the commands that run guards
//! or actions listen (see `docs/cli.md`, "Signals"); the others keep the default, immediate
//! exit. A signal the parent set to be ignored stays ignored: `nohup waygate drive` must
//! outlive its terminal, and a shell's background job ignores Ctrl-C.

use std::sync::OnceLock;

use tokio::signal::unix::{signal, Signal as Stream, SignalKind};
use waygate_core::store::StopWaiting;
use waygate_executor::{Shutdown, Signal};

/// Starts listening for the three signals and returns the shutdown they fire. A signal whose
/// handler the OS refuses keeps its default action. A signal also ends any wait for a store a
/// neighbour holds (`stop_waiting`): the operator wants out, not to queue behind it.
pub fn listen(stop_waiting: &StopWaiting) -> Shutdown {
    let stop_waiting = stop_waiting.clone();
    let (trigger, shutdown) = Shutdown::new();
    let open = |number: libc::c_int, which: Signal| {
        if ignored(number) {
            return None;
        }
        match signal(SignalKind::from_raw(number)) {
            Ok(stream) => Some(stream),
            Err(e) => {
                tracing::warn!("cannot handle {which}: {e}");
                None
            }
        }
    };
    let mut int = open(libc::SIGINT, Signal::Interrupt);
    let mut term = open(libc::SIGTERM, Signal::Terminate);
    let mut hup = open(libc::SIGHUP, Signal::Hangup);
    tokio::spawn(async move {
        let which = tokio::select! {
            Some(()) = recv(&mut int) => Signal::Interrupt,
            Some(()) = recv(&mut term) => Signal::Terminate,
            Some(()) = recv(&mut hup) => Signal::Hangup,
            else => return,
        };
        let _ = RECEIVED.set(which);
        stop_waiting.stop();
        trigger.fire(which);
        // The handlers stay installed: later signals are absorbed while the command records
        // the stop and exits, which takes a moment, not a hang.
        std::future::pending::<()>().await;
    });
    shutdown
}

/// The first of the three signals this process received, if any.
static RECEIVED: OnceLock<Signal> = OnceLock::new();

/// The signal that stopped this command, if one did: an error that followed from it (a wait
/// for the store that it ended) is an interruption, not a failure (`exit.rs`).
pub fn received() -> Option<Signal> {
    RECEIVED.get().copied()
}

/// Whether `number` is set to be ignored (inherited from the parent, as `nohup` does).
fn ignored(number: libc::c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `current`,
    // a zeroed plain-data struct it fully owns.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(number, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

async fn recv(stream: &mut Option<Stream>) -> Option<()> {
    match stream {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
