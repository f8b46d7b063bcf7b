//! The worker loops. Each returns its work units and the wake-up latencies it
//! measured (how long after it should have run it actually ran).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::args::{WorkKind, WorkerArgs};

/// Keeps memory bounded on long runs; percentiles of the first samples are
/// still representative.
const MAX_SAMPLES_PER_THREAD: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct KindResult {
    pub work_units: u64,
    /// Wake-up latencies in nanoseconds.
    pub wake_latencies_ns: Vec<u64>,
}

pub fn run_all(args: &WorkerArgs) -> Vec<(WorkKind, KindResult)> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for &kind in &args.kinds {
        for _ in 0..args.threads {
            let stop = stop.clone();
            let period = args.sleep_period;
            handles.push((kind, std::thread::spawn(move || run_one(kind, &stop, period))));
        }
    }
    std::thread::sleep(args.duration);
    stop.store(true, Ordering::Relaxed);
    let mut merged: Vec<(WorkKind, KindResult)> =
        args.kinds.iter().map(|&k| (k, KindResult::default())).collect();
    for (kind, h) in handles {
        let r = h.join().unwrap_or_default();
        let slot = &mut merged.iter_mut().find(|(k, _)| *k == kind).expect("kind listed").1;
        slot.work_units += r.work_units;
        slot.wake_latencies_ns.extend(r.wake_latencies_ns);
    }
    merged
}

fn run_one(kind: WorkKind, stop: &AtomicBool, period: Duration) -> KindResult {
    match kind {
        WorkKind::Spin => spin(stop),
        WorkKind::Yield => yield_loop(stop),
        WorkKind::Futex => futex_ping_pong(stop),
        WorkKind::Sleep => sleep_wake(stop, period),
    }
}

fn spin(stop: &AtomicBool) -> KindResult {
    let mut units = 0u64;
    let mut x = 1u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..1000 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
        }
        units += 1;
    }
    KindResult { work_units: units, wake_latencies_ns: Vec::new() }
}

fn yield_loop(stop: &AtomicBool) -> KindResult {
    let mut units = 0u64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::yield_now();
        units += 1;
    }
    KindResult { work_units: units, wake_latencies_ns: Vec::new() }
}

fn sleep_wake(stop: &AtomicBool, period: Duration) -> KindResult {
    let mut r = KindResult::default();
    while !stop.load(Ordering::Relaxed) {
        let due = Instant::now() + period;
        std::thread::sleep(period);
        let late = Instant::now().saturating_duration_since(due);
        r.work_units += 1;
        if r.wake_latencies_ns.len() < MAX_SAMPLES_PER_THREAD {
            r.wake_latencies_ns.push(late.as_nanos() as u64);
        }
    }
    r
}

/// A futex word the two sides flip; the waker stamps the time it woke the
/// other side so the woken side measures its own wake-up latency.
struct PingPong {
    turn: AtomicU32,
    stamp_ns: std::sync::atomic::AtomicU64,
    epoch: Instant,
}

fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT on a live, aligned u32; a timeout keeps the loop
    // responsive to `stop` even if the partner is gone.
    let ts = libc::timespec { tv_sec: 0, tv_nsec: 50_000_000 };
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a live, aligned u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// Round trips between this thread (side 0) and a partner (side 1).
fn futex_ping_pong(stop: &AtomicBool) -> KindResult {
    let pp = Arc::new(PingPong {
        turn: AtomicU32::new(0),
        stamp_ns: Default::default(),
        epoch: Instant::now(),
    });
    let stop_partner = Arc::new(AtomicBool::new(false));
    let partner = {
        let (pp, stop_partner) = (pp.clone(), stop_partner.clone());
        std::thread::spawn(move || side_until(&pp, 1, &stop_partner))
    };
    let mut mine = side_until(&pp, 0, stop);
    stop_partner.store(true, Ordering::Relaxed);
    pp.turn.store(1, Ordering::Release);
    futex_wake(&pp.turn);
    let theirs = partner.join().unwrap_or_default();
    mine.wake_latencies_ns.extend(theirs.wake_latencies_ns);
    mine
}

fn side_until(pp: &PingPong, me: u32, stop: &AtomicBool) -> KindResult {
    let mut r = KindResult::default();
    while !stop.load(Ordering::Relaxed) {
        let t = pp.turn.load(Ordering::Acquire);
        if t != me {
            futex_wait(&pp.turn, t);
            continue;
        }
        let woke_at = pp.epoch.elapsed().as_nanos() as u64;
        let stamped = pp.stamp_ns.load(Ordering::Acquire);
        if stamped != 0 && r.wake_latencies_ns.len() < MAX_SAMPLES_PER_THREAD {
            r.wake_latencies_ns.push(woke_at.saturating_sub(stamped));
        }
        if me == 0 {
            r.work_units += 1;
        }
        pp.stamp_ns.store(pp.epoch.elapsed().as_nanos() as u64, Ordering::Release);
        pp.turn.store(1 - me, Ordering::Release);
        futex_wake(&pp.turn);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_makes_progress_and_sleep_and_futex_measure_latency() {
        let args = WorkerArgs {
            kinds: vec![WorkKind::Spin, WorkKind::Yield, WorkKind::Futex, WorkKind::Sleep],
            threads: 1,
            duration: Duration::from_millis(300),
            sleep_period: Duration::from_micros(500),
        };
        for (kind, r) in run_all(&args) {
            assert!(r.work_units > 0, "{kind:?} did no work");
            if matches!(kind, WorkKind::Sleep | WorkKind::Futex) {
                assert!(!r.wake_latencies_ns.is_empty(), "{kind:?} measured no wake-ups");
            }
        }
    }
}
