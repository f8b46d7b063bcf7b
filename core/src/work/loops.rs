//! The worker loops, run inside the forked worker. Each loop checks the stop
//! flag at least every 50 ms (every blocking call has a timeout) and returns
//! what its threads observed.

use std::hint::black_box;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::stats::{now_ns, Tracker};
use super::{Work, WorkKind};

/// Longest a blocking wait lasts before the stop flag is looked at again.
const WAIT_NS: i64 = 50_000_000;

/// Set by the SIGTERM/SIGUSR1 handler of the worker process.
pub(crate) static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// The worker's view of its shared page.
#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    pub stop: &'static AtomicU32,
    pub epoch: &'static AtomicU32,
    pub units: &'static AtomicU64,
}

impl Ctx {
    #[inline]
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) != 0 || SIGNALLED.load(Ordering::Relaxed)
    }

    #[inline]
    fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Relaxed)
    }

    #[inline]
    fn unit(&self) {
        self.units.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `work` until stopped; the tracker covers every thread of the worker.
pub(crate) fn run(work: &Work, ctx: Ctx) -> Tracker {
    let mut t = match work.kind {
        WorkKind::Spin => spin(ctx),
        WorkKind::Yield => yield_loop(ctx),
        WorkKind::Futex => futex_ping_pong(ctx),
        WorkKind::SleepWake => sleep_wake(ctx, work.duty(), work.period_us() * 1000),
        WorkKind::Pipe => pipe_ping_pong(ctx),
        WorkKind::ForkExit => fork_exit(ctx),
        WorkKind::CacheThrash => cache_thrash(ctx, work.working_set_kib() as usize * 1024),
    };
    t.read_kernel_counters();
    t
}

fn spin(ctx: Ctx) -> Tracker {
    let mut t = Tracker::new();
    let mut x = 1u64;
    while !ctx.stopped() {
        for _ in 0..1000 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
        }
        ctx.unit();
        t.sample_cpu(ctx.epoch());
    }
    t
}

fn yield_loop(ctx: Ctx) -> Tracker {
    let mut t = Tracker::new();
    while !ctx.stopped() {
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
        ctx.unit();
        t.sample_cpu(ctx.epoch());
    }
    t
}

/// Runs `duty` of each period, then sleeps to the period's end on an
/// absolute timer; the latency is how late after that end it ran again.
fn sleep_wake(ctx: Ctx, duty: f64, period_ns: u64) -> Tracker {
    let mut t = Tracker::new();
    let busy_ns = (duty * period_ns as f64) as u64;
    let mut x = 1u64;
    while !ctx.stopped() {
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
        ctx.unit();
        t.sample_cpu(ctx.epoch());
    }
    t
}

/// The word the two futex sides flip; the waker stamps when it woke the
/// other side so the woken side measures its own wake-up latency.
struct PingPong {
    turn: AtomicU32,
    stamp_ns: AtomicU64,
}

fn futex_wait(word: &AtomicU32, expected: u32) {
    let ts = libc::timespec { tv_sec: 0, tv_nsec: WAIT_NS as libc::c_long };
    // SAFETY: FUTEX_WAIT on a live, aligned u32 with a relative timeout.
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

fn futex_ping_pong(ctx: Ctx) -> Tracker {
    let pp = Arc::new(PingPong { turn: AtomicU32::new(0), stamp_ns: AtomicU64::new(0) });
    let partner = {
        let pp = pp.clone();
        std::thread::spawn(move || futex_side(&pp, 1, ctx))
    };
    let mut mine = futex_side(&pp, 0, ctx);
    // Whoever is waiting wakes up, sees the stop, and leaves.
    pp.turn.store(2, Ordering::Release);
    futex_wake(&pp.turn);
    join_into(&mut mine, partner);
    mine
}

fn futex_side(pp: &PingPong, me: u32, ctx: Ctx) -> Tracker {
    let mut t = Tracker::new();
    while !ctx.stopped() {
        let turn = pp.turn.load(Ordering::Acquire);
        if turn != me {
            let before = now_ns();
            futex_wait(&pp.turn, turn);
            t.sleep_ns += now_ns() - before;
            continue;
        }
        let woke = now_ns();
        let stamped = pp.stamp_ns.load(Ordering::Acquire);
        if stamped != 0 && woke >= stamped {
            t.wake(woke - stamped);
            // The wait included this latency; keep only the voluntary part.
            t.sleep_ns = t.sleep_ns.saturating_sub(woke - stamped);
        }
        if me == 0 {
            ctx.unit();
        }
        t.sample_cpu(ctx.epoch());
        pp.stamp_ns.store(now_ns(), Ordering::Release);
        pp.turn.store(1 - me, Ordering::Release);
        futex_wake(&pp.turn);
    }
    t
}

fn join_into(mine: &mut Tracker, partner: std::thread::JoinHandle<Tracker>) {
    if let Ok(theirs) = partner.join() {
        mine.merge(theirs);
    }
}

/// Waits up to [`WAIT_NS`] for `fd` to be readable.
fn readable(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: polling one valid pollfd.
    unsafe { libc::poll(&mut p, 1, (WAIT_NS / 1_000_000) as i32) > 0 }
}

fn read_stamp(fd: &OwnedFd) -> Option<u64> {
    let mut b = [0u8; 8];
    // SAFETY: reading 8 bytes into our buffer; writes of 8 bytes are atomic.
    let n = unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), 8) };
    (n == 8).then(|| u64::from_ne_bytes(b))
}

fn write_stamp(fd: &OwnedFd) {
    let b = now_ns().to_ne_bytes();
    // SAFETY: writing 8 bytes from our buffer to our pipe.
    unsafe { libc::write(fd.as_raw_fd(), b.as_ptr().cast(), 8) };
}

/// Side 0 sends a stamp on `ab`, side 1 answers on `ba`; each side records
/// the latency from the stamp to reading it.
fn pipe_ping_pong(ctx: Ctx) -> Tracker {
    let (Ok((ab_r, ab_w)), Ok((ba_r, ba_w))) = (super::gate::pipe(), super::gate::pipe()) else {
        return Tracker::new();
    };
    let partner = std::thread::spawn(move || {
        let mut t = Tracker::new();
        while !ctx.stopped() {
            if let Some(stamp) = wait_stamp(&ab_r, &mut t, ctx) {
                t.wake(now_ns().saturating_sub(stamp));
                t.sample_cpu(ctx.epoch());
                write_stamp(&ba_w);
            }
        }
        t
    });
    let mut t = Tracker::new();
    while !ctx.stopped() {
        write_stamp(&ab_w);
        if let Some(stamp) = wait_stamp(&ba_r, &mut t, ctx) {
            t.wake(now_ns().saturating_sub(stamp));
            ctx.unit();
            t.sample_cpu(ctx.epoch());
        }
    }
    join_into(&mut t, partner);
    t
}

/// Waits (in bounded slices) for a stamp; the time blocked counts as sleep.
fn wait_stamp(fd: &OwnedFd, t: &mut Tracker, ctx: Ctx) -> Option<u64> {
    let before = now_ns();
    while !ctx.stopped() {
        if readable(fd) {
            let stamp = read_stamp(fd);
            // Time from the partner's stamp to now is wake-up latency, not sleep.
            let sent = stamp.unwrap_or(before).max(before);
            t.sleep_ns += sent - before;
            return stamp;
        }
    }
    t.sleep_ns += now_ns() - before;
    None
}

fn fork_exit(ctx: Ctx) -> Tracker {
    let mut t = Tracker::new();
    while !ctx.stopped() {
        // SAFETY: the worker is single-threaded for this kind, and the child
        // only calls _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { libc::_exit(0) };
        }
        if pid > 0 {
            let mut st = 0;
            // SAFETY: waiting for our own child, which exits at once.
            unsafe { libc::waitpid(pid, &mut st, 0) };
            ctx.unit();
        }
        t.sample_cpu(ctx.epoch());
    }
    t
}

/// Touches one byte per cache line, page by page, in a scattered page order
/// so the prefetcher cannot hide the misses.
fn cache_thrash(ctx: Ctx, bytes: usize) -> Tracker {
    const PAGE: usize = 4096;
    let mut t = Tracker::new();
    let pages = (bytes / PAGE).max(1);
    let mut buf = vec![0u8; pages * PAGE];
    let mut i = 0usize;
    while !ctx.stopped() {
        // An odd stride visits every page when the count is a power of two,
        // and most of them otherwise; either way the order is not sequential.
        let page = i.wrapping_mul(2_654_435_761) % pages;
        let base = page * PAGE;
        for line in (0..PAGE).step_by(64) {
            buf[base + line] = black_box(buf[base + line].wrapping_add(1));
        }
        i = i.wrapping_add(1);
        ctx.unit();
        t.sample_cpu(ctx.epoch());
    }
    black_box(&buf);
    t
}
