//! What each worker thread observes: CPUs seen and migrations (sampled with
//! `sched_getcpu`), voluntary sleep, wake-up latencies, and at the end the
//! kernel's own counters for the thread.

use crate::stats::{Latencies, LatencySummary};

#[derive(Debug, Default)]
pub struct Tracker {
    last_cpu: Option<u32>,
    /// CPU changes seen between two samples.
    pub migrations: u64,
    /// Bitset of CPUs seen.
    cpus: Vec<u64>,
    /// The restriction epoch last seen, and the CPUs seen since.
    epoch: u32,
    since: Vec<u64>,
    /// Time voluntarily asleep (timers, partner waits), wake-up latency excluded.
    pub sleep_ns: u64,
    pub wake: Latencies,
    /// Time running on a CPU (`schedstat` field 1), the thread's whole life.
    pub on_cpu_ns: Option<u64>,
    /// Time runnable but waiting for a CPU (`schedstat` field 2).
    pub runqueue_wait_ns: Option<u64>,
    /// `se.nr_migrations` from `/proc/thread-self/sched` (CONFIG_SCHED_DEBUG).
    pub kernel_migrations: Option<u64>,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Notes the CPU this thread runs on now; cheap (vDSO/rseq). A new
    /// `epoch` (the allowed CPUs changed) restarts `cpus_since_change`.
    #[inline]
    pub fn sample_cpu(&mut self, epoch: u32) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.since.clear();
        }
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu < 0 {
            return;
        }
        let cpu = cpu as u32;
        if self.last_cpu.is_some_and(|c| c != cpu) {
            self.migrations += 1;
        }
        self.last_cpu = Some(cpu);
        set_bit(&mut self.cpus, cpu);
        set_bit(&mut self.since, cpu);
    }

    /// Records one wake-up latency.
    #[inline]
    pub fn wake(&mut self, latency_ns: u64) {
        self.wake.record(latency_ns);
    }

    /// Adds this thread's kernel counters to what partner threads merged in;
    /// call once at the end, from the thread.
    pub fn read_kernel_counters(&mut self) {
        let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok();
        let field = |n| schedstat.as_deref().and_then(|s| schedstat_field(s, n));
        self.on_cpu_ns = add_opt(self.on_cpu_ns, field(0));
        self.runqueue_wait_ns = add_opt(self.runqueue_wait_ns, field(1));
        let sched = std::fs::read_to_string("/proc/thread-self/sched").ok();
        self.kernel_migrations =
            add_opt(self.kernel_migrations, sched.as_deref().and_then(nr_migrations));
    }

    /// Folds another thread's observations into this one.
    pub fn merge(&mut self, other: Tracker) {
        self.migrations += other.migrations;
        union(&mut self.cpus, &other.cpus);
        // A thread that has not run since the latest change knows nothing of it.
        if other.epoch > self.epoch {
            self.epoch = other.epoch;
            self.since = other.since;
        } else if other.epoch == self.epoch {
            union(&mut self.since, &other.since);
        }
        self.sleep_ns += other.sleep_ns;
        self.wake.merge(other.wake);
        self.on_cpu_ns = add_opt(self.on_cpu_ns, other.on_cpu_ns);
        self.runqueue_wait_ns = add_opt(self.runqueue_wait_ns, other.runqueue_wait_ns);
        self.kernel_migrations = add_opt(self.kernel_migrations, other.kernel_migrations);
    }

    /// Every CPU seen, sorted.
    pub fn cpus(&self) -> Vec<u32> {
        bits(&self.cpus)
    }

    /// The CPUs seen since the latest epoch; all of them if it never changed.
    pub fn cpus_since_change(&self) -> Vec<u32> {
        bits(&self.since)
    }

    /// Wake-up latency percentiles, or `None` when there were no wake-ups.
    pub fn wake_summary(&mut self) -> Option<LatencySummary> {
        self.wake.summary()
    }
}

fn set_bit(set: &mut Vec<u64>, cpu: u32) {
    let (word, bit) = ((cpu / 64) as usize, cpu % 64);
    if set.len() <= word {
        set.resize(word + 1, 0);
    }
    set[word] |= 1 << bit;
}

fn union(set: &mut Vec<u64>, other: &[u64]) {
    if set.len() < other.len() {
        set.resize(other.len(), 0);
    }
    for (w, o) in set.iter_mut().zip(other) {
        *w |= o;
    }
}

fn bits(set: &[u64]) -> Vec<u32> {
    let mut out = Vec::new();
    for (w, bits) in set.iter().enumerate() {
        out.extend((0..64).filter(|b| bits & (1u64 << b) != 0).map(|b| w as u32 * 64 + b));
    }
    out
}

fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

/// Field `n` (from 0) of `schedstat`: "on-cpu-ns runqueue-wait-ns timeslices".
fn schedstat_field(text: &str, n: usize) -> Option<u64> {
    text.split_whitespace().nth(n)?.parse().ok()
}

/// The value of the `se.nr_migrations : N` line of `/proc/…/sched`.
fn nr_migrations(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.trim_start().starts_with("se.nr_migrations"))?;
    line.split(':').nth(1)?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kernel_counter_formats() {
        assert_eq!(schedstat_field("123 456 7\n", 0), Some(123));
        assert_eq!(schedstat_field("123 456 7\n", 1), Some(456));
        assert_eq!(schedstat_field("123", 1), None);
        let sched = concat!(
            "cat (1, #threads: 1)\n---\nse.exec_start : 1.0\n",
            "se.nr_migrations                             :                    3\n"
        );
        assert_eq!(nr_migrations(sched), Some(3));
        assert_eq!(nr_migrations("nothing"), None);
    }

    #[test]
    fn kernel_counters_add_to_what_partners_merged_in() {
        let mut t = Tracker { on_cpu_ns: Some(1 << 60), ..Tracker::new() };
        t.read_kernel_counters();
        assert!(t.on_cpu_ns >= Some(1 << 60), "a partner thread's time is kept");
    }

    #[test]
    fn cpu_set_and_merge() {
        let mut a = Tracker::new();
        a.sample_cpu(0);
        assert_eq!(a.cpus().len(), 1);
        assert_eq!(a.cpus_since_change(), a.cpus());
        let mut b = Tracker {
            cpus: vec![0, 1 << 3],
            since: vec![0, 1 << 3],
            migrations: 2,
            sleep_ns: 5,
            runqueue_wait_ns: Some(7),
            on_cpu_ns: Some(11),
            ..Tracker::new()
        };
        b.wake(10);
        a.merge(b);
        assert!(a.cpus().contains(&67));
        assert!(a.cpus_since_change().contains(&67));
        assert_eq!((a.migrations, a.sleep_ns, a.runqueue_wait_ns), (2, 5, Some(7)));
        assert_eq!(a.on_cpu_ns, Some(11));
        assert_eq!(a.wake_summary().unwrap().samples, 1);
        assert!(Tracker::new().wake_summary().is_none());
    }

    #[test]
    fn a_new_epoch_restarts_the_cpus_since_change() {
        let mut a = Tracker { since: vec![0b1010], cpus: vec![0b1010], ..Tracker::new() };
        a.sample_cpu(1);
        assert_eq!(a.cpus_since_change().len(), 1, "only the CPU seen after the change");
        assert!(a.cpus().len() >= 2);
        // Merging keeps only what threads saw in the newest epoch.
        let stale = Tracker { since: vec![1 << 40], epoch: 0, ..Tracker::new() };
        let mut merged = Tracker { since: vec![1 << 7], epoch: 1, ..Tracker::new() };
        merged.merge(stale);
        assert_eq!(merged.cpus_since_change(), [7]);
        let newer = Tracker { since: vec![1 << 9], epoch: 2, ..Tracker::new() };
        merged.merge(newer);
        assert_eq!(merged.cpus_since_change(), [9]);
    }
}
