//! The thread that serves a disk's queue. The guest's queue notifications
//! arrive on an ioeventfd (KVM completes the MMIO write in the kernel), so a
//! vCPU never waits for disk I/O; throttled work is retried when due.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use vmm_sys_util::eventfd::EventFd;

use super::mmio::MmioTransport;
use crate::exit::ExitState;

/// How often an idle worker looks whether the VM has ended (a stop also
/// interrupts its poll with the vCPU kick signal).
const IDLE_POLL: Duration = Duration::from_millis(100);

pub struct QueueWorker {
    pub transport: Arc<Mutex<MmioTransport>>,
    pub notify: EventFd,
    pub exit: Arc<ExitState>,
}

impl QueueWorker {
    /// Serves queue 0 on every notification until the VM stops.
    pub fn run(self) {
        // Some(d): work is left over, to be served again after d.
        let mut retry: Option<Duration> = None;
        while !self.exit.stopping() {
            let wait = retry.map_or(IDLE_POLL, |d| d.min(IDLE_POLL));
            // SAFETY: the eventfd is owned by `self` and outlives this borrow.
            let fd = unsafe { BorrowedFd::borrow_raw(self.notify.as_raw_fd()) };
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) if retry.is_none() => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!("virtio-blk worker: poll failed: {e}");
                    return;
                }
            }
            let _ = self.notify.read(); // non-blocking: clears the count
            let mut t = self.transport.lock().unwrap_or_else(|p| p.into_inner());
            t.process_queue(0);
            retry = t.retry_after();
        }
    }
}
