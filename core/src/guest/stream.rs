//! The scheduler's log, the kernel log and the sched_ext dump, streamed to
//! the host while they are written: a guest that hangs, panics or is killed
//! still leaves the host everything up to that moment. Never blocks and
//! starts no thread (the init forks): the loops that already run every
//! ~100 ms call [`Streams::poll`].

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;

use super::{kmsg, scheduler, Channel};
use crate::protocol::{Message, OutputSource};

/// Output is sent in chunks no bigger than this.
pub const CHUNK: usize = 32 << 10;
/// Most bytes one poll reads from one stream, so a flood never stalls the watch loop.
const BUDGET: usize = 1 << 20;
/// The tracefs instance ktstr owns: its own buffer, untouched by payloads' tracing.
const TRACE_INSTANCE: &str = "/sys/kernel/tracing/instances/ktstr";
/// Per-CPU buffer of that instance, in KiB: one CPU writes the whole dump (≤ 256 KiB kept).
const TRACE_BUFFER_KB: &str = "256";

/// One stream: where it is read from and how much of it was sent.
struct Source {
    kind: OutputSource,
    file: Option<File>,
    sent: usize,
    /// An incomplete trace line, kept until its newline arrives.
    partial: Vec<u8>,
}

impl Source {
    fn new(kind: OutputSource, file: Option<File>) -> Source {
        Source { kind, file, sent: 0, partial: Vec::new() }
    }
}

pub struct Streams {
    sched_log: Source,
    kmsg: Source,
    dump: Source,
}

impl Streams {
    /// Opens `/dev/kmsg` (from its first record); the sched_ext dump waits
    /// for [`Streams::arm_sched_ext_dump`].
    pub fn open(ch: &mut Channel) -> Streams {
        let kmsg_file = kmsg::open();
        if let Err(e) = &kmsg_file {
            ch.log(format!("kernel log not streamed: /dev/kmsg: {e}"));
        }
        Streams {
            sched_log: Source::new(OutputSource::Scheduler, None),
            kmsg: Source::new(OutputSource::Kernel, kmsg_file.ok()),
            dump: Source::new(OutputSource::SchedExtDump, None),
        }
    }

    /// Captures sched_ext's dump from now on. Only a sched_ext scheduler
    /// can write one, and the trace instance costs the guest ~0.25 s to
    /// create under nested TCG, so a run under EEVDF does not arm it.
    pub fn arm_sched_ext_dump(&mut self, ch: &mut Channel) {
        match arm_dump() {
            Ok(f) => {
                ch.log(format!("sched_ext_dump tracepoint armed in {TRACE_INSTANCE}"));
                self.dump.file = Some(f);
            }
            Err(e) => ch.log(format!("no sched_ext dump capture: {e}")),
        }
    }

    /// Sends what each stream gained since the last poll; returns the bytes read.
    pub fn poll(&mut self, ch: &mut Channel) -> usize {
        if self.sched_log.file.is_none() {
            self.sched_log.file = File::open(scheduler::LOG_PATH).ok();
        }
        poll_source(ch, &mut self.sched_log, read_plain)
            + poll_source(ch, &mut self.kmsg, read_kmsg)
            + poll_source(ch, &mut self.dump, read_plain)
    }

    /// Sends everything written so far (each stream within its cap).
    pub fn finish(&mut self, ch: &mut Channel) {
        while self.poll(ch) > 0 {}
    }
}

/// Reads up to [`BUDGET`] bytes from the source, shapes them, sends them within the cap.
fn poll_source(
    ch: &mut Channel,
    src: &mut Source,
    read: fn(&mut File, &mut Vec<u8>) -> bool,
) -> usize {
    let cap = src.kind.cap();
    let Some(file) = src.file.as_mut() else { return 0 };
    if src.sent >= cap {
        return 0;
    }
    let mut data = Vec::new();
    let more = read(file, &mut data);
    let read_bytes = data.len();
    if !more {
        // A stream that failed for good (not EAGAIN or end of file) stays closed.
        src.file = None;
    }
    if src.kind == OutputSource::SchedExtDump {
        src.partial.extend_from_slice(&data);
        data = take_dump_lines(&mut src.partial);
    }
    let room = cap - src.sent;
    if data.len() > room {
        data.truncate(room);
        ch.log(format!(
            "{} reached its {} KiB cap; the rest is not sent",
            src.kind.file_name(),
            cap >> 10
        ));
    }
    src.sent += data.len();
    for part in data.chunks(CHUNK) {
        ch.send(&Message::Output { source: src.kind, data: part.to_vec() });
    }
    read_bytes
}

/// Appends what a file or pipe has now; false when it failed for good.
fn read_plain(f: &mut File, out: &mut Vec<u8>) -> bool {
    let mut buf = vec![0u8; CHUNK];
    while out.len() < BUDGET {
        match f.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Appends `/dev/kmsg` records as `[secs] text` lines, within the budget.
fn read_kmsg(f: &mut File, out: &mut Vec<u8>) -> bool {
    kmsg::read_lines(f, BUDGET.saturating_sub(out.len()), |line| {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    })
}

/// Takes the complete lines out of `partial`, keeping only the dump's text.
fn take_dump_lines(partial: &mut Vec<u8>) -> Vec<u8> {
    let Some(end) = partial.iter().rposition(|&b| b == b'\n') else { return Vec::new() };
    let complete: Vec<u8> = partial.drain(..=end).collect();
    let mut out = String::new();
    for line in String::from_utf8_lossy(&complete).lines() {
        if let Some(text) = dump_text(line) {
            out.push_str(text);
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// `  task-pid [cpu] flags  secs: sched_ext_dump: TEXT` → `TEXT`.
pub fn dump_text(line: &str) -> Option<&str> {
    let (_, text) = line.split_once(" sched_ext_dump:")?;
    Some(text.strip_prefix(' ').unwrap_or(text).trim_end_matches('\r'))
}

/// Creates ktstr's trace instance, enables `sched_ext_dump` there and
/// opens its `trace_pipe` (non-blocking, consumed as read).
fn arm_dump() -> std::io::Result<File> {
    let inst = std::path::Path::new(TRACE_INSTANCE);
    if !inst.parent().is_some_and(|p| p.is_dir()) {
        return Err(std::io::Error::other("tracefs is not mounted"));
    }
    let event = "events/sched_ext/sched_ext_dump/enable";
    if !std::path::Path::new("/sys/kernel/tracing").join(event).exists() {
        return Err(std::io::Error::other("the kernel has no sched_ext/sched_ext_dump event"));
    }
    match std::fs::create_dir(inst) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    // Best effort: the default size works too, it only costs more memory.
    let _ = std::fs::write(inst.join("buffer_size_kb"), TRACE_BUFFER_KB);
    std::fs::write(inst.join(event), "1")?;
    open_nonblocking(&inst.join("trace_pipe").to_string_lossy())
}

pub(super) fn open_nonblocking(path: &str) -> std::io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_line_gives_the_dump_text() {
        let l = "     kworker/0:1-12    [000] d..2.    12.345678: sched_ext_dump: CPU states";
        assert_eq!(dump_text(l), Some("CPU states"));
        assert_eq!(dump_text("  x-1 [001] ..... 1.0: sched_ext_dump: "), Some(""));
        assert_eq!(dump_text("  x-1 [001] ..... 1.0: sched_switch: prev=a"), None);
    }

    #[test]
    fn only_complete_lines_are_taken() {
        let mut p = b"a-1 [0] . 1.0: sched_ext_dump: one\nother\na-1 [0] . 1.0: sched_ext_dump: tw"
            .to_vec();
        assert_eq!(take_dump_lines(&mut p), b"one\n");
        p.extend_from_slice(b"o\n");
        assert_eq!(take_dump_lines(&mut p), b"two\n");
        assert!(p.is_empty());
    }
}
