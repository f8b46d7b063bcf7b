//! A running VM: the vCPU threads and the supervisor thread that stops and
//! joins them. Stopping is bounded: a vCPU thread that does not answer its
//! kicks within `STOP_DEADLINE` (it is inside a device access that blocks,
//! e.g. a console write to a full pipe) is left to finish on its own; it
//! holds the VM's memory and KVM objects alive until it does.

use std::os::unix::thread::JoinHandleExt;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

use crate::builder;
use crate::exit::{ExitState, VmExitReason};
use crate::snapshot::{Snapshots, VcpuState};
use crate::vcpu::{install_kick_handler, kick_signal};
use crate::VmConfig;
use std::sync::{Arc, Mutex};

/// How long the supervisor kicks vCPU threads before it leaves the ones still
/// busy to finish by themselves.
const STOP_DEADLINE: Duration = Duration::from_millis(500);
const KICK_INTERVAL: Duration = Duration::from_millis(1);

pub struct Vm;

impl Vm {
    /// Builds the VM and starts its vCPUs in background threads.
    pub fn boot(cfg: &VmConfig) -> anyhow::Result<RunningVm> {
        install_kick_handler()?;
        let built = builder::build(cfg)?;
        let exit = built.exit.clone();
        let snapshots = built.snapshots.clone();
        let resources = Arc::new(built.resources);
        let mut handles = Vec::new();
        let vcpu_count = built.vcpus.len();
        for vcpu in built.vcpus {
            let name = format!("ktstr-vcpu{}", vcpu.index);
            let keep = resources.clone();
            let body = move || {
                vcpu.run();
                drop(keep); // after the vCPU fd: KVM objects go last
            };
            match std::thread::Builder::new().name(name).spawn(body) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Stop and join what already runs before failing.
                    exit.end(VmExitReason::Error(format!("spawn vCPU thread: {e}")));
                    supervise(handles, exit, &Mutex::new(Vec::new()));
                    return Err(e).context("spawn vCPU thread");
                }
            }
        }
        for (name, work) in built.workers {
            let keep = resources.clone();
            let body = move || {
                work();
                drop(keep);
            };
            match std::thread::Builder::new().name(name.clone()).spawn(body) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    exit.end(VmExitReason::Error(format!("spawn thread {name}: {e}")));
                    supervise(handles, exit, &Mutex::new(Vec::new()));
                    return Err(e).with_context(|| format!("spawn thread {name}"));
                }
            }
        }
        drop(resources);
        // The vCPU threads come first in `handles`, the device workers after.
        let vcpu_ids = handles[..vcpu_count].iter().map(|h| h.as_pthread_t()).collect();
        let kickable = Arc::new(Mutex::new(vcpu_ids));
        let (sup_exit, sup_kickable) = (exit.clone(), kickable.clone());
        let supervisor = std::thread::Builder::new()
            .name("ktstr-vmm".into())
            .spawn(move || supervise(handles, sup_exit, &sup_kickable))
            .context("spawn VMM supervisor thread")?;
        Ok(RunningVm { supervisor: Some(supervisor), exit, done: None, snapshots, kickable })
    }
}

/// Waits for the VM to end, then stops the vCPU threads (see `stop_threads`).
fn supervise(vcpus: Vec<JoinHandle<()>>, exit: Arc<ExitState>, kickable: &Kickable) {
    exit.wait(None);
    // From here on nobody else kicks: the threads are about to be joined.
    kickable.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let busy = stop_threads(vcpus, STOP_DEADLINE, |h| {
        // SAFETY: `h` is not joined or dropped yet, so its pthread_t is valid.
        unsafe { libc::pthread_kill(h.as_pthread_t(), kick_signal()) };
    });
    if busy > 0 {
        tracing::warn!(
            "{busy} vCPU thread(s) still inside a device access {} ms after the stop: \
             left to finish on their own",
            STOP_DEADLINE.as_millis()
        );
    }
}

/// Kicks every unfinished thread until all have finished or `deadline`
/// passes; joins the finished ones and detaches the rest, whose number it
/// returns.
pub(crate) fn stop_threads(
    threads: Vec<JoinHandle<()>>,
    deadline: Duration,
    kick: impl Fn(&JoinHandle<()>),
) -> usize {
    let started = std::time::Instant::now();
    loop {
        let running: Vec<&JoinHandle<()>> = threads.iter().filter(|h| !h.is_finished()).collect();
        if running.is_empty() || started.elapsed() >= deadline {
            break;
        }
        running.into_iter().for_each(&kick);
        std::thread::sleep(KICK_INTERVAL);
    }
    let mut busy = 0;
    for h in threads {
        if !h.is_finished() {
            busy += 1; // dropping the handle detaches the thread
        } else if h.join().is_err() {
            tracing::warn!("a vCPU thread panicked");
        }
    }
    busy
}

/// The threads' pthread ids while they may be kicked: until the supervisor
/// takes them over to stop and join them (a joined thread's id is stale).
type Kickable = Mutex<Vec<libc::pthread_t>>;

/// A booted VM. Dropping it stops it and frees everything.
pub struct RunningVm {
    supervisor: Option<JoinHandle<()>>,
    exit: Arc<ExitState>,
    done: Option<VmExitReason>,
    snapshots: Arc<Snapshots>,
    kickable: Arc<Kickable>,
}

impl RunningVm {
    /// Some once the VM has ended and all its threads are joined.
    pub fn try_wait(&mut self) -> Option<VmExitReason> {
        if self.done.is_none() && self.supervisor.as_ref().is_some_and(|h| h.is_finished()) {
            self.join();
        }
        self.done.clone()
    }

    /// Waits up to `timeout` for the VM to end by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<VmExitReason> {
        if self.exit.wait(Some(timeout)) {
            self.join();
        }
        self.done.clone()
    }

    /// Where each vCPU is now, by index, waiting up to `timeout` for the
    /// answers; None for a vCPU that did not answer (busy in a device
    /// access) and for all of them once the VM is ending.
    pub fn vcpus(&self, timeout: Duration) -> Vec<Option<VcpuState>> {
        let gen = self.snapshots.request();
        {
            let threads = self.kickable.lock().unwrap_or_else(|e| e.into_inner());
            if threads.is_empty() {
                return self.snapshots.collect(gen, Duration::ZERO);
            }
            for &t in threads.iter() {
                // SAFETY: the supervisor has not taken the threads over (the
                // list is not empty, and it empties it under this lock
                // before joining), so each id is a live thread's.
                unsafe { libc::pthread_kill(t, kick_signal()) };
            }
        }
        self.snapshots.collect(gen, timeout)
    }

    /// Stops the VM (if still running) and joins every thread. Idempotent.
    pub fn kill(&mut self) -> VmExitReason {
        self.exit.end(VmExitReason::Killed);
        self.join();
        self.done.clone().unwrap_or(VmExitReason::Killed)
    }

    fn join(&mut self) {
        if let Some(h) = self.supervisor.take() {
            if h.join().is_err() {
                tracing::warn!("the VMM supervisor thread panicked");
            }
            self.done = Some(self.exit.reason().unwrap_or(VmExitReason::Killed));
        }
    }
}

impl Drop for RunningVm {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    #[test]
    fn threads_that_answer_kicks_are_joined() {
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<JoinHandle<()>> = (0..3)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        let busy =
            stop_threads(threads, Duration::from_secs(60), |_| stop.store(true, Ordering::SeqCst));
        assert_eq!(busy, 0);
    }

    #[test]
    fn a_thread_stuck_in_a_device_access_is_left_behind() {
        // Stands for a vCPU blocked in a console write: it ignores kicks.
        let (release, blocked) = mpsc::channel::<()>();
        let stuck = std::thread::spawn(move || {
            let _ = blocked.recv();
        });
        let kicks = std::sync::atomic::AtomicU32::new(0);
        let busy = stop_threads(vec![stuck], Duration::from_millis(20), |_| {
            kicks.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(busy, 1, "the stop returned without waiting for it");
        assert!(kicks.load(Ordering::SeqCst) > 0, "it was kicked first");
        release.send(()).unwrap();
    }
}
