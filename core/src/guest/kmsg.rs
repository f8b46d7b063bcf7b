//! Kernel log lines about sched_ext, read from `/dev/kmsg` without blocking.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// The kernel's records that mention sched_ext, as `[secs] text` lines.
pub fn sched_ext_lines() -> Vec<String> {
    let Ok(mut f) =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg")
    else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 8192];
    // Each read returns one record; EAGAIN ends the backlog.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        let rec = String::from_utf8_lossy(&buf[..n]);
        if let Some(line) = format_record(&rec) {
            if line.contains("sched_ext") || line.contains("scx") {
                lines.push(line);
            }
        }
    }
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
