//! Where "now" comes from.
//!
//! Waits, windows and watches compare the current instant with stored timestamps. The logic
//! itself is written as pure functions of `now` (see `guard::wait`, `guard::window`,
//! `guard::watch`); the [`Clock`] handed in through the [`crate::GuardContext`] only decides
//! which `now` they see: the process's clock in production ([`ProcessClock`]: the wall time
//! once, then monotonic, docs/storage.md "Times and clocks"), or in tests a pinned one
//! ([`FixedClock`]) or one tied to tokio's pausable timer ([`TokioClock`]).

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// A source of the current instant.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock, read afresh each time: it jumps when the wall clock is set.
/// Engines use [`ProcessClock`] instead.
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

/// The process's clock: `origin` (the wall time, read once) plus the time elapsed since on a
/// monotonic clock. Waits and watches measured with it neither stretch nor skip when the wall
/// clock is set while they run, and the store stamps the process's writes with it too. On
/// Linux the monotonic clock is `CLOCK_BOOTTIME`, which keeps counting while the machine is
/// suspended, so a `drive` resumed after a suspend does not see windows and deadlines as of
/// before it.
#[derive(Debug, Clone, Copy)]
pub struct ProcessClock {
    origin: Timestamp,
    start: Monotonic,
}

impl ProcessClock {
    /// The clock of a process whose wall clock reads `origin` now.
    pub fn starting_at(origin: Timestamp) -> ProcessClock {
        ProcessClock {
            origin,
            start: Monotonic::now(),
        }
    }

    /// The clock of this process, from the wall clock now.
    pub fn starting_now() -> ProcessClock {
        ProcessClock::starting_at(Timestamp::now())
    }
}

impl Clock for ProcessClock {
    fn now(&self) -> Timestamp {
        add(self.origin, self.start.elapsed())
    }
}

/// A monotonic reading: boot time where the system has it, else std's monotonic clock.
#[derive(Debug, Clone, Copy)]
enum Monotonic {
    Boot(Duration),
    Std(std::time::Instant),
}

impl Monotonic {
    fn now() -> Monotonic {
        boot_time().map_or_else(
            || Monotonic::Std(std::time::Instant::now()),
            Monotonic::Boot,
        )
    }

    fn elapsed(&self) -> Duration {
        match self {
            Monotonic::Boot(start) => boot_time()
                .map(|now| now.saturating_sub(*start))
                .unwrap_or_default(),
            Monotonic::Std(start) => start.elapsed(),
        }
    }
}

/// Time since boot, suspended time included (Linux `CLOCK_BOOTTIME`).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn boot_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives on this stack frame.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } == 0;
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    ok.then(|| Duration::new(secs, nanos))
}

/// No boot-time clock here: std's monotonic clock is used instead.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn boot_time() -> Option<Duration> {
    None
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

    /// The process clock reads the wall clock once: whatever the wall clock does afterwards,
    /// it advances with the monotonic clock from its origin.
    #[test]
    fn the_process_clock_reads_the_wall_clock_once() {
        let origin: Timestamp = "2026-01-05T10:00:00Z".parse().expect("valid");
        let clock = ProcessClock::starting_at(origin);
        std::thread::sleep(Duration::from_millis(50));
        let now = clock.now();
        assert!(now >= origin + SignedDuration::from_millis(50), "{now}");
        assert!(now < origin + SignedDuration::from_secs(60), "{now}");
        let later = clock.now();
        assert!(later >= now);
    }

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
