//! The placement gate shared by payloads and workers: a forked child blocks
//! on a pipe until the parent has written its pid into the target
//! `cgroup.procs`, so its first instruction of real work runs there.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use anyhow::Context;

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub(crate) struct Gate {
    read: OwnedFd,
    write: OwnedFd,
}

impl Gate {
    pub(crate) fn new() -> anyhow::Result<Gate> {
        let (read, write) = pipe()?;
        Ok(Gate { read, write })
    }

    /// In the forked child: blocks until released. False when the parent
    /// closed the gate without releasing it (placement failed, parent died).
    /// Async-signal-safe: only close and read.
    pub(crate) fn wait_in_child(&self) -> bool {
        let mut b = 0u8;
        // SAFETY: closing the child's copy of the write end (so a dead parent
        // means EOF, not a hang) and reading one byte into our buffer. The
        // child never returns to drop `self`, so nothing closes it twice.
        unsafe {
            libc::close(self.write.as_raw_fd());
            loop {
                let n = libc::read(self.read.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
                if n == 1 {
                    return true;
                }
                if n < 0 && *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                return false;
            }
        }
    }

    /// In the parent: moves `pid` into `cgroup_dir` (when given), then opens
    /// the gate. On error the gate stays shut; the caller kills the child.
    pub(crate) fn release(self, pid: i32, cgroup_dir: Option<&Path>) -> std::io::Result<()> {
        drop(self.read);
        if let Some(dir) = cgroup_dir {
            std::fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        }
        // SAFETY: writing one byte to our own pipe.
        if unsafe { libc::write(self.write.as_raw_fd(), b"g".as_ptr().cast(), 1) } != 1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}
