//! The user's terminal in raw mode while an interactive shell has it, and
//! restored on every way out: the guard's drop, a panic (the hook), and the
//! end of the session. The saved settings are global so that any of these
//! can restore them, once.

use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// The settings to restore, while raw mode is on.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);
static RAW: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

fn stdin_fd() -> BorrowedFd<'static> {
    // SAFETY: fd 0 stays open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(std::io::stdin().as_raw_fd()) }
}

/// Raw mode on stdin until dropped (or [`restore`]).
pub struct RawMode(());

impl RawMode {
    /// Keys reach us one by one, unechoed, Ctrl-C as a byte; output is not
    /// translated (the guest's PTY already sends CR LF).
    pub fn enable() -> anyhow::Result<RawMode> {
        let saved = tcgetattr(stdin_fd())?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        *SAVED.lock().unwrap_or_else(|p| p.into_inner()) = Some(saved);
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        // TCSANOW, not TCSAFLUSH: keys typed while the VM booted are kept.
        tcsetattr(stdin_fd(), SetArg::TCSANOW, &raw)?;
        RAW.store(true, Ordering::SeqCst);
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back as it was, if raw mode is on.
pub fn restore() {
    let saved = SAVED.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(t) = saved {
        // TCSADRAIN: what the guest printed last reaches the screen first.
        let _ = tcsetattr(stdin_fd(), SetArg::TCSADRAIN, &t);
        RAW.store(false, Ordering::SeqCst);
    }
}

/// Whether raw mode is on (lines then need CR LF, and a fresh line first).
pub fn is_raw() -> bool {
    RAW.load(Ordering::SeqCst)
}

/// One of ktstr's lines on stderr, readable whether or not the terminal is raw.
pub fn eprint_line(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = if is_raw() {
        write!(err, "\r\n{}\r\n", line.replace('\n', "\r\n"))
    } else {
        writeln!(err, "{line}")
    };
}

/// The terminal's (rows, cols), if stdin is one.
pub fn window_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ fills a winsize we own.
    let ok = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}
