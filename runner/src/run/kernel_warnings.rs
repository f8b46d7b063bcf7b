//! The guest kernel's warnings (`WARN()`, `WARN_ON()`) found in its log: a
//! sched_ext scheduler that trips one, or a VM that gives the kernel a state
//! it doubts, deserves a line in the result even when every check passed.

use serde::Serialize;

/// Warnings kept in the result; later ones are only counted.
const KEPT: usize = 8;

/// One `WARNING:` report, as its first lines name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelWarning {
    /// The WARN's own message (the line before `WARNING:`), when it has one.
    pub message: Option<String>,
    /// Where: `arch/x86/kernel/fpu/xstate.c:605 fpu__init_system_xstate+0x806/0xb10`.
    pub at: String,
}

impl KernelWarning {
    pub fn describe(&self) -> String {
        match &self.message {
            Some(m) => format!("{m} (at {})", self.at),
            None => format!("at {}", self.at),
        }
    }
}

/// Every warning in `log` (kmsg lines `[secs] text`, or a raw console) in
/// order, the first `KEPT` of them, and how many there were in all.
pub fn scan(log: &[u8]) -> (Vec<KernelWarning>, usize) {
    let text = String::from_utf8_lossy(log);
    let lines: Vec<&str> = text.lines().map(body).collect();
    let mut kept = Vec::new();
    let mut seen = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("WARNING: ") else { continue };
        seen += 1;
        if kept.len() == KEPT {
            continue;
        }
        // `WARNING: CPU: 0 PID: 0 at FILE:LINE FUNC+OFF/LEN`; older kernels
        // print `WARNING: at …`.
        let at = rest.split_once(" at ").map_or(rest, |(_, at)| at).trim().to_string();
        let message = i
            .checked_sub(1)
            .map(|p| lines[p].trim())
            .filter(|m| !m.is_empty() && !m.contains("[ cut here ]"))
            .map(str::to_string);
        kept.push(KernelWarning { message, at });
    }
    (kept, seen)
}

/// A line's text after its `[    0.301187] ` stamp, if it has one.
fn body(line: &str) -> &str {
    let line = line.trim_end_matches('\r');
    super::console_watch::kernel_text(line).unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const XSAVE: &str = "\
[    0.301187] Last level dTLB entries: 4KB 512, 2MB 255, 4MB 127, 1GB 0
[    0.301187] ------------[ cut here ]------------
[    0.301187] XSAVE consistency problem: size 832 != kernel_size 576
[    0.301187] WARNING: CPU: 0 PID: 0 at arch/x86/kernel/fpu/xstate.c:605 fpu__init_system_xstate+0x806/0xb10
[    0.301187] CPU: 0 UID: 0 PID: 0 Comm: swapper/0 Not tainted 6.12.118 #1
";

    #[test]
    fn a_warn_with_its_message() {
        let (w, n) = scan(XSAVE.as_bytes());
        assert_eq!(n, 1);
        assert_eq!(
            w[0].describe(),
            "XSAVE consistency problem: size 832 != kernel_size 576 (at \
             arch/x86/kernel/fpu/xstate.c:605 fpu__init_system_xstate+0x806/0xb10)"
        );
    }

    #[test]
    fn a_bare_warn_on_has_no_message() {
        let log = "------------[ cut here ]------------\n\
                   WARNING: CPU: 3 PID: 77 at kernel/sched/ext.c:1234 scx_ops_enable+0x10/0x20\n";
        let (w, _) = scan(log.as_bytes());
        assert_eq!(w[0].message, None);
        assert_eq!(w[0].at, "kernel/sched/ext.c:1234 scx_ops_enable+0x10/0x20");
    }

    #[test]
    fn many_are_counted_a_few_kept_and_a_clean_log_has_none() {
        let log = XSAVE.repeat(KEPT + 3);
        let (w, n) = scan(log.as_bytes());
        assert_eq!((w.len(), n), (KEPT, KEPT + 3));
        assert_eq!(scan(b"[    0.1] Run /init as init process\n"), (vec![], 0));
    }
}
