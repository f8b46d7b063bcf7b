//! The host's end of the interactive shell: a Unix socket the VM engine
//! connects the guest's `ktstr-shell` port to, and a thread that relays it
//! to the user's terminal: the guest's output to stdout, keys and window
//! sizes to the guest (framed, see `ktstr_core::protocol::terminal`).
//!
//! The terminal goes raw when the guest's shell first speaks, so that the
//! boot's progress lines read normally and keys typed meanwhile wait in the
//! terminal. Ctrl-] then q ends the VM (as Ctrl-C would without raw mode,
//! through `crate::interrupt`): the way out of a wedged guest.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use ktstr_core::protocol::terminal::{encode_input, TermInput};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::raw::{self, RawMode};

/// The escape key, Ctrl-] (as telnet's); `q` after it ends the VM.
pub const ESCAPE: u8 = 0x1d;
/// How often the relay looks at the window size and whether to stop.
const TICK_MS: u16 = 100;

pub struct Relay {
    listener: UnixListener,
    path: PathBuf,
}

impl Relay {
    /// Listens at `dir/shell.sock` (`dir` short enough for a socket path).
    pub fn listen(dir: &Path) -> anyhow::Result<Relay> {
        let path = dir.join("shell.sock");
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("listen on the shell socket {}", path.display()))?;
        Ok(Relay { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts relaying in a thread: call before the VM boots (the engine
    /// connects at boot; the connection waits in the backlog until accepted).
    pub fn start(self) -> anyhow::Result<Running> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ktstr-shell-relay".into())
            .spawn(move || relay(&self.listener, &stopping))
            .context("spawn the shell relay thread")?;
        Ok(Running { stop, thread: Some(thread) })
    }
}

/// A relay at work; stopping it (or dropping it) restores the terminal.
pub struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Stops once the guest's last output is shown; the terminal is
    /// restored, and a relay that failed says so.
    pub fn stop(mut self) {
        if let Err(e) = self.stop_now() {
            raw::eprint_line(&format!("[ktstr] the shell's relay failed: {e:#}"));
        }
    }

    fn stop_now(&mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let result = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(anyhow::anyhow!("the shell relay panicked")),
            None => Ok(()),
        };
        raw::restore();
        result
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop_now();
    }
}

fn relay(listener: &UnixListener, stop: &AtomicBool) -> anyhow::Result<()> {
    let Some(mut sock) = accept(listener, stop)? else { return Ok(()) };
    // None: the first pass sends the terminal's size, before any key.
    let mut size = None;
    let (mut raw_mode, mut keys_open, mut escape) = (None::<RawMode>, true, false);
    let mut buf = [0u8; 8192];
    let mut stdout = std::io::stdout();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        // Keys are read only once the terminal is raw: typed earlier, they wait.
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        if raw_mode.is_some() && keys_open {
            fds.push(PollFd::new(stdin_fd(&stdin), PollFlags::POLLIN));
        }
        // Stopping: drain what the guest said last, without waiting for more.
        let wait = if stopping { PollTimeout::ZERO } else { PollTimeout::from(TICK_MS) };
        match poll(&mut fds, wait) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).context("poll the shell relay"),
        }
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let (from_guest, from_keys) = (ready(0), ready(1));
        drop(fds);
        if from_guest {
            match sock.read(&mut buf) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => {
                    if raw_mode.is_none() {
                        raw_mode = RawMode::enable().ok();
                    }
                    stdout.write_all(&buf[..n])?;
                    stdout.flush()?;
                }
            }
        } else if stopping {
            return Ok(());
        }
        // The size before the keys: keys typed after a resize (`stty size`)
        // must find the guest's PTY resized already.
        let now = raw::window_size();
        if now != size {
            size = now;
            if let Some((rows, cols)) = now {
                sock.write_all(&encode_input(&TermInput::Resize { rows, cols }))?;
            }
        }
        if from_keys {
            let n = stdin.lock().read(&mut buf).unwrap_or(0);
            if n == 0 {
                keys_open = false;
            }
            let (keys, quit) = filter_escape(&buf[..n], &mut escape);
            if !keys.is_empty() {
                sock.write_all(&encode_input(&TermInput::Data(keys)))?;
            }
            if quit {
                raw::eprint_line("[ktstr] Ctrl-] q: ending the VM");
                crate::interrupt::request();
            }
        }
    }
}

/// Unless stdin and stdout are a terminal, the usage error that says so,
/// ending with `hint` (what to do instead).
pub fn require_terminal(hint: &str) -> Result<(), crate::usage::UsageError> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        return Ok(());
    }
    let why = format!("no terminal on stdin and stdout, so no interactive shell: {hint}");
    Err(crate::usage::UsageError(why))
}

/// Waits for the engine to connect, or for `stop`.
fn accept(listener: &UnixListener, stop: &AtomicBool) -> anyhow::Result<Option<UnixStream>> {
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(TICK_MS)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => return Ok(Some(listener.accept().context("accept the VM's shell port")?.0)),
            Err(e) => return Err(e).context("poll the shell socket"),
        }
    }
    Ok(None)
}

fn stdin_fd(stdin: &std::io::Stdin) -> BorrowedFd<'_> {
    // SAFETY: fd 0 outlives the borrow of `stdin`.
    unsafe { BorrowedFd::borrow_raw(stdin.as_raw_fd()) }
}

/// The keys to send, and whether the escape sequence (Ctrl-] q) was typed.
/// Ctrl-] then anything else sends both; Ctrl-] twice sends one.
pub fn filter_escape(keys: &[u8], pending: &mut bool) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(keys.len());
    for &k in keys {
        if std::mem::take(pending) {
            match k {
                b'q' | b'Q' => return (out, true),
                ESCAPE => out.push(ESCAPE),
                other => out.extend([ESCAPE, other]),
            }
        } else if k == ESCAPE {
            *pending = true;
        } else {
            out.push(k);
        }
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_then_q_quits_and_other_keys_pass() {
        let mut p = false;
        assert_eq!(filter_escape(b"ls\r", &mut p), (b"ls\r".to_vec(), false));
        assert_eq!(filter_escape(&[b'a', ESCAPE], &mut p), (vec![b'a'], false));
        assert!(p, "Ctrl-] at the end of a read waits for the next key");
        assert_eq!(filter_escape(b"q", &mut p), (vec![], true));
        assert_eq!(
            filter_escape(&[ESCAPE, ESCAPE, 3, ESCAPE, b'x'], &mut p).0,
            [ESCAPE, 3, ESCAPE, b'x']
        );
    }
}
