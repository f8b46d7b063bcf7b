//! A terminal for the payload (`ktstr shell`): a PTY whose slave becomes the
//! payload's stdin, stdout, stderr and controlling terminal, and whose
//! master is relayed to the virtio-console port `ktstr-shell` (see
//! `protocol::terminal` for what travels on it).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use anyhow::Context;

use crate::protocol::terminal::{InputDecoder, TermInput, SHELL_PORT};

pub struct Terminal {
    master: File,
    /// Held until the payload is forked; the parent then closes it, so that
    /// the master reads end-of-file once the payload's side is closed.
    slave: Option<OwnedFd>,
    port: File,
    /// False once the host's side of the port closed.
    port_open: bool,
    decoder: InputDecoder,
}

impl Terminal {
    /// Opens the shell port and a PTY pair.
    pub fn open() -> anyhow::Result<Terminal> {
        let dev = crate::guest::channel::find_port(SHELL_PORT).with_context(|| {
            format!("no virtio-console port `{SHELL_PORT}`: the host gave this VM no terminal")
        })?;
        let port = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&dev)
            .with_context(|| format!("open the shell port {dev}"))?;
        Self::over(port)
    }

    /// A PTY pair relayed to `port` (the shell port, or a test's socket).
    pub fn over(port: File) -> anyhow::Result<Terminal> {
        let pty = nix::pty::openpty(None, None).context("openpty")?;
        for fd in [pty.master.as_raw_fd(), port.as_raw_fd()] {
            // SAFETY: fcntl on fds we own. The payload must not inherit them:
            // a background job holding the master would keep the relay open.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        Ok(Terminal {
            master: File::from(pty.master),
            slave: Some(pty.slave),
            port,
            port_open: true,
            decoder: InputDecoder::default(),
        })
    }

    /// The slave's fd, for the forked child (see [`attach_in_child`]).
    pub fn slave_fd(&self) -> Option<RawFd> {
        self.slave.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// After the fork: the parent's copy of the slave is closed, and it
    /// reads the payload's output from a copy of the master.
    pub fn forked(&mut self) -> anyhow::Result<OwnedFd> {
        self.slave = None;
        Ok(self.master.try_clone().context("dup the PTY master")?.into())
    }

    /// The port's fd while the host's side is open, to poll for input.
    pub fn input_fd(&self) -> Option<RawFd> {
        self.port_open.then(|| self.port.as_raw_fd())
    }

    /// Reads what the host sent (the port is readable) and applies it: keys
    /// to the PTY, window sizes to the PTY (the kernel sends SIGWINCH).
    pub fn relay_input(&mut self) {
        let mut buf = [0u8; 4096];
        let n = match self.port.read(&mut buf) {
            Ok(0) | Err(_) => {
                self.port_open = false;
                return;
            }
            Ok(n) => n,
        };
        for input in self.decoder.push(&buf[..n]) {
            match input {
                TermInput::Data(keys) => {
                    let _ = self.master.write_all(&keys);
                }
                TermInput::Resize { rows, cols } => {
                    let ws =
                        libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
                    // SAFETY: TIOCSWINSZ reads a winsize we own.
                    unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                }
            }
        }
    }

    /// The payload's output, to the host's terminal.
    pub fn forward(&mut self, bytes: &[u8]) {
        if self.port_open && self.port.write_all(bytes).is_err() {
            self.port_open = false;
        }
    }
}

/// In the forked child, before exec: a session of its own with the PTY as
/// its controlling terminal and stdio. Only async-signal-safe calls.
///
/// # Safety
/// Call only in a freshly forked child, with `slave` an open PTY slave.
pub unsafe fn attach_in_child(slave: RawFd) {
    libc::setsid();
    libc::ioctl(slave, libc::TIOCSCTTY, 0);
    for fd in 0..3 {
        libc::dup2(slave, fd);
    }
    if slave > 2 {
        libc::close(slave);
    }
}

/// Runs `program` on a fresh PTY relayed to `port`, in the root cgroup, and
/// returns its exit code (128+N for signal N): how `ktstr nested` gives the
/// ktstr inside L1 a terminal for an interactive shell.
pub fn run_on_terminal(port: File, program: &str, args: &[String]) -> anyhow::Result<i32> {
    struct Quiet;
    impl super::Watch for Quiet {
        fn started(&mut self, _: u32) {}
        fn output(&mut self, _: bool, _: &[u8]) {}
        fn keep_going(&mut self) -> bool {
            true
        }
    }
    let program = super::Program::Exec { path: program, args, env: &[] };
    let terminal = Terminal::over(port)?;
    let root = crate::guest::mounts::CGROUP_ROOT;
    let o = super::run(&program, root, true, None, Some(terminal), &mut Quiet)?;
    Ok(o.exit_code.or(o.signal.map(|s| 128 + s)).unwrap_or(1))
}
