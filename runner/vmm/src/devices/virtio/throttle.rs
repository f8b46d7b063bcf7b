//! Token buckets for a disk's `iops=` and `bps=` limits: pure, given the time.
//!
//! Hand-written: the rust-vmm rate limiter lives inside Firecracker and
//! vm-superio, not in a crate of its own, and this is a few lines.

use std::time::{Duration, Instant};

/// `rate` tokens a second, holding at most one second's worth.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u64, now: Instant) -> TokenBucket {
        TokenBucket { rate: rate.max(1), tokens: rate.max(1) as f64, last: now }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate as f64).min(self.rate as f64);
        self.last = now;
    }

    /// How long until `n` tokens are there (zero: now). A request bigger
    /// than the bucket waits for a full bucket, then takes it all.
    fn wait_for(&self, n: u64) -> Duration {
        let need = (n as f64).min(self.rate as f64) - self.tokens;
        if need <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(need / self.rate as f64)
        }
    }

    fn take(&mut self, n: u64) {
        self.tokens = (self.tokens - n as f64).max(0.0);
    }
}

/// A disk's limits: requests a second and bytes a second, either optional.
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    iops: Option<TokenBucket>,
    bps: Option<TokenBucket>,
}

impl Throttle {
    pub fn new(iops: Option<u64>, bps: Option<u64>, now: Instant) -> Throttle {
        Throttle {
            iops: iops.map(|r| TokenBucket::new(r, now)),
            bps: bps.map(|r| TokenBucket::new(r, now)),
        }
    }

    pub fn is_limited(&self) -> bool {
        self.iops.is_some() || self.bps.is_some()
    }

    /// Admits one request of `bytes` now, or says how long to wait; a
    /// request is charged to both buckets only when both admit it.
    pub fn admit(&mut self, bytes: u64, now: Instant) -> Result<(), Duration> {
        let mut wait = Duration::ZERO;
        for (bucket, n) in [(&mut self.iops, 1), (&mut self.bps, bytes)] {
            if let Some(b) = bucket {
                b.refill(now);
                wait = wait.max(b.wait_for(n));
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for (bucket, n) in [(&mut self.iops, 1), (&mut self.bps, bytes)] {
            if let Some(b) = bucket {
                b.take(n);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_admits_everything() {
        let mut t = Throttle::default();
        assert!(!t.is_limited());
        assert_eq!(t.admit(u64::MAX, Instant::now()), Ok(()));
    }

    #[test]
    fn iops_admits_a_second_worth_then_waits() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Some(10), None, t0);
        for _ in 0..10 {
            assert_eq!(t.admit(4096, t0), Ok(()));
        }
        let wait = t.admit(4096, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        assert_eq!(t.admit(4096, t0 + Duration::from_millis(100)), Ok(()));
    }

    #[test]
    fn bytes_and_requests_are_charged_together() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Some(100), Some(8192), t0);
        assert_eq!(t.admit(8192, t0), Ok(()));
        // The byte bucket refuses; the request bucket must not be charged.
        assert!(t.admit(4096, t0).is_err());
        let later = t0 + Duration::from_millis(500);
        assert_eq!(t.admit(4096, later), Ok(()));
    }

    #[test]
    fn a_request_bigger_than_the_bucket_waits_for_a_full_one() {
        let t0 = Instant::now();
        let mut t = Throttle::new(None, Some(1000), t0);
        assert_eq!(t.admit(5000, t0), Ok(()), "a full bucket admits it");
        let wait = t.admit(5000, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        assert_eq!(t.admit(5000, t0 + Duration::from_secs(1)), Ok(()));
    }
}
