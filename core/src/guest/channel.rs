//! The data channel to the host: the virtio-console port named `ktstr`, or
//! COM2 (`/dev/ttyS1`, raw mode) when the port is missing. Frames written
//! here are decoded by the host; the console (COM1) stays human-readable.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::OnceLock;

use crate::protocol::{encode, Message};

pub const PORT_NAME: &str = "ktstr";
pub const FALLBACK_TTY: &str = "/dev/ttyS1";

/// A second handle on the channel for the panic hook's last word (the
/// virtio port may refuse a second open).
static LAST_WORD: OnceLock<File> = OnceLock::new();

pub struct Channel {
    out: Option<File>,
    pub description: String,
}

impl Channel {
    /// Opens the best channel available; with none, messages only go to the
    /// console log and the host will report a timeout with that log.
    pub fn open() -> Channel {
        if let Some(dev) = find_port(PORT_NAME) {
            if let Ok(f) = OpenOptions::new().write(true).open(&dev) {
                keep_for_last_word(&f);
                return Channel { out: Some(f), description: format!("virtio-console port {dev}") };
            }
        }
        match OpenOptions::new().write(true).open(FALLBACK_TTY) {
            Ok(f) => {
                make_raw(&f);
                keep_for_last_word(&f);
                eprintln!("ktstr-init: virtio port `{PORT_NAME}` missing; using {FALLBACK_TTY}");
                Channel { out: Some(f), description: format!("fallback {FALLBACK_TTY}") }
            }
            Err(e) => {
                eprintln!(
                    "ktstr-init: no data channel ({FALLBACK_TTY}: {e}); results cannot \
                    reach the host"
                );
                Channel { out: None, description: "none".into() }
            }
        }
    }

    pub fn send(&mut self, msg: &Message) {
        let Some(out) = self.out.as_mut() else { return };
        if let Err(e) = out.write_all(&encode(msg)).and_then(|()| out.flush()) {
            eprintln!("ktstr-init: data channel write failed: {e}");
        }
    }

    /// A line for the host's log and the console.
    pub fn log(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("ktstr-init: {text}");
        self.send(&Message::Log { text });
    }
}

fn keep_for_last_word(f: &File) {
    if let Ok(dup) = f.try_clone() {
        let _ = LAST_WORD.set(dup);
    }
}

/// Sends `msg` on the handle kept for the panic hook; a frame the panic cut
/// short is skipped by the host's decoder, which resynchronises on this one.
pub fn send_last_word(msg: &Message) {
    if let Some(mut out) = LAST_WORD.get() {
        let _ = out.write_all(&encode(msg)).and_then(|()| out.flush());
    }
}

/// `/dev/vportNpM` whose sysfs name is `name`.
pub(crate) fn find_port(name: &str) -> Option<String> {
    let dir = std::fs::read_dir("/sys/class/virtio-ports").ok()?;
    dir.filter_map(Result::ok).find_map(|e| {
        let port_name = std::fs::read_to_string(e.path().join("name")).ok()?;
        (port_name.trim() == name).then(|| format!("/dev/{}", e.file_name().to_string_lossy()))
    })
}

/// No newline translation or echo: frames are binary.
fn make_raw(f: &File) {
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    if let Ok(mut t) = tcgetattr(f.as_fd()) {
        cfmakeraw(&mut t);
        let _ = tcsetattr(f.as_fd(), SetArg::TCSANOW, &t);
    }
}
