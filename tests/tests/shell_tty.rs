//! The interactive `ktstr shell` through a real terminal (tmux), under QEMU;
//! `nested.rs` drives the same scenario under ktstr-vmm inside L1.

use ktstr_tests::{ktstr_bin, tmux};

#[test]
fn interactive_shell_through_a_real_terminal() {
    if !tmux::tests_enabled("shell_interactive") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = ["shell", "--scheduler", "scx_simple", "--vmm", "qemu"];
    if let Err(e) = tmux::shell_scenario(&ktstr_bin(), &args, dir.path()) {
        panic!("{e}");
    }
}

/// A scheduler that fails while the user is in the shell: the failure is
/// printed as it happens, the shell stays up, and ktstr then exits 3.
#[test]
fn a_scheduler_failure_is_told_at_once_and_the_shell_stays_up() {
    if !tmux::tests_enabled("shell_scheduler_failure") {
        return;
    }
    // scx_qmap -e N: scx_bpf_error() after N enqueues.
    let script = format!(
        "{} shell --scheduler scx_qmap --sched-arg=-e --sched-arg=300 --vmm qemu; \
         echo KTSTR-PANE-EXITED rc=$?; exec sleep 900",
        ktstr_bin().display()
    );
    let run = || -> Result<(), String> {
        let t = tmux::Tmux::start(120, 40, &script)?;
        t.wait_for("the guest's prompt", |s| s.contains("ktstr:/root#"))?;
        t.keys(&[
            "for i in $(seq 2000); do cat /proc/loadavg >/dev/null; done; echo looped",
            "Enter",
        ])?;
        t.wait_for("the failure, told", |s| s.contains("scheduler failed: "))?;
        t.wait_for("its class", |s| s.contains("the scheduler's failure: "))?;
        t.wait_for("the loop's end", |s| tmux::has_line(s, "looped"))?;
        t.keys(&["cat /sys/kernel/sched_ext/state", "Enter"])?;
        t.wait_for("the shell, still up, on EEVDF", |s| tmux::has_line(s, "disabled"))?;
        t.keys(&["exit", "Enter"])?;
        let screen = t.wait_for("ktstr's exit", |s| s.contains("KTSTR-PANE-EXITED rc="))?;
        match screen.contains("KTSTR-PANE-EXITED rc=3") && screen.contains("scx_bpf_error") {
            true => Ok(()),
            false => Err(format!("not exit 3 with the scheduler's error:\n{screen}")),
        }
    };
    if let Err(e) = run() {
        panic!("{e}");
    }
}
