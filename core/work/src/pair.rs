//! The paired loops: two threads that wake each other, each measuring its
//! own wake-up latency from a timestamp the other side left for it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::thread::ScopedJoinHandle;

use crate::{now_ns, Control, Tracker};

/// Longest a blocking wait lasts before the stop flag is looked at again.
const WAIT_NS: i64 = 50_000_000;

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

pub(crate) fn futex_ping_pong(c: &Control) -> Tracker {
    let pp = PingPong { turn: AtomicU32::new(0), stamp_ns: AtomicU64::new(0) };
    std::thread::scope(|s| {
        let partner = s.spawn(|| {
            let mut t = futex_side(&pp, 1, c);
            t.read_kernel_counters();
            t
        });
        let mut mine = futex_side(&pp, 0, c);
        // Whoever is waiting wakes up, sees the stop, and leaves.
        pp.turn.store(2, Ordering::Release);
        futex_wake(&pp.turn);
        join_into(&mut mine, partner);
        mine
    })
}

fn futex_side(pp: &PingPong, me: u32, c: &Control) -> Tracker {
    let mut t = Tracker::new();
    while !c.stopped() {
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
            c.unit();
        }
        t.sample_cpu(c.epoch());
        pp.stamp_ns.store(now_ns(), Ordering::Release);
        pp.turn.store(1 - me, Ordering::Release);
        futex_wake(&pp.turn);
    }
    t
}

/// A partner that panicked contributes nothing (and does not re-panic the scope).
fn join_into(mine: &mut Tracker, partner: ScopedJoinHandle<'_, Tracker>) {
    if let Ok(theirs) = partner.join() {
        mine.merge(theirs);
    }
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
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
pub(crate) fn pipe_ping_pong(c: &Control) -> Tracker {
    let (Ok((ab_r, ab_w)), Ok((ba_r, ba_w))) = (pipe(), pipe()) else {
        return Tracker::new();
    };
    std::thread::scope(|s| {
        let partner = s.spawn(|| {
            let mut t = Tracker::new();
            while !c.stopped() {
                if let Some(stamp) = wait_stamp(&ab_r, &mut t, c) {
                    t.wake(now_ns().saturating_sub(stamp));
                    t.sample_cpu(c.epoch());
                    write_stamp(&ba_w);
                }
            }
            t.read_kernel_counters();
            t
        });
        let mut t = Tracker::new();
        while !c.stopped() {
            write_stamp(&ab_w);
            if let Some(stamp) = wait_stamp(&ba_r, &mut t, c) {
                t.wake(now_ns().saturating_sub(stamp));
                c.unit();
                t.sample_cpu(c.epoch());
            }
        }
        join_into(&mut t, partner);
        t
    })
}

/// Waits (in bounded slices) for a stamp; the time blocked counts as sleep.
fn wait_stamp(fd: &OwnedFd, t: &mut Tracker, c: &Control) -> Option<u64> {
    let before = now_ns();
    while !c.stopped() {
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
