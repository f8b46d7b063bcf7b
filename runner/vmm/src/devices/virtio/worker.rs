//! The threads that serve devices off the vCPUs: a disk's queue (the
//! guest's notifications arrive on an ioeventfd, KVM completing the MMIO
//! write in the kernel, so a vCPU never waits for disk I/O; throttled work
//! is retried when due), and the shell port's input from the host.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use vmm_sys_util::eventfd::EventFd;

use super::console::RX1;
use super::mmio::MmioTransport;
use super::shell_port::ShellInput;
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

/// Reads what the host sends to the shell port and wakes the console.
pub struct ShellReader {
    pub transport: Arc<Mutex<MmioTransport>>,
    pub stream: UnixStream,
    pub input: ShellInput,
    pub exit: Arc<ExitState>,
}

impl ShellReader {
    /// Until the VM stops or the host closes its end.
    pub fn run(mut self) {
        let mut buf = [0u8; 4096];
        while !self.exit.stopping() {
            let mut fds = [PollFd::new(self.stream.as_fd(), PollFlags::POLLIN)];
            let ms = u16::try_from(IDLE_POLL.as_millis()).unwrap_or(u16::MAX);
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("shell port: poll failed: {e}");
                    return;
                }
            }
            let n = match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("shell port: {e}");
                    return;
                }
            };
            if !self.input.push(&buf[..n]) {
                tracing::warn!("shell port: the guest reads no input; {n} bytes dropped");
            }
            self.transport.lock().unwrap_or_else(|p| p.into_inner()).process_queue(RX1);
        }
    }
}
