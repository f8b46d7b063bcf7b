//! Work types as worker processes, for scenarios run by the guest init.
//!
//! Each worker is one forked process (the init is single-threaded, so
//! forking is sound). It waits at a gate until the parent has put it in its
//! cgroup, runs its loop until told to stop (a flag in a shared page, or
//! SIGTERM/SIGUSR1), then writes a JSON [`WorkerReport`] to a pipe and
//! `_exit`s. Paired work (futex and pipe ping-pong) runs as two threads of
//! that one process: the pair shares a cgroup and a comm, and counts as one
//! worker. Work units also go to the shared page as they happen, so the
//! parent can read progress live and still has a count if a worker must be
//! killed. The loops and their statistics are `ktstr-work`'s, shared with
//! the `workers` payload.

pub(crate) mod gate;
mod spawn;

use std::fmt;

use serde::de::{self, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

pub use ktstr_work::{LatencySummary, Loop};
pub use spawn::{spawn_worker, stop_and_collect, WorkerHandle, STOP_GRACE};

/// What a worker does; one work unit is named per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    /// Burns CPU; a unit is 1000 rounds of integer arithmetic.
    Spin,
    /// `sched_yield` in a loop; a unit is one yield.
    Yield,
    /// Two threads wake each other through a futex; a unit is a round trip.
    Futex,
    /// Runs `duty` of each period, sleeps the rest; a unit is one period.
    SleepWake,
    /// Two threads bounce a timestamp through two pipes; a unit is a round trip.
    Pipe,
    /// Forks children that exit at once; a unit is one child reaped.
    ForkExit,
    /// Touches a working set page by page; a unit is one 4 KiB page.
    CacheThrash,
}

impl WorkKind {
    pub const ALL: [WorkKind; 7] = [
        WorkKind::Spin,
        WorkKind::Yield,
        WorkKind::Futex,
        WorkKind::SleepWake,
        WorkKind::Pipe,
        WorkKind::ForkExit,
        WorkKind::CacheThrash,
    ];

    /// The name used in TOML.
    pub fn name(self) -> &'static str {
        match self {
            WorkKind::Spin => "spin",
            WorkKind::Yield => "yield",
            WorkKind::Futex => "futex",
            WorkKind::SleepWake => "sleep_wake",
            WorkKind::Pipe => "pipe",
            WorkKind::ForkExit => "fork_exit",
            WorkKind::CacheThrash => "cache_thrash",
        }
    }

    /// A short form that keeps the default comm (`ktstr-<short>`) in 15 bytes.
    pub fn short(self) -> &'static str {
        match self {
            WorkKind::SleepWake => "sleep",
            WorkKind::ForkExit => "fork",
            WorkKind::CacheThrash => "cache",
            other => other.name(),
        }
    }

    /// Whether the kind measures wake-up latency.
    pub fn wakes(self) -> bool {
        Work::new(self).to_loop().wakes()
    }
}

pub const DEFAULT_DUTY: f64 = 0.5;
pub const DEFAULT_PERIOD_US: u64 = 2000;
pub const DEFAULT_WORKING_SET_KIB: u64 = 4096;

/// A work kind and its parameters. TOML: `work = "spin"` or
/// `work = { kind = "sleep_wake", duty = 0.25, period_us = 1000 }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Work {
    pub kind: WorkKind,
    /// sleep_wake: the running fraction of each period, 0..=1.
    pub duty: Option<f64>,
    /// sleep_wake: the period, 100 µs..=1 s.
    pub period_us: Option<u64>,
    /// cache_thrash: the working set, 4 KiB..=1 GiB.
    pub working_set_kib: Option<u64>,
}

impl Work {
    pub fn new(kind: WorkKind) -> Work {
        Work { kind, duty: None, period_us: None, working_set_kib: None }
    }

    pub fn duty(&self) -> f64 {
        self.duty.unwrap_or(DEFAULT_DUTY)
    }

    pub fn period_us(&self) -> u64 {
        self.period_us.unwrap_or(DEFAULT_PERIOD_US)
    }

    pub fn working_set_kib(&self) -> u64 {
        self.working_set_kib.unwrap_or(DEFAULT_WORKING_SET_KIB)
    }

    /// Parameter problems, e.g. a duty on a spinner or a duty above 1.
    pub fn check(&self) -> Result<(), String> {
        let kind = self.kind.name();
        let misplaced =
            |p: &str, owner: &str| Err(format!("`{p}` applies only to {owner} work, not {kind}"));
        if self.kind != WorkKind::SleepWake {
            if self.duty.is_some() {
                return misplaced("duty", "sleep_wake");
            }
            if self.period_us.is_some() {
                return misplaced("period_us", "sleep_wake");
            }
        }
        if self.kind != WorkKind::CacheThrash && self.working_set_kib.is_some() {
            return misplaced("working_set_kib", "cache_thrash");
        }
        if !(0.0..=1.0).contains(&self.duty()) {
            return Err(format!("duty {} must be in [0, 1]", self.duty()));
        }
        if !(100..=1_000_000).contains(&self.period_us()) {
            return Err(format!("period_us {} must be in [100, 1000000]", self.period_us()));
        }
        if !(4..=1 << 20).contains(&self.working_set_kib()) {
            return Err(format!(
                "working_set_kib {} must be in [4, 1048576]",
                self.working_set_kib()
            ));
        }
        Ok(())
    }

    /// The loop that does this work, with the effective parameters.
    pub fn to_loop(&self) -> Loop {
        match self.kind {
            WorkKind::Spin => Loop::Spin,
            WorkKind::Yield => Loop::Yield,
            WorkKind::Futex => Loop::Futex,
            WorkKind::SleepWake => {
                Loop::SleepWake { duty: self.duty(), period_ns: self.period_us() * 1000 }
            }
            WorkKind::Pipe => Loop::Pipe,
            WorkKind::ForkExit => Loop::ForkExit,
            WorkKind::CacheThrash => {
                Loop::CacheThrash { bytes: self.working_set_kib() as usize * 1024 }
            }
        }
    }

    /// The kind with its effective parameters, e.g. `sleep_wake(duty=0.5, period_us=2000)`.
    pub fn describe(&self) -> String {
        match self.kind {
            WorkKind::SleepWake => {
                format!("sleep_wake(duty={}, period_us={})", self.duty(), self.period_us())
            }
            WorkKind::CacheThrash => {
                format!("cache_thrash(working_set_kib={})", self.working_set_kib())
            }
            k => k.name().to_string(),
        }
    }
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The table form, derived so unknown keys are rejected by serde.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkTable {
    kind: WorkKind,
    #[serde(default)]
    duty: Option<f64>,
    #[serde(default)]
    period_us: Option<u64>,
    #[serde(default)]
    working_set_kib: Option<u64>,
}

impl<'de> Deserialize<'de> for Work {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Work;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "a work kind such as \"spin\" or a table such as {{ kind = \
                    \"sleep_wake\", duty = 0.5 }}"
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Work, E> {
                WorkKind::deserialize(s.into_deserializer()).map(Work::new)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Work, A::Error> {
                let t = WorkTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Work {
                    kind: t.kind,
                    duty: t.duty,
                    period_us: t.period_us,
                    working_set_kib: t.working_set_kib,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// What a worker is started with.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSpec {
    pub work: Work,
    /// The process name (`prctl(PR_SET_NAME)`); the kernel keeps 15 bytes.
    pub comm: String,
}

impl WorkerSpec {
    /// `comm` defaults to `ktstr-<short kind>`.
    pub fn new(work: Work, comm: Option<&str>) -> WorkerSpec {
        let comm = comm.map_or_else(|| format!("ktstr-{}", work.kind.short()), str::to_string);
        WorkerSpec { work, comm }
    }
}

/// Wake-up latency percentiles (nearest rank) of one worker, in µs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WakeStats {
    /// Wake-ups seen; percentiles come from a uniform sample of at most
    /// [`ktstr_work::MAX_SAMPLES`] of them over all the worker's threads,
    /// the max from all.
    pub samples: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl From<LatencySummary> for WakeStats {
    fn from(s: LatencySummary) -> WakeStats {
        let us = |ns: u64| ns as f64 / 1000.0;
        WakeStats {
            samples: s.samples,
            p50_us: us(s.p50_ns),
            p90_us: us(s.p90_ns),
            p99_us: us(s.p99_ns),
            max_us: us(s.max_ns),
        }
    }
}

/// What one worker reports when it stops. Postcard-safe (no skipped fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    pub pid: u32,
    pub comm: String,
    /// [`Work::describe`] of its work.
    pub work: String,
    pub work_units: u64,
    /// From the gate opening to the loop seeing the stop.
    pub elapsed_ns: u64,
    /// `None` for kinds that do not sleep on a partner or a timer.
    pub wake: Option<WakeStats>,
    /// CPU changes seen by sampling `sched_getcpu` once per work unit.
    pub migrations: u64,
    /// `se.nr_migrations` from `/proc/thread-self/sched` (CONFIG_SCHED_DEBUG).
    pub kernel_migrations: Option<u64>,
    /// Time running on a CPU (`schedstat` field 1, CONFIG_SCHED_INFO), all
    /// threads; what a scheduler hands out, whatever the CPU's speed.
    pub on_cpu_ns: Option<u64>,
    /// Time runnable but waiting for a CPU (`schedstat` field 2).
    pub runqueue_wait_ns: Option<u64>,
    /// Time voluntarily asleep (timers, partner waits), wake-up latency excluded.
    pub sleep_ns: u64,
    /// `runqueue_wait_ns + sleep_ns`.
    pub off_cpu_ns: u64,
    /// Every CPU the worker was seen running on, sorted.
    pub cpus: Vec<u32>,
    /// The CPUs seen since the parent last changed what it may use
    /// ([`WorkerHandle::restriction_changed`]); all of `cpus` if it never did.
    pub cpus_since_change: Vec<u32>,
    /// Set when the worker did not report by itself (killed, crashed).
    pub error: Option<String>,
}

impl WorkerReport {
    /// Work units per second of its own run time (0 when it never ran).
    pub fn rate(&self) -> f64 {
        if self.elapsed_ns == 0 {
            return 0.0;
        }
        self.work_units as f64 / (self.elapsed_ns as f64 / 1e9)
    }

    /// CPUs' worth of time it got (on-CPU time over its run time), or `None`
    /// when the kernel did not say or it never ran.
    pub fn cpu_share(&self) -> Option<f64> {
        match (self.on_cpu_ns, self.elapsed_ns) {
            (Some(on), elapsed) if elapsed > 0 => Some(on as f64 / elapsed as f64),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
