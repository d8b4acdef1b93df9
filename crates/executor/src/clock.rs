//! Where "now" comes from.
//!
//! Waits, windows and watches compare the current instant with stored timestamps. The logic
//! itself is written as pure functions of `now` (see `guard::wait`, `guard::window`,
//! `guard::watch`); the [`Clock`] handed in through the [`crate::GuardContext`] only decides
//! which `now` they see, so tests can pin it ([`FixedClock`]) or tie it to tokio's pausable
//! timer ([`TokioClock`]).

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// A source of the current instant.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock; what production uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Always the same instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// `origin` plus the time elapsed on tokio's clock since creation, so that
/// `tokio::time::pause()` and `advance()` move it too.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `origin` now and advancing with tokio's timer.
    pub fn starting_at(origin: Timestamp) -> TokioClock {
        TokioClock {
            origin,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.start.elapsed()).unwrap_or(SignedDuration::MAX);
        self.origin.saturating_add(elapsed).unwrap_or(self.origin)
    }
}

/// `at + d`, saturating at the end of time rather than failing.
pub(crate) fn add(at: Timestamp, d: Duration) -> Timestamp {
    let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    at.saturating_add(d).unwrap_or(Timestamp::MAX)
}

/// `later - earlier` as a std duration, zero when `later` is not later.
pub(crate) fn since(later: Timestamp, earlier: Timestamp) -> Duration {
    Duration::try_from(later.duration_since(earlier)).unwrap_or(Duration::ZERO)
}

/// Durations shown to people: core's one formatter (`2h5m`, `45s`, `500ms`).
pub(crate) use waygate_core::duration::format_duration as human;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let origin: Timestamp = "2026-01-05T10:00:00Z".parse().expect("valid");
        let clock = TokioClock::starting_at(origin);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(
            clock.now(),
            "2026-01-05T10:01:30Z".parse::<Timestamp>().expect("valid")
        );
    }
}
