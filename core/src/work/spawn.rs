//! The parent side: fork a worker behind the placement gate, read its live
//! progress, stop it and collect its report, and never leave one behind.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use ktstr_work::{now_ns, Control};

use super::gate::{pipe, Gate};
use super::{WakeStats, WorkerReport, WorkerSpec};

/// How long workers get to stop by themselves before they are killed.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// An anonymous shared mapping holding the [`Control`] of one worker: the
/// parent sets `stop` and bumps `epoch`, the worker counts `units`.
struct SharedPage(*mut Control);

impl SharedPage {
    fn new() -> anyhow::Result<SharedPage> {
        // SAFETY: a fresh anonymous shared mapping; zeroed memory is a valid
        // `Control` (atomics of zero).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).context("mmap the worker's shared page");
        }
        Ok(SharedPage(p.cast()))
    }

    fn get(&self) -> &Control {
        // SAFETY: the mapping lives as long as `self`.
        unsafe { &*self.0 }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping once.
        unsafe { libc::munmap(self.0.cast(), 4096) };
    }
}

/// A running worker. Dropping it kills and reaps the worker's process group.
pub struct WorkerHandle {
    pid: i32,
    comm: String,
    work: String,
    started: Instant,
    report: OwnedFd,
    shared: SharedPage,
    reaped: bool,
}

impl WorkerHandle {
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    pub fn comm(&self) -> &str {
        &self.comm
    }

    /// Work units done so far, read live from the shared page.
    pub fn work_units(&self) -> u64 {
        self.shared.get().units.load(Ordering::Relaxed)
    }

    /// Tells the worker its allowed CPUs just changed (cpuset, affinity,
    /// cgroup move): it restarts `cpus_since_change` from here.
    pub fn restriction_changed(&self) {
        self.shared.get().epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// Asks the worker to stop; it reports and exits within ~50 ms of running.
    pub fn request_stop(&self) {
        self.shared.get().stop.store(true, Ordering::Relaxed);
    }

    /// Reaps the worker if it has exited. Anything left in its process group
    /// (a crashed fork_exit's child) is killed first, while the zombie still
    /// holds the group's id, so the id cannot have been reused.
    fn try_reap(&mut self) -> bool {
        if self.reaped {
            return true;
        }
        // SAFETY: a zeroed siginfo is valid; waitid only peeks (WNOWAIT).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: reading the pid field waitid filled in (0 when nothing exited).
        let exited = r == 0 && unsafe { info.si_pid() } == self.pid;
        if r < 0 {
            // ECHILD: someone else reaped it; nothing left to wait for.
            self.reaped = true;
        } else if exited {
            let mut st = 0;
            // SAFETY: signalling the group we created, then reaping our child.
            unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, &mut st, 0);
            }
            self.reaped = true;
        }
        self.reaped
    }

    /// SIGKILLs the worker's process group and reaps the worker.
    fn kill(&mut self) {
        if self.reaped {
            return;
        }
        // SAFETY: signalling our own child's process group, then our child.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
            libc::kill(self.pid, libc::SIGKILL);
        }
        // SIGKILL cannot be caught, so this wait is short; still bounded.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.try_reap() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Reads the report the worker wrote before exiting.
    fn read_report(&self) -> Result<WorkerReport, String> {
        // SAFETY: making our own fd non-blocking: the writer may be gone
        // while a copy of the write end lingers in some other process.
        unsafe {
            let flags = libc::fcntl(self.report.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(self.report.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        let mut text = Vec::new();
        let mut f = std::fs::File::from(self.report.try_clone().map_err(|e| e.to_string())?);
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => text.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        if text.is_empty() {
            return Err("the worker exited without a report".into());
        }
        serde_json::from_slice(&text).map_err(|e| format!("unreadable worker report: {e}"))
    }

    /// A report made from what the parent knows, when the worker gave none.
    fn fallback(&self, why: String) -> WorkerReport {
        WorkerReport {
            pid: self.pid as u32,
            comm: self.comm.clone(),
            work: self.work.clone(),
            work_units: self.work_units(),
            elapsed_ns: self.started.elapsed().as_nanos() as u64,
            error: Some(why),
            ..WorkerReport::default()
        }
    }
}

impl std::fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("pid", &self.pid)
            .field("comm", &self.comm)
            .field("work", &self.work)
            .finish()
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Forks a worker, puts it in `cgroup_dir` (when given) before it does any
/// work, and lets it run. The worker leads its own process group.
pub fn spawn_worker(spec: &WorkerSpec, cgroup_dir: Option<&Path>) -> anyhow::Result<WorkerHandle> {
    if let Err(e) = spec.work.check() {
        anyhow::bail!("bad work {}: {e}", spec.work.kind.name());
    }
    if spec.comm.is_empty() || spec.comm.len() > 15 {
        anyhow::bail!("worker name \"{}\" must be 1 to 15 bytes", spec.comm);
    }
    let comm = CString::new(spec.comm.as_str()).context("worker name has a NUL")?;
    let (report_r, report_w) = pipe()?;
    let gate = Gate::new()?;
    let shared = SharedPage::new()?;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the guest init is single-threaded, so the child may do anything;
    // under a multi-threaded test harness glibc keeps malloc usable after fork
    // and the child touches no other lock the parent's threads may hold.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork a worker");
    }
    if pid == 0 {
        child(spec, &comm, parent, &gate, &report_w, shared.0);
    }
    drop(report_w);
    // Also set here so the parent can signal the group without racing the child.
    // SAFETY: setpgid on our own child.
    unsafe { libc::setpgid(pid, pid) };
    let mut handle = WorkerHandle {
        pid,
        comm: spec.comm.clone(),
        work: spec.work.describe(),
        started: Instant::now(),
        report: report_r,
        shared,
        reaped: false,
    };
    if let Err(e) = gate.release(pid, cgroup_dir) {
        handle.kill();
        let dir = cgroup_dir.map_or_else(String::new, |d| d.display().to_string());
        return Err(e).with_context(|| format!("move worker {pid} ({}) into {dir}", spec.comm));
    }
    handle.started = Instant::now();
    Ok(handle)
}

/// The worker's own [`Control`], for its signal handler; set in the child only.
static CONTROL: AtomicPtr<Control> = AtomicPtr::new(std::ptr::null_mut());

/// SIGTERM/SIGUSR1 stop the loop as the parent's flag would.
extern "C" fn on_stop_signal(_: libc::c_int) {
    // SAFETY: set before the handler is installed, to a page that stays
    // mapped until the worker exits; storing an atomic is signal-safe.
    if let Some(c) = unsafe { CONTROL.load(Ordering::Relaxed).as_ref() } {
        c.stop.store(true, Ordering::Relaxed);
    }
}

/// The forked worker: name itself, wait at the gate, work, report, exit.
fn child(
    spec: &WorkerSpec,
    comm: &CString,
    parent: i32,
    gate: &Gate,
    report: &OwnedFd,
    shared: *mut Control,
) -> ! {
    // SAFETY: process setup on ourselves; the handler only stores an atomic.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(0);
        }
        libc::setpgid(0, 0);
        libc::prctl(libc::PR_SET_NAME, comm.as_ptr());
        CONTROL.store(shared, Ordering::Relaxed);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        if !gate.wait_in_child() {
            libc::_exit(126);
        }
    }
    // Never unwind into the parent's code that was copied with the fork.
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        work_and_report(spec, report, shared)
    })) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    // SAFETY: leaving without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

fn work_and_report(spec: &WorkerSpec, report: &OwnedFd, shared: *mut Control) {
    // SAFETY: the page stays mapped in this process until it exits.
    let shared: &Control = unsafe { &*shared };
    let start = now_ns();
    let mut t = ktstr_work::run(&spec.work.to_loop(), shared);
    let elapsed_ns = now_ns() - start;
    let runqueue_wait_ns = t.runqueue_wait_ns;
    let r = WorkerReport {
        // SAFETY: getpid has no preconditions.
        pid: unsafe { libc::getpid() } as u32,
        comm: spec.comm.clone(),
        work: spec.work.describe(),
        work_units: shared.units.load(Ordering::Relaxed),
        elapsed_ns,
        wake: t.wake_summary().map(WakeStats::from),
        migrations: t.migrations,
        kernel_migrations: t.kernel_migrations,
        on_cpu_ns: t.on_cpu_ns,
        runqueue_wait_ns,
        sleep_ns: t.sleep_ns,
        off_cpu_ns: runqueue_wait_ns.unwrap_or(0) + t.sleep_ns,
        cpus: t.cpus(),
        cpus_since_change: t.cpus_since_change(),
        error: None,
    };
    let text = serde_json::to_vec(&r).unwrap_or_default();
    let mut off = 0;
    while off < text.len() {
        // SAFETY: writing our buffer to our pipe.
        let n = unsafe {
            libc::write(report.as_raw_fd(), text[off..].as_ptr().cast(), text.len() - off)
        };
        if n <= 0 {
            break;
        }
        off += n as usize;
    }
}

/// Stops every worker (all at once, so they stop at about the same time),
/// waits up to [`STOP_GRACE`], kills the stragglers' process groups and
/// returns one report per handle, in order.
pub fn stop_and_collect(mut handles: Vec<WorkerHandle>) -> Vec<WorkerReport> {
    for h in &handles {
        h.request_stop();
    }
    let deadline = Instant::now() + STOP_GRACE;
    while handles.iter_mut().any(|h| !h.try_reap()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    handles
        .iter_mut()
        .map(|h| {
            if !h.reaped {
                h.kill();
                return h
                    .fallback(format!("did not stop within {}s; killed", STOP_GRACE.as_secs()));
            }
            h.read_report().unwrap_or_else(|why| h.fallback(why))
        })
        .collect()
}
