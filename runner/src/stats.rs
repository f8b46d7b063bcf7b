//! The statistics of `ktstr compare` and `ktstr bench`: medians and
//! quartiles, the Mann-Whitney U test, and a bootstrap interval for the
//! relative difference of medians. Checked against SciPy and NumPy
//! (tests/fixtures/stats/reference.json, made by make_reference.py there).
//!
//! Written here because no maintained crate has the rank test with SciPy's
//! tie and continuity corrections; the normal CDF comes from statrs.

use statrs::distribution::{ContinuousCDF, Normal};

/// Median and quartiles of a sample (NumPy's default linear interpolation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
}

pub fn spread(xs: &[f64]) -> Spread {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    Spread {
        median: quantile(&sorted, 0.5),
        q1: quantile(&sorted, 0.25),
        q3: quantile(&sorted, 0.75),
    }
}

/// Hyndman-Fan type 7 on sorted data.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The two-sided Mann-Whitney U test: U of `a`, and the p-value of the
/// normal approximation with tie correction and continuity correction.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let mut all: Vec<(f64, bool)> =
        a.iter().map(|&x| (x, true)).chain(b.iter().map(|&x| (x, false))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (mut rank_sum_a, mut tie_term, mut i) = (0.0, 0.0, 0);
    while i < all.len() {
        let j = (i..all.len()).find(|&j| all[j].0 != all[i].0).unwrap_or(all.len());
        let rank = (i + 1 + j) as f64 / 2.0; // mean of ranks i+1..=j
        rank_sum_a += rank * all[i..j].iter().filter(|(_, in_a)| *in_a).count() as f64;
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let u_a = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let n = n1 + n2;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if var <= 0.0 {
        return (u_a, 1.0); // every value the same: nothing tells the samples apart
    }
    let z = ((u_a - mean).abs() - 0.5).max(0.0) / var.sqrt();
    let normal = Normal::standard();
    (u_a, (2.0 * (1.0 - normal.cdf(z))).min(1.0))
}

/// A 95% bootstrap interval of `(median(b) - median(a)) / |median(a)|`,
/// from `resamples` resamples of each side (a fixed seed: the same data
/// give the same interval).
pub fn relative_difference_interval(a: &[f64], b: &[f64], resamples: usize) -> (f64, f64) {
    let mut rng = SplitMix(0x6b74_7374_7221);
    let mut diffs: Vec<f64> = (0..resamples)
        .map(|_| {
            let ma = spread(&resample(a, &mut rng)).median;
            let mb = spread(&resample(b, &mut rng)).median;
            relative(ma, mb)
        })
        .filter(|d| d.is_finite())
        .collect();
    if diffs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    diffs.sort_by(f64::total_cmp);
    (quantile(&diffs, 0.025), quantile(&diffs, 0.975))
}

/// `(b - a) / |a|`.
pub fn relative(a: f64, b: f64) -> f64 {
    (b - a) / a.abs()
}

fn resample(xs: &[f64], rng: &mut SplitMix) -> Vec<f64> {
    (0..xs.len()).map(|_| xs[(rng.next() % xs.len() as u64) as usize]).collect()
}

/// SplitMix64: a few lines for reproducible resampling, no dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> serde_json::Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/stats/reference.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn floats(v: &serde_json::Value) -> Vec<f64> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
    }

    #[test]
    fn mann_whitney_and_quartiles_match_scipy_and_numpy() {
        for case in reference()["cases"].as_array().unwrap() {
            let (a, b) = (floats(&case["a"]), floats(&case["b"]));
            let name = case["name"].as_str().unwrap();
            let (u, p) = mann_whitney(&a, &b);
            let close = |x: f64, key: &str| {
                let want = case[key].as_f64().unwrap();
                assert!((x - want).abs() < 1e-9, "{name} {key}: {x} against {want}");
            };
            close(u, "u_a");
            close(p, "p");
            let (sa, sb) = (spread(&a), spread(&b));
            close(sa.median, "median_a");
            close(sb.median, "median_b");
            close(sa.q1, "q1_a");
            close(sa.q3, "q3_a");
            close(sb.q1, "q1_b");
            close(sb.q3, "q3_b");
        }
    }

    #[test]
    fn identical_samples_are_not_told_apart() {
        assert_eq!(mann_whitney(&[5.0; 5], &[5.0; 5]), (12.5, 1.0));
    }

    #[test]
    fn the_bootstrap_interval_holds_the_difference_and_is_reproducible() {
        let a = [8512.3, 8291.0, 8733.9, 8404.2, 8620.8];
        let b = [16120.4, 15877.1, 16530.9, 15702.6, 16213.0];
        let (lo, hi) = relative_difference_interval(&a, &b, 2000);
        let point = relative(spread(&a).median, spread(&b).median);
        assert!(lo <= point && point <= hi && lo > 0.0, "{lo} {point} {hi}");
        assert_eq!(relative_difference_interval(&a, &b, 2000), (lo, hi));
        let (lo, hi) = relative_difference_interval(&a, &a, 2000);
        assert!(lo < 0.0 && hi > 0.0, "A against itself straddles zero: {lo} {hi}");
    }
}
