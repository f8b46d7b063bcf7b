//! Every loop on a thread of the test process, stopped through its `Control`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;

const ALL: [Loop; 7] = [
    Loop::Spin,
    Loop::Yield,
    Loop::Futex,
    Loop::SleepWake { duty: 0.5, period_ns: 2_000_000 },
    Loop::Pipe,
    Loop::ForkExit,
    Loop::CacheThrash { bytes: 256 << 10 },
];

/// Runs `work` for `ms`, returns its tracker, its units and how long the stop took.
fn run_for(work: Loop, ms: u64) -> (Tracker, u64, Duration) {
    let c = Control::default();
    std::thread::scope(|s| {
        let h = s.spawn(|| run(&work, &c));
        std::thread::sleep(Duration::from_millis(ms));
        let asked = Instant::now();
        c.stop.store(true, Ordering::Relaxed);
        let t = h.join().unwrap();
        (t, c.units.load(Ordering::Relaxed), asked.elapsed())
    })
}

#[test]
fn every_loop_makes_progress_stops_and_measures_what_it_should() {
    for work in ALL {
        let (mut t, units, stop_took) = run_for(work, 200);
        assert!(units > 0, "{work:?} did no work");
        assert!(stop_took < Duration::from_millis(500), "{work:?} took {stop_took:?} to stop");
        assert!(!t.cpus().is_empty(), "{work:?} saw no CPU");
        assert_eq!(t.cpus_since_change(), t.cpus(), "{work:?}: the epoch never changed");
        match t.wake_summary() {
            Some(w) => {
                assert!(work.wakes(), "{work:?} measured wake-ups: {w:?}");
                assert!(w.max_ns >= w.p99_ns && w.p99_ns >= w.p50_ns, "{work:?}: {w:?}");
            }
            None => assert!(!work.wakes(), "{work:?} measured no wake-ups"),
        }
    }
}

#[test]
fn a_pure_sleep_wakes_once_per_period() {
    // duty 0: the `workers` payload's `sleep` kind.
    let (mut t, units, _) = run_for(Loop::SleepWake { duty: 0.0, period_ns: 1_000_000 }, 300);
    let w = t.wake_summary().unwrap();
    assert!((50..=320).contains(&units), "{units} periods of 1 ms in 300 ms");
    assert!(w.samples + 1 >= units && w.samples <= units, "{w:?} for {units} periods");
    assert!(t.sleep_ns > 100_000_000, "it mostly slept: {} ns", t.sleep_ns);
}

#[test]
fn an_epoch_bump_restarts_cpus_since_change() {
    let c = Control::default();
    let mut t = std::thread::scope(|s| {
        let h = s.spawn(|| run(&Loop::Spin, &c));
        std::thread::sleep(Duration::from_millis(20));
        c.epoch.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
        c.stop.store(true, Ordering::Relaxed);
        h.join().unwrap()
    });
    assert!(!t.cpus_since_change().is_empty());
    assert!(t.cpus_since_change().iter().all(|cpu| t.cpus().contains(cpu)));
    assert!(t.wake_summary().is_none());
}
