//! What kind of scheduler failure, from the scheduler's own end, when the
//! kernel's console named none: it never loaded (the BPF verifier or the
//! struct_ops attach refused it; libbpf prints why), it crashed on a signal,
//! or it exited on its own. Pure: reads the failure and the streamed log.

use ktstr_core::protocol::SchedulerFailure;

use super::console_watch::Class;

/// libbpf brackets the verifier's log of a program that failed to load.
const LOG_BEGIN: &str = "-- BEGIN PROG LOAD LOG --";
const LOG_END: &str = "-- END PROG LOAD LOG --";
/// What libbpf and the scx helpers print when loading or attaching fails.
const LOAD_FAILED: [&str; 5] = [
    "BPF program load failed",
    "failed to load BPF skeleton",
    "failed to load object",
    "failed to attach struct_ops",
    "Failed to attach",
];
/// The verifier log can be thousands of lines: its end says why.
const LOG_LINES: usize = 20;

/// The class of a scheduler that failed: `ready` when it had reached
/// `enabled` before; `log` is its whole streamed output.
pub fn classify(failure: &SchedulerFailure, ready: bool, log: &str) -> Option<Class> {
    if !ready && load_error(log).is_some() {
        return Some(Class::DidNotLoad);
    }
    let reason = &failure.reason;
    if reason.contains("exited (signal:") {
        Some(Class::Crashed)
    } else if reason.contains("exited (exit status:") {
        Some(Class::Exited)
    } else {
        None
    }
}

/// Why the scheduler did not load, from libbpf's output: the verifier's
/// last lines (with the program's name) when a program was refused, else
/// the first load or attach error line.
pub fn load_error(log: &str) -> Option<String> {
    let lines: Vec<&str> = log.lines().collect();
    if let Some(begin) = lines.iter().position(|l| l.contains(LOG_BEGIN)) {
        let header = lines[begin].split(LOG_BEGIN).next().unwrap_or_default();
        let prog = header.trim().trim_start_matches("libbpf:").trim().trim_end_matches(':');
        let body = &lines[begin + 1..];
        let end = body.iter().position(|l| l.contains(LOG_END)).unwrap_or(body.len());
        let body = &body[..end];
        let tail = &body[body.len().saturating_sub(LOG_LINES)..];
        return Some(format!("{prog} refused by the BPF verifier:\n{}", tail.join("\n")));
    }
    lines.iter().find(|l| LOAD_FAILED.iter().any(|m| l.contains(m))).map(|l| l.trim().to_string())
}

/// The kernel's own words when it disabled a sched_ext scheduler:
/// `BPF scheduler "qmap" disabled (runnable task stall)` and the line after
/// it that names what happened, `qmap: workers[40] failed to run for 7.460s`.
pub fn kernel_disable_words(kernel_log: &str) -> Option<String> {
    let lines: Vec<&str> = kernel_log.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("sched_ext: BPF scheduler \"") && l.contains(" disabled ("))?;
    let said = |l: &str| l.split_once("sched_ext: ").map(|(_, w)| w.trim().to_string());
    let head = said(lines[at])?;
    match lines.get(at + 1).and_then(|l| said(l)) {
        Some(detail) if !detail.starts_with("BPF scheduler") => Some(format!("{head}: {detail}")),
        _ => Some(head),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libbpf 1.x's output for a sched_ext program the verifier refuses.
    const VERIFIER: &str = "\
libbpf: prog 'bad_enqueue': BPF program load failed: Permission denied
libbpf: prog 'bad_enqueue': -- BEGIN PROG LOAD LOG --
0: R1=ctx() R10=fp0
; u64 *p = NULL; @ scx_bad.bpf.c:12
0: (b7) r1 = 0                        ; R1_w=0
1: (79) r0 = *(u64 *)(r1 +0)
R1 invalid mem access 'scalar'
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
-- END PROG LOAD LOG --
libbpf: prog 'bad_enqueue': failed to load: -13
libbpf: failed to load object 'scx_bad'
libbpf: failed to load BPF skeleton 'scx_bad': -13
[SCX_BUG] scx_bad.c:40 failed to load skel
";

    #[test]
    fn the_kernels_words_on_disabling_name_the_stalled_task() {
        let log = "[    3.37] sched_ext: BPF scheduler \"qmap\" enabled\n\
                   [   11.03] sched_ext: BPF scheduler \"qmap\" disabled (runnable task stall)\n\
                   [   11.04] sched_ext: qmap: workers[40] failed to run for 7.460s\n\
                   [   11.04]    update_curr_scx+0x12/0x37\n";
        assert_eq!(
            kernel_disable_words(log).as_deref(),
            Some(
                "BPF scheduler \"qmap\" disabled (runnable task stall): qmap: workers[40] \
                failed to run for 7.460s"
            )
        );
        let bare =
            "[ 9.1] sched_ext: BPF scheduler \"simple\" disabled (unregistered from user space)\n";
        assert_eq!(
            kernel_disable_words(bare).as_deref(),
            Some("BPF scheduler \"simple\" disabled (unregistered from user space)")
        );
        assert_eq!(kernel_disable_words("[ 1.0] sched_ext: BPF scheduler \"qmap\" enabled"), None);
    }

    fn failure(reason: &str) -> SchedulerFailure {
        SchedulerFailure { reason: reason.into(), output_tail: String::new(), kernel_log: vec![] }
    }

    #[test]
    fn a_verifier_refusal_is_did_not_load_with_the_verifiers_words() {
        let f = failure("scheduler process exited (exit status: 1)");
        assert_eq!(classify(&f, false, VERIFIER), Some(Class::DidNotLoad));
        let why = load_error(VERIFIER).unwrap();
        assert!(why.starts_with("prog 'bad_enqueue' refused by the BPF verifier:"), "{why}");
        assert!(why.contains("R1 invalid mem access 'scalar'"), "{why}");
        assert!(!why.contains("END PROG LOAD LOG"), "{why}");
    }

    #[test]
    fn an_attach_error_is_did_not_load_too() {
        let log = "libbpf: map 'bad_ops': failed to attach struct_ops: -22\n";
        let f = failure("scheduler process exited (exit status: 1)");
        assert_eq!(classify(&f, false, log), Some(Class::DidNotLoad));
        assert_eq!(
            load_error(log).unwrap(),
            "libbpf: map 'bad_ops': failed to attach struct_ops: -22"
        );
    }

    #[test]
    fn crashes_and_exits_are_told_apart_and_a_loaded_scheduler_is_not_did_not_load() {
        let crashed = failure("scheduler process exited (signal: 11 (SIGSEGV))");
        assert_eq!(classify(&crashed, true, ""), Some(Class::Crashed));
        let exited = failure("scheduler process exited (exit status: 2)");
        assert_eq!(classify(&exited, true, VERIFIER), Some(Class::Exited));
        let waiting = failure("not ready after 10s: sched_ext state `disabled`");
        assert_eq!(classify(&waiting, false, "all fine\n"), None);
    }

    #[test]
    fn a_long_verifier_log_is_cut_to_its_end() {
        let mut log = String::from("libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n");
        for i in 0..500 {
            log.push_str(&format!("{i}: insn\n"));
        }
        log.push_str("the reason\n-- END PROG LOAD LOG --\n");
        let why = load_error(&log).unwrap();
        assert_eq!(why.lines().count(), 1 + LOG_LINES);
        assert!(why.ends_with("the reason"), "{why}");
    }
}
