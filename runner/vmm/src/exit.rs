//! How a VM ends: the first reason recorded wins, and every thread watching
//! (vCPUs, the supervisor) sees the stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::devices::Interrupt;

/// Why a VM stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmExitReason {
    /// The guest reset the machine through the i8042 (Linux `reboot=k`): its
    /// reboot, its power-off under `ktstr.poweroff=reboot`, or `panic=-1`.
    Reset,
    /// KVM_EXIT_SHUTDOWN: a triple fault (also Linux's last-resort reboot).
    TripleFault,
    /// KVM_EXIT_SYSTEM_EVENT of this type (1 shutdown, 2 reset, 3 crash).
    SystemEvent(u32),
    /// The host asked: `kill()` or drop.
    Killed,
    /// KVM or a vCPU failed; the VM cannot go on.
    Error(String),
}

#[derive(Default)]
pub struct ExitState {
    stop: AtomicBool,
    reason: Mutex<Option<VmExitReason>>,
    cv: Condvar,
}

impl ExitState {
    /// Records `reason` unless one is already there, and stops everything.
    pub fn end(&self, reason: VmExitReason) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            tracing::debug!("VM ends: {reason:?}");
            *r = Some(reason);
        }
        self.stop.store(true, Ordering::SeqCst);
        self.cv.notify_all();
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn reason(&self) -> Option<VmExitReason> {
        self.reason.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Blocks until `end` has been called, or `timeout` passes.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        while r.is_none() {
            match deadline {
                None => r = self.cv.wait(r).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return false;
                    }
                    r = self.cv.wait_timeout(r, d - now).unwrap_or_else(|p| p.into_inner()).0;
                }
            }
        }
        true
    }
}

/// The i8042's reset line: ends the VM.
pub struct ResetLine(pub std::sync::Arc<ExitState>);

impl Interrupt for ResetLine {
    fn trigger(&self) {
        self.0.end(VmExitReason::Reset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn first_reason_wins() {
        let s = ExitState::default();
        assert!(!s.stopping());
        assert!(!s.wait(Some(Duration::from_millis(1))));
        s.end(VmExitReason::Reset);
        s.end(VmExitReason::Killed);
        assert!(s.stopping() && s.wait(None));
        assert_eq!(s.reason(), Some(VmExitReason::Reset));
    }

    #[test]
    fn reset_line_ends_the_vm() {
        let s = Arc::new(ExitState::default());
        let t = {
            let s = s.clone();
            std::thread::spawn(move || s.wait(Some(Duration::from_secs(10))))
        };
        ResetLine(s.clone()).trigger();
        assert!(t.join().unwrap());
        assert_eq!(s.reason(), Some(VmExitReason::Reset));
    }
}
