//! Runs `--threads` threads of each kind's `ktstr-work` loop for
//! `--duration`, then adds up each kind's work and merges its latencies.

use std::sync::atomic::Ordering;

use ktstr_work::{Control, Latencies, Loop};

use crate::args::{WorkKind, WorkerArgs};

#[derive(Debug, Default)]
pub struct KindResult {
    pub work_units: u64,
    /// Wake-up latencies of all the kind's threads.
    pub wake: Latencies,
}

/// The loop a kind runs.
pub fn to_loop(kind: WorkKind, args: &WorkerArgs) -> Loop {
    match kind {
        WorkKind::Spin => Loop::Spin,
        WorkKind::Yield => Loop::Yield,
        WorkKind::Futex => Loop::Futex,
        // A sleep/wake loop that never runs: the scenarios' absolute-deadline sleep, so
        // lateness is measured from the deadline rather than from just before the call.
        WorkKind::Sleep => {
            Loop::SleepWake { duty: 0.0, period_ns: args.sleep_period.as_nanos() as u64 }
        }
    }
}

pub fn run_all(args: &WorkerArgs) -> Vec<(WorkKind, KindResult)> {
    let jobs: Vec<(WorkKind, Loop)> = args
        .kinds
        .iter()
        .flat_map(|&k| (0..args.threads).map(move |_| (k, to_loop(k, args))))
        .collect();
    // One Control per thread: a shared unit counter would bounce between CPUs.
    let controls: Vec<Control> = jobs.iter().map(|_| Control::default()).collect();
    let trackers: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .zip(&controls)
            .map(|((_, work), c)| s.spawn(move || ktstr_work::run(work, c)))
            .collect();
        std::thread::sleep(args.duration);
        for c in &controls {
            c.stop.store(true, Ordering::Relaxed);
        }
        handles.into_iter().map(|h| h.join().ok()).collect()
    });
    let mut merged: Vec<(WorkKind, KindResult)> =
        args.kinds.iter().map(|&k| (k, KindResult::default())).collect();
    for (((kind, _), c), t) in jobs.iter().zip(&controls).zip(trackers) {
        let slot = &mut merged.iter_mut().find(|(k, _)| k == kind).expect("kind listed").1;
        slot.work_units += c.units.load(Ordering::Relaxed);
        if let Some(t) = t {
            slot.wake.merge(t.wake);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn args(kinds: Vec<WorkKind>, threads: usize) -> WorkerArgs {
        WorkerArgs {
            kinds,
            threads,
            duration: Duration::from_millis(300),
            sleep_period: Duration::from_micros(500),
        }
    }

    #[test]
    fn sleep_is_a_sleep_wake_loop_that_never_runs() {
        let a = args(vec![WorkKind::Sleep], 1);
        assert_eq!(to_loop(WorkKind::Sleep, &a), Loop::SleepWake { duty: 0.0, period_ns: 500_000 });
    }

    #[test]
    fn every_kind_runs_on_every_thread_and_is_merged_per_kind() {
        use WorkKind::*;
        let all = run_all(&args(vec![Spin, Yield, Futex, Sleep], 2));
        assert_eq!(all.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [Spin, Yield, Futex, Sleep]);
        for (kind, r) in &all {
            assert!(r.work_units > 0, "{kind:?} did no work");
            let wakes = matches!(kind, Futex | Sleep);
            assert_eq!(r.wake.seen() > 0, wakes, "{kind:?} measured wake-ups: {}", r.wake.seen());
        }
        // Both threads' wake-ups are kept: one per period of each sleeper,
        // about two per round trip of each futex pair.
        let (futex, sleep) = (&all[2].1, &all[3].1);
        let (seen, units) = (futex.wake.seen(), futex.work_units);
        assert!(seen >= units, "{seen} wake-ups in {units} round trips");
        let (seen, units) = (sleep.wake.seen(), sleep.work_units);
        assert!(seen <= units && seen + 2 >= units, "{seen} wake-ups in {units} periods");
    }
}
