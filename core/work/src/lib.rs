//! ktstr's worker loops and their statistics, shared by the scenario
//! workers of `ktstr-core` (one forked process per worker) and the `workers`
//! payload plugin (threads of one process), so both measure the same way.
//!
//! A loop runs on the calling thread (paired kinds add one partner thread)
//! until its [`Control`] says stop, counting work units there as they
//! happen, and returns a [`Tracker`] of what its threads observed. Spawning,
//! placement and reporting are the caller's.

mod loops;
mod pair;
mod stats;
mod tracker;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

pub use loops::run;
pub use stats::{percentile, Latencies, LatencySummary, MAX_SAMPLES};
pub use tracker::Tracker;

/// A loop kind with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loop {
    /// Burns CPU; a unit is 1000 rounds of integer arithmetic.
    Spin,
    /// `sched_yield` in a loop; a unit is one yield.
    Yield,
    /// Two threads wake each other through a futex; a unit is a round trip.
    Futex,
    /// Runs `duty` (0..=1) of each period, sleeps to its end on an absolute
    /// timer and records how late it woke; a unit is one period.
    SleepWake { duty: f64, period_ns: u64 },
    /// Two threads bounce a timestamp through two pipes; a unit is a round trip.
    Pipe,
    /// Forks children that `_exit` at once; a unit is one child reaped.
    ForkExit,
    /// Touches a working set of `bytes` page by page; a unit is one 4 KiB page.
    CacheThrash { bytes: usize },
}

impl Loop {
    /// Whether the loop records wake-up latencies.
    pub fn wakes(&self) -> bool {
        matches!(self, Loop::Futex | Loop::SleepWake { .. } | Loop::Pipe)
    }
}

/// How a running loop is steered and watched. `repr(C)` and valid when
/// zeroed, so it may live in a page shared with another process.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Control {
    /// Set to end the loop; it is seen within ~50 ms of the loop running.
    pub stop: AtomicBool,
    /// Bumped when the loop's allowed CPUs change: restarts `cpus_since_change`.
    pub epoch: AtomicU32,
    /// Work units so far, readable live.
    pub units: AtomicU64,
}

impl Control {
    #[inline]
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    #[inline]
    fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Relaxed)
    }

    #[inline]
    fn unit(&self) {
        self.units.fetch_add(1, Ordering::Relaxed);
    }
}

/// CLOCK_MONOTONIC in nanoseconds: comparable across the threads and
/// processes of one machine, unlike `Instant` which cannot be sent as a number.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into our timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests;
