//! When a scheduler fails or the guest never answers, the evidence reaches
//! the host: the scheduler's output and the kernel log streamed as written,
//! and the kernel's sched_ext dump.

use ktstr_tests::{ktstr_run_into as run_into, vm_tests_enabled};

fn read(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .into_owned()
}

#[test]
fn a_scheduler_that_dies_mid_run_is_scheduler_failed_with_its_dump_and_the_kernel_log() {
    if !vm_tests_enabled("sched_ext_dump") {
        return;
    }
    let artifacts = tempfile::tempdir().unwrap();
    // scx_qmap -e N calls scx_bpf_error() after N enqueues; the kernel dumps its state.
    let (code, doc, summary, progress) = run_into(
        artifacts.path(),
        &[
            "--plugin",
            "workers",
            "--scheduler",
            "scx_qmap",
            "--sched-arg=-e",
            "--sched-arg=20000",
            "--arg=--work",
            "--arg=yield,futex,sleep",
            "--arg=--duration",
            "--arg=30",
        ],
    );
    assert_eq!(code, 3, "{doc:#}\n{progress}");
    assert_eq!(doc["verdict"], "SCHEDULER_FAILED");
    let failure = &doc["scheduler"]["failure"];
    assert!(!failure["reason"].as_str().unwrap().is_empty());
    let evidence =
        format!("{}{:?}", failure["output_tail"].as_str().unwrap(), failure["kernel_log"]);
    assert!(evidence.contains("qmap") || evidence.contains("sched_ext"), "{failure:#}");
    let dump = doc["scheduler"]["sched_ext_dump"].as_str().unwrap_or_else(|| panic!("{doc:#}"));
    // The dump's head names the exit and its reason, then the CPU states.
    assert!(dump.contains("triggered exit kind"), "{dump}");
    assert!(dump.contains("scx_bpf_error"), "{dump}");
    assert!(dump.contains("CPU states"), "{dump}");
    assert_eq!(read(artifacts.path(), "sched_ext_dump.txt"), dump);
    let kmsg = read(artifacts.path(), "kmsg.log");
    assert!(kmsg.contains("Linux version"), "the kernel log from boot on:\n{kmsg}");
    assert!(kmsg.contains("BPF scheduler \"qmap\" disabled"), "{kmsg}");
    let kernel_tail = doc["kernel_log_tail"].as_array().unwrap();
    assert!(!kernel_tail.is_empty(), "{doc:#}");
    // The user-exit-info report scx_qmap prints as it exits is in its log.
    assert!(read(artifacts.path(), "scheduler.log").contains("EXIT: scx_bpf_error"));
    assert!(summary.contains("sched_ext dump (whole in"), "{summary}");
}

#[test]
fn a_guest_killed_by_the_watchdog_leaves_what_the_scheduler_wrote() {
    if !vm_tests_enabled("watchdog_evidence") {
        return;
    }
    let artifacts = tempfile::tempdir().unwrap();
    // scx_qmap prints its stats every second; the payload would sleep for 10 min.
    let (code, doc, summary, progress) = run_into(
        artifacts.path(),
        &[
            "--plugin",
            "workers",
            "--scheduler",
            "scx_qmap",
            "--arg=--work",
            "--arg=sleep",
            "--arg=--duration",
            "--arg=600",
            "--duration",
            "900",
            "--watchdog",
            "25",
        ],
    );
    assert_eq!(code, 4, "{doc:#}\n{progress}");
    assert_eq!(doc["verdict"], "TIMEOUT");
    let log = read(artifacts.path(), "scheduler.log");
    assert!(log.matches("stats  : enq=").count() >= 2, "streamed while it ran:\n{log}");
    let tail = doc["scheduler"]["log_tail"].as_array().unwrap();
    assert!(tail.iter().any(|l| l.as_str().unwrap().contains("enq=")), "{doc:#}");
    let kmsg = read(artifacts.path(), "kmsg.log");
    assert!(kmsg.contains("BPF scheduler \"qmap\" enabled"), "{kmsg}");
    assert!(summary.contains("scheduler output (tail):"), "{summary}");
}
