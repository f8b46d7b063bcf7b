//! A running VM: the vCPU threads and the supervisor thread that stops,
//! joins and frees them.

use std::os::unix::thread::JoinHandleExt;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

use crate::builder::{self, VmResources};
use crate::exit::{ExitState, VmExitReason};
use crate::vcpu::{install_kick_handler, kick_signal};
use crate::VmConfig;
use std::sync::Arc;

pub struct Vm;

impl Vm {
    /// Builds the VM and starts its vCPUs in background threads.
    pub fn boot(cfg: &VmConfig) -> anyhow::Result<RunningVm> {
        install_kick_handler()?;
        let built = builder::build(cfg)?;
        let exit = built.exit.clone();
        let mut handles = Vec::new();
        for vcpu in built.vcpus {
            let name = format!("ktstr-vcpu{}", vcpu.index);
            match std::thread::Builder::new().name(name).spawn(move || vcpu.run()) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Stop and join what already runs before failing.
                    exit.end(VmExitReason::Error(format!("spawn vCPU thread: {e}")));
                    supervise(handles, exit, built.resources);
                    return Err(e).context("spawn vCPU thread");
                }
            }
        }
        let resources = built.resources;
        let sup_exit = exit.clone();
        let supervisor = std::thread::Builder::new()
            .name("ktstr-vmm".into())
            .spawn(move || supervise(handles, sup_exit, resources))
            .context("spawn VMM supervisor thread")?;
        Ok(RunningVm { supervisor: Some(supervisor), exit, done: None })
    }
}

/// Waits for the VM to end, then kicks every vCPU out of KVM_RUN until its
/// thread has finished, joins them all and frees the VM.
fn supervise(vcpus: Vec<JoinHandle<()>>, exit: Arc<ExitState>, resources: VmResources) {
    exit.wait(None);
    for h in &vcpus {
        let mut tries = 0u32;
        while !h.is_finished() {
            // SAFETY: the thread is not joined yet, so its pthread_t is valid.
            unsafe { libc::pthread_kill(h.as_pthread_t(), kick_signal()) };
            std::thread::sleep(Duration::from_millis(1));
            tries += 1;
            if tries % 5000 == 0 {
                tracing::warn!("a vCPU thread has ignored {tries} kicks");
            }
        }
    }
    for h in vcpus {
        if h.join().is_err() {
            tracing::warn!("a vCPU thread panicked");
        }
    }
    drop(resources);
}

/// A booted VM. Dropping it stops it and frees everything.
pub struct RunningVm {
    supervisor: Option<JoinHandle<()>>,
    exit: Arc<ExitState>,
    done: Option<VmExitReason>,
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
