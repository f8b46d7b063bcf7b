//! The kernel log, read from `/dev/kmsg` without blocking: streamed whole to
//! the host (`stream.rs`) and searched for the lines about sched_ext when a
//! scheduler fails.

use std::fs::File;
use std::io::{ErrorKind, Read};

/// `/dev/kmsg` from its first record, non-blocking.
pub(super) fn open() -> std::io::Result<File> {
    super::stream::open_nonblocking("/dev/kmsg")
}

/// Hands each record waiting in `f` to `line` as `[secs] text`, until none
/// is left or `budget` bytes were handed over (true) or a read fails
/// (false). Records the ring buffer overwrote before they were read become
/// one marker line.
pub(super) fn read_lines(f: &mut File, budget: usize, mut line: impl FnMut(&str)) -> bool {
    let mut buf = vec![0u8; 8192];
    let mut given = 0;
    while given < budget {
        // Each read returns one record; EAGAIN ends the backlog.
        match f.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                if let Some(text) = format_record(&String::from_utf8_lossy(&buf[..n])) {
                    given += text.len() + 1;
                    line(&text);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                line("[ktstr: kernel log records were lost here]");
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// The kernel's records that mention sched_ext, as `[secs] text` lines.
pub fn sched_ext_lines() -> Vec<String> {
    let Ok(mut f) = open() else { return Vec::new() };
    let mut lines = Vec::new();
    read_lines(&mut f, usize::MAX, |l| {
        if l.contains("sched_ext") || l.contains("scx") {
            lines.push(l.to_string());
        }
    });
    lines
}

/// `prio,seq,usecs,flags;text` → `[secs] text`.
pub(super) fn format_record(rec: &str) -> Option<String> {
    let (meta, text) = rec.split_once(';')?;
    let usecs: u64 = meta.split(',').nth(2)?.parse().ok()?;
    let text = text.lines().next().unwrap_or("");
    Some(format!("[{:>5}.{:06}] {text}", usecs / 1_000_000, usecs % 1_000_000))
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_a_record() {
        let r = "6,1234,5123456,-;sched_ext: BPF scheduler \"simple\" enabled\n SUBSYSTEM=x\n";
        assert_eq!(
            super::format_record(r).unwrap(),
            "[    5.123456] sched_ext: BPF scheduler \"simple\" enabled"
        );
    }
}
