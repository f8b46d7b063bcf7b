//! What each worker thread observes: CPUs seen and migrations (sampled with
//! `sched_getcpu`), voluntary sleep, wake-up latency samples, and at the end
//! the kernel's own counters for the thread.

use super::WakeStats;

/// Samples kept per thread: enough for a stable p99, bounded memory.
const MAX_SAMPLES: usize = 16384;

/// CLOCK_MONOTONIC in nanoseconds: comparable across the threads and
/// processes of one machine, unlike `Instant` which cannot be sent as a number.
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into our timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[derive(Debug, Default)]
pub(crate) struct Tracker {
    last_cpu: Option<u32>,
    pub migrations: u64,
    /// Bitset of CPUs seen.
    cpus: Vec<u64>,
    /// The parent's restriction epoch last seen, and the CPUs seen since.
    epoch: u32,
    since: Vec<u64>,
    pub sleep_ns: u64,
    samples: Vec<u64>,
    seen: u64,
    max_ns: u64,
    rng: u64,
    pub runqueue_wait_ns: Option<u64>,
    pub kernel_migrations: Option<u64>,
}

impl Tracker {
    pub(crate) fn new() -> Tracker {
        Tracker { rng: now_ns() | 1, ..Tracker::default() }
    }

    /// Notes the CPU this thread runs on now; cheap (vDSO/rseq). `epoch`
    /// is the parent's restriction epoch: a new one restarts `since`.
    #[inline]
    pub(crate) fn sample_cpu(&mut self, epoch: u32) {
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

    /// Records one wake-up latency; keeps a uniform sample (reservoir).
    pub(crate) fn wake(&mut self, latency_ns: u64) {
        self.seen += 1;
        self.max_ns = self.max_ns.max(latency_ns);
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(latency_ns);
            return;
        }
        // xorshift64: a cheap, good-enough random index.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let slot = self.rng % self.seen;
        if (slot as usize) < MAX_SAMPLES {
            self.samples[slot as usize] = latency_ns;
        }
    }

    /// Reads this thread's kernel counters; call at the end, from the thread.
    pub(crate) fn read_kernel_counters(&mut self) {
        let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok();
        self.runqueue_wait_ns = schedstat.as_deref().and_then(schedstat_wait_ns);
        let sched = std::fs::read_to_string("/proc/thread-self/sched").ok();
        self.kernel_migrations = sched.as_deref().and_then(nr_migrations);
    }

    /// Folds another thread's observations into this one.
    pub(crate) fn merge(&mut self, other: Tracker) {
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
        self.samples.extend(other.samples);
        self.seen += other.seen;
        self.max_ns = self.max_ns.max(other.max_ns);
        self.runqueue_wait_ns = add_opt(self.runqueue_wait_ns, other.runqueue_wait_ns);
        self.kernel_migrations = add_opt(self.kernel_migrations, other.kernel_migrations);
    }

    pub(crate) fn cpus(&self) -> Vec<u32> {
        bits(&self.cpus)
    }

    pub(crate) fn cpus_since_change(&self) -> Vec<u32> {
        bits(&self.since)
    }

    /// Percentiles of the samples, or `None` when there were no wake-ups.
    pub(crate) fn wake_stats(&mut self) -> Option<WakeStats> {
        if self.seen == 0 {
            return None;
        }
        self.samples.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(WakeStats {
            samples: self.seen,
            p50_us: us(percentile(&self.samples, 0.50)),
            p90_us: us(percentile(&self.samples, 0.90)),
            p99_us: us(percentile(&self.samples, 0.99)),
            max_us: us(self.max_ns),
        })
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

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
pub(crate) fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `schedstat` is "on-cpu-ns runqueue-wait-ns timeslices".
fn schedstat_wait_ns(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
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
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn reads_kernel_counter_formats() {
        assert_eq!(schedstat_wait_ns("123 456 7\n"), Some(456));
        assert_eq!(schedstat_wait_ns("123"), None);
        let sched = "cat (1, #threads: 1)\n---\nse.exec_start : 1.0\nse.nr_migrations                             :                    3\n";
        assert_eq!(nr_migrations(sched), Some(3));
        assert_eq!(nr_migrations("nothing"), None);
    }

    #[test]
    fn reservoir_stays_bounded_and_keeps_the_max() {
        let mut t = Tracker::new();
        for i in 0..(MAX_SAMPLES as u64 * 3) {
            t.wake(i);
        }
        assert_eq!(t.samples.len(), MAX_SAMPLES);
        let s = t.wake_stats().unwrap();
        assert_eq!(s.samples, MAX_SAMPLES as u64 * 3);
        assert_eq!(s.max_us, (MAX_SAMPLES as u64 * 3 - 1) as f64 / 1000.0);
        // A uniform sample of 0..3N has its median near 1.5N.
        let mid = 1.5 * MAX_SAMPLES as f64 / 1000.0;
        assert!((s.p50_us - mid).abs() < mid * 0.1, "{s:?}");
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
            ..Tracker::new()
        };
        b.wake(10);
        a.merge(b);
        assert!(a.cpus().contains(&67));
        assert!(a.cpus_since_change().contains(&67));
        assert_eq!((a.migrations, a.sleep_ns, a.runqueue_wait_ns), (2, 5, Some(7)));
        assert_eq!(a.wake_stats().unwrap().samples, 1);
        assert!(Tracker::new().wake_stats().is_none());
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
