//! `ktstr shell --exec` and `ktstr run --exec`, in real VMs: the command's
//! output is ours as it arrives, its exit code is ours, the scheduler runs.

use std::process::{Command, Stdio};

use ktstr_tests::{ktstr_bin, metric, stdout_json, vm_tests_enabled};

fn shell(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ktstr_bin())
        .arg("shell")
        .args(args)
        .stdin(Stdio::null())
        .env_remove("KTSTR_PLUGIN_PATH")
        .output()
        .expect("run ktstr");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn shell_exec_prints_what_the_guest_sees_and_passes_its_exit_code_through() {
    if !vm_tests_enabled("shell_exec") {
        return;
    }
    let cmd = "nproc; cat /sys/devices/system/cpu/online; echo to-stderr >&2";
    let (code, stdout, stderr) = shell(&["--exec", cmd, "--topology", "1n2l2c1t", "--vmm", "qemu"]);
    assert_eq!((code, stdout.as_str()), (0, "4\n0-3\n"), "{stderr}");
    assert!(stderr.contains("to-stderr\n"), "{stderr}");

    let cmd = "cat /sys/kernel/sched_ext/root/ops; exit 3";
    let (code, stdout, stderr) =
        shell(&["--scheduler", "scx_simple", "--exec", cmd, "--vmm", "qemu"]);
    assert_eq!((code, stdout.as_str()), (3, "simple\n"), "{stderr}");
    assert!(stderr.contains("the command exited 3"), "{stderr}");
}

#[test]
fn shell_without_a_command_or_a_terminal_is_a_usage_error() {
    let (code, stdout, stderr) = shell(&[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("no terminal on stdin") && stderr.contains("--exec CMD"), "{stderr}");
}

/// `run --exec`: a payload like any other, its JSON output its metrics;
/// braces in the command are the shell's, not ktstr's templates.
#[test]
fn run_exec_checks_the_exit_code_and_reads_json_metrics() {
    if !vm_tests_enabled("run_exec") {
        return;
    }
    let out = Command::new(ktstr_bin())
        .args(["run", "--vmm", "qemu", "--exec", r#"echo '{"answer": 42}'"#, "--json", "-"])
        .output()
        .expect("run ktstr");
    let doc = stdout_json(&out);
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    assert_eq!(metric(&doc, "answer"), Some(42.0), "{doc:#}");
}
