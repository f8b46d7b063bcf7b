//! Wake-up latency statistics: a bounded uniform sample of every latency
//! recorded, the exact count and maximum, and nearest-rank percentiles.

/// Samples kept per [`Latencies`]: enough for a stable p99, bounded memory.
pub const MAX_SAMPLES: usize = 16384;

/// The `q`-quantile (0..=1) of sorted values, or 0 when there are none.
// Nearest rank, as both former copies had: always an observed value, never interpolated.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Percentiles of a set of latencies, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Every latency recorded, not only those sampled.
    pub samples: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    /// The largest of every latency recorded.
    pub max_ns: u64,
}

/// Latencies as they are recorded: a uniform random sample of at most
/// [`MAX_SAMPLES`] (reservoir sampling), and the exact count and maximum.
#[derive(Clone)]
pub struct Latencies {
    samples: Vec<u64>,
    seen: u64,
    max_ns: u64,
    rng: u64,
}

/// The counts, not thousands of samples.
impl std::fmt::Debug for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latencies")
            .field("seen", &self.seen)
            .field("kept", &self.samples.len())
            .field("max_ns", &self.max_ns)
            .finish()
    }
}

impl Default for Latencies {
    fn default() -> Latencies {
        Latencies::new()
    }
}

impl Latencies {
    pub fn new() -> Latencies {
        Latencies { samples: Vec::new(), seen: 0, max_ns: 0, rng: crate::now_ns() | 1 }
    }

    /// How many latencies were recorded.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Records one latency.
    pub fn record(&mut self, ns: u64) {
        self.seen += 1;
        self.max_ns = self.max_ns.max(ns);
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(ns);
            return;
        }
        let slot = self.next_rand() % self.seen;
        if (slot as usize) < MAX_SAMPLES {
            self.samples[slot as usize] = ns;
        }
    }

    /// xorshift64: a cheap, good-enough random number.
    fn next_rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Folds in another set, once both are done recording. Both samples are
    /// thinned to one common rate, so the result stays a uniform sample of
    /// all the latencies however unequal the two counts were.
    pub fn merge(&mut self, mut other: Latencies) {
        let total = self.seen + other.seen;
        if total == 0 {
            return;
        }
        let rate = |l: &Latencies| {
            if l.seen == 0 {
                f64::INFINITY
            } else {
                l.samples.len() as f64 / l.seen as f64
            }
        };
        let r = rate(self).min(rate(&other)).min(MAX_SAMPLES as f64 / total as f64);
        self.thin_to(r);
        other.thin_to(r);
        self.samples.extend(other.samples);
        self.seen = total;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// Keeps a random `rate * seen` of the samples (a partial shuffle).
    fn thin_to(&mut self, rate: f64) {
        let keep = ((rate * self.seen as f64).round() as usize).min(self.samples.len());
        for i in 0..keep {
            let j = i + (self.next_rand() % (self.samples.len() - i) as u64) as usize;
            self.samples.swap(i, j);
        }
        self.samples.truncate(keep);
    }

    /// Percentiles of the sample, or `None` when nothing was recorded.
    pub fn summary(&mut self) -> Option<LatencySummary> {
        if self.seen == 0 {
            return None;
        }
        self.samples.sort_unstable();
        let p = |q| percentile(&self.samples, q);
        Some(LatencySummary {
            samples: self.seen,
            p50_ns: p(0.50),
            p90_ns: p(0.90),
            p99_ns: p(0.99),
            p999_ns: p(0.999),
            max_ns: self.max_ns,
        })
    }
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
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[1000, 2000, 3000], 0.99), 3000);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn reservoir_stays_bounded_and_keeps_the_max() {
        let mut l = Latencies::new();
        for i in 0..(MAX_SAMPLES as u64 * 3) {
            l.record(i * 1000);
        }
        assert_eq!(l.samples.len(), MAX_SAMPLES);
        let s = l.summary().unwrap();
        assert_eq!(s.samples, MAX_SAMPLES as u64 * 3);
        assert_eq!(s.max_ns, (MAX_SAMPLES as u64 * 3 - 1) * 1000);
        // A uniform sample of 0..3N has its median near 1.5N.
        let mid = 1.5 * MAX_SAMPLES as f64 * 1000.0;
        assert!((s.p50_ns as f64 - mid).abs() < mid * 0.1, "{s:?}");
        assert!(Latencies::new().summary().is_none());
    }

    #[test]
    fn small_sets_merge_exactly() {
        let (mut a, mut b) = (Latencies::new(), Latencies::new());
        (1..=60).for_each(|v| a.record(v));
        (61..=100).for_each(|v| b.record(v));
        a.merge(b);
        a.merge(Latencies::new());
        let s = a.summary().unwrap();
        assert_eq!((s.samples, s.p50_ns, s.p99_ns, s.max_ns), (100, 50, 99, 100));
        assert_eq!(a.samples.len(), 100);
    }

    #[test]
    fn merging_weighs_each_set_by_its_count() {
        // 99% fast wake-ups in a full reservoir and 1% slow ones: the slow
        // ones must not gain weight because their reservoir was not full.
        let (mut fast, mut slow) = (Latencies::new(), Latencies::new());
        (0..99_000).for_each(|_| fast.record(1));
        (0..1_000).for_each(|_| slow.record(1_000_000));
        fast.merge(slow);
        assert!(fast.samples.len() <= MAX_SAMPLES);
        let s = fast.summary().unwrap();
        assert_eq!((s.samples, s.p50_ns, s.p90_ns, s.max_ns), (100_000, 1, 1, 1_000_000));
        assert_eq!(s.p999_ns, 1_000_000);
        let slow_share = fast.samples.iter().filter(|&&v| v > 1).count() as f64;
        assert!((slow_share / fast.samples.len() as f64 - 0.01).abs() < 0.002, "{slow_share}");
    }
}
