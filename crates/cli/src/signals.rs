//! The signals that stop a command cleanly: SIGINT (Ctrl-C), SIGTERM (`kill`, a cancelled CI
//! job, a stopped container) and SIGHUP (a closed terminal). Only the commands that run guards
//! or actions listen (see `docs/cli.md`, "Signals"); the others keep the default, immediate
//! exit.

use tokio::signal::unix::{signal, Signal as Stream, SignalKind};
use waygate_executor::{Shutdown, Signal};

/// Starts listening for the three signals and returns the shutdown they fire. A signal whose
/// handler the OS refuses keeps its default action.
pub fn listen() -> Shutdown {
    let (trigger, shutdown) = Shutdown::new();
    let open = |kind: SignalKind, which: Signal| match signal(kind) {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::warn!("cannot handle {which}: {e}");
            None
        }
    };
    let mut int = open(SignalKind::interrupt(), Signal::Interrupt);
    let mut term = open(SignalKind::terminate(), Signal::Terminate);
    let mut hup = open(SignalKind::hangup(), Signal::Hangup);
    tokio::spawn(async move {
        let which = tokio::select! {
            Some(()) = recv(&mut int) => Signal::Interrupt,
            Some(()) = recv(&mut term) => Signal::Terminate,
            Some(()) = recv(&mut hup) => Signal::Hangup,
            else => return,
        };
        trigger.fire(which);
        // The handlers stay installed: later signals are absorbed while the command records
        // the stop and exits, which takes a moment, not a hang.
        std::future::pending::<()>().await;
    });
    shutdown
}

async fn recv(stream: &mut Option<Stream>) -> Option<()> {
    match stream {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
