//! The single-thread loops, and [`run`] which picks one. Each loop checks
//! the stop flag at least every 50 ms (every blocking call has a timeout).

use std::hint::black_box;

use crate::{now_ns, pair, Control, Loop, Tracker};

/// Runs `work` on this thread until `c.stop`; the tracker covers every
/// thread of the loop (a partner thread reads its own kernel counters).
pub fn run(work: &Loop, c: &Control) -> Tracker {
    let mut t = match *work {
        Loop::Spin => spin(c),
        Loop::Yield => yield_loop(c),
        Loop::Futex => pair::futex_ping_pong(c),
        Loop::SleepWake { duty, period_ns } => sleep_wake(c, duty, period_ns),
        Loop::Pipe => pair::pipe_ping_pong(c),
        Loop::ForkExit => fork_exit(c),
        Loop::CacheThrash { bytes } => cache_thrash(c, bytes),
    };
    t.read_kernel_counters();
    t
}

fn spin(c: &Control) -> Tracker {
    let mut t = Tracker::new();
    let mut x = 1u64;
    while !c.stopped() {
        for _ in 0..1000 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
        }
        c.unit();
        t.sample_cpu(c.epoch());
    }
    t
}

fn yield_loop(c: &Control) -> Tracker {
    let mut t = Tracker::new();
    while !c.stopped() {
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
        c.unit();
        t.sample_cpu(c.epoch());
    }
    t
}

/// Runs `duty` of each period, then sleeps to the period's end on an
/// absolute timer; the latency is how late after that end it ran again.
/// A period shorter than the stop check is fine; a longer one delays it.
fn sleep_wake(c: &Control, duty: f64, period_ns: u64) -> Tracker {
    let mut t = Tracker::new();
    let busy_ns = (duty.clamp(0.0, 1.0) * period_ns as f64) as u64;
    let mut x = 1u64;
    while !c.stopped() {
        let start = now_ns();
        while now_ns() < start + busy_ns {
            for _ in 0..100 {
                x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        let due = start + period_ns;
        let before = now_ns();
        if before < due {
            let ts = libc::timespec {
                tv_sec: (due / 1_000_000_000) as libc::time_t,
                tv_nsec: (due % 1_000_000_000) as libc::c_long,
            };
            // SAFETY: an absolute monotonic sleep on our own timespec; an EINTR
            // just ends this period early.
            unsafe {
                libc::clock_nanosleep(
                    libc::CLOCK_MONOTONIC,
                    libc::TIMER_ABSTIME,
                    &ts,
                    std::ptr::null_mut(),
                )
            };
            let woke = now_ns();
            if woke >= due {
                t.wake(woke - due);
            }
            t.sleep_ns += due.min(woke) - before;
        }
        c.unit();
        t.sample_cpu(c.epoch());
    }
    t
}

fn fork_exit(c: &Control) -> Tracker {
    let mut t = Tracker::new();
    while !c.stopped() {
        // SAFETY: the child only calls _exit, which is async-signal-safe, so
        // forking is sound even when the process has other threads.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { libc::_exit(0) };
        }
        if pid > 0 {
            let mut st = 0;
            // SAFETY: waiting for our own child, which exits at once.
            unsafe { libc::waitpid(pid, &mut st, 0) };
            c.unit();
        }
        t.sample_cpu(c.epoch());
    }
    t
}

/// Touches one byte per cache line, page by page, in a scattered page order
/// so the prefetcher cannot hide the misses.
fn cache_thrash(c: &Control, bytes: usize) -> Tracker {
    const PAGE: usize = 4096;
    let mut t = Tracker::new();
    let pages = (bytes / PAGE).max(1);
    let mut buf = vec![0u8; pages * PAGE];
    let mut i = 0usize;
    while !c.stopped() {
        // An odd stride visits every page when the count is a power of two,
        // and most of them otherwise; either way the order is not sequential.
        let page = i.wrapping_mul(2_654_435_761) % pages;
        let base = page * PAGE;
        for line in (0..PAGE).step_by(64) {
            buf[base + line] = black_box(buf[base + line].wrapping_add(1));
        }
        i = i.wrapping_add(1);
        c.unit();
        t.sample_cpu(c.epoch());
    }
    black_box(&buf);
    t
}
