//! When a scheduler fails: the run ends soon, classed, with the kernel's
//! reports as evidence; and the guest init survives a result over the frame limit.

use ktstr_tests::{
    build_out_of_tree, ktstr, ktstr_run, ktstr_run_into, plugin_dir_with, vm_tests_enabled,
    workspace_root,
};

/// scx_qmap stalling every 4th user task: the kernel's sched_ext watchdog
/// fires, and in the measured wedge sched_ext then stayed `disabling`.
#[test]
fn a_stalling_scheduler_is_scheduler_failed_with_its_class_and_reports() {
    if !vm_tests_enabled("a_stalling_scheduler") {
        return;
    }
    let (code, doc, out) = ktstr_run(&[
        "--plugin",
        "workers",
        "--scheduler",
        "scx_qmap",
        "--sched-arg=-t",
        "--sched-arg=4",
        "--vmm",
        "qemu",
        "--duration",
        "40",
        // The console's reports are what this test is about, not the monitor's.
        "--monitor-interval-ms",
        "0",
    ]);
    let why = format!("{doc:#}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(code, 3, "{why}");
    assert_eq!(doc["verdict"], "SCHEDULER_FAILED", "{why}");
    let class = doc["class"].as_str().unwrap_or_default();
    assert!(["stall", "stuck_disabling"].contains(&class), "class {class:?}: {why}");
    let reports = doc["console_reports"]["reports"].as_array().expect("console reports");
    assert!(!reports.is_empty(), "{why}");
    let first = reports[0]["lines"][0].as_str().unwrap_or_default();
    assert!(first.contains("sched_ext") || first.contains("rcu"), "{first}");
    assert_ne!(doc["ended_by"], "watchdog", "{why}");
    if class == "stall" {
        // The kernel's watchdog names the task it found stalled.
        let reason = doc["reason"].as_str().unwrap();
        assert!(reason.contains("the kernel said: BPF scheduler \"qmap\" disabled ("), "{why}");
        // And the kernel's dump of the scheduler's state says why it exited.
        let dump = doc["scheduler"]["sched_ext_dump"].as_str().unwrap_or_default();
        assert!(dump.contains("runnable task stall"), "{why}");
    }
}

/// The run-queue monitor, with a threshold below scx_qmap's 5 s watchdog,
/// finds the task qmap stalls first and names it.
#[test]
fn the_monitor_finds_a_stalled_task_before_the_kernel_does() {
    if !vm_tests_enabled("monitor_stall") {
        return;
    }
    let artifacts = tempfile::tempdir().unwrap();
    let (code, doc, _, progress) = ktstr_run_into(
        artifacts.path(),
        &[
            "--plugin",
            "workers",
            "--scheduler",
            "scx_qmap",
            "--sched-arg=-t",
            "--sched-arg=4",
            "--vmm",
            "qemu",
            "--duration",
            "20",
            "--monitor-stall-ms",
            "1500",
        ],
    );
    let why = format!("{doc:#}\nstderr:\n{progress}");
    assert_eq!(code, 3, "{why}");
    assert_eq!(doc["verdict"], "SCHEDULER_FAILED", "{why}");
    assert_eq!(doc["class"], "stall", "{why}");
    let reason = doc["reason"].as_str().unwrap();
    assert!(reason.starts_with("the run-queue monitor saw a stall: `"), "{why}");
    let stall = &doc["monitor"]["stall"];
    assert!(stall["waited_ms"].as_u64().unwrap() >= 1500, "{why}");
    assert!(!stall["comm"].as_str().unwrap().is_empty(), "{why}");
    assert!(doc["monitor"]["samples"].as_u64().unwrap() > 0, "{why}");
    let series = std::fs::read_to_string(artifacts.path().join("monitor.jsonl")).unwrap();
    for line in series.lines() {
        let sample: serde_json::Value = serde_json::from_str(line).expect("one JSON object a line");
        assert!(sample["runnable_per_cpu"].is_array(), "{line}");
    }
}

/// A JSON object of a million keys is a million metrics, several frames'
/// worth: they all arrive and the run ends with a verdict.
#[test]
fn a_million_metrics_reach_the_host_whole() {
    if !vm_tests_enabled("a_million_metrics") {
        return;
    }
    let so = build_out_of_tree(&workspace_root().join("tests/fixtures/plugins/many-metrics"));
    let plugins = plugin_dir_with(&so, &["libmany_metrics_plugin.so"]);
    let artifacts = tempfile::tempdir().expect("tempdir");
    let dir = plugins.path().to_str().unwrap();
    let art = artifacts.path().to_str().unwrap();
    let out = ktstr(&["run", "--plugin-dir", dir, "--plugin", "many-metrics", "--artifacts", art]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let why = format!("stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{why}");
    assert!(stdout.contains("ktstr: PASS"), "{why}");
    assert!(!stdout.contains("LOST IN TRANSIT"), "{why}");
    // The result document keeps them all (counted without parsing 100 MB).
    let doc = std::fs::read_to_string(artifacts.path().join("result.json")).expect("result.json");
    assert_eq!(doc.matches("\"name\": \"m").count(), 1_000_000);
}

/// A plugin directory with the forker fixture's payloads (crasher, flood…).
fn forker_plugins() -> tempfile::TempDir {
    let built = build_out_of_tree(&workspace_root().join("tests/fixtures/plugins/forker"));
    plugin_dir_with(&built, &["libforker_plugins.so"])
}

/// A kernel panic in the middle of a payload (sysrq `c`, from the forker
/// fixture's `crasher`): GUEST_CRASH naming the panic, and what the payload
/// and the scheduler wrote before it is in the artifacts.
#[test]
fn a_kernel_panic_mid_payload_is_guest_crash_with_the_panic_and_what_came_before() {
    if !vm_tests_enabled("a_kernel_panic_mid_payload") {
        return;
    }
    let dir = forker_plugins();
    let d = dir.path().to_str().unwrap();
    let (code, doc, out) =
        ktstr_run(&["--plugin-dir", d, "--plugin", "crasher", "--scheduler", "scx_qmap"]);
    let why = format!("{doc:#}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(code, 4, "{why}");
    assert_eq!(doc["verdict"], "GUEST_CRASH", "{why}");
    assert_eq!(doc["kernel_panic"], "sysrq triggered crash", "{why}");
    assert!(doc["reason"].as_str().unwrap().contains("the guest kernel panicked"), "{why}");
    let artifacts = std::path::PathBuf::from(doc["artifacts"].as_str().unwrap());
    let stdout = std::fs::read_to_string(artifacts.join("payload.stdout")).unwrap();
    assert_eq!(stdout, "before the crash\n", "the payload's output before the panic is kept");
    let sched = std::fs::read_to_string(artifacts.join("scheduler.log")).unwrap();
    assert!(!sched.is_empty(), "the scheduler's output before the panic is kept");
    let kmsg = std::fs::read_to_string(artifacts.join("kmsg.log")).unwrap();
    assert!(kmsg.contains("sched_ext: BPF scheduler \"qmap\" enabled"), "{kmsg}");
}

/// A payload that writes 100 MiB to stdout: the init keeps the first 16 MiB
/// (counted and said), the host gets them whole, and the run ends with a
/// verdict, not a crash.
#[test]
fn a_payload_writing_100_mib_ends_with_a_verdict_and_its_output_truncated() {
    if !vm_tests_enabled("a_payload_writing_100_mib") {
        return;
    }
    let dir = forker_plugins();
    let d = dir.path().to_str().unwrap();
    let artifacts = tempfile::tempdir().unwrap();
    let (code, doc, summary, stderr) =
        ktstr_run_into(artifacts.path(), &["--plugin-dir", d, "--plugin", "flood"]);
    let why = format!("{summary}\nstderr:\n{stderr}");
    assert_eq!((code, doc["verdict"].as_str()), (0, Some("PASS")), "{why}");
    assert_eq!(doc["payload"]["end"]["stdout_truncated"], true, "{why}");
    assert!(
        summary.contains("its stdout kept to the first 16 MiB (the rest read and dropped)"),
        "{why}"
    );
    let kept = std::fs::metadata(artifacts.path().join("payload.stdout")).unwrap().len();
    assert_eq!(kept, 16 << 20, "the init's cap, whole");
}

/// A sched_ext scheduler the BPF verifier refuses (built by the tests from
/// tests/fixtures/schedulers): `did_not_load`, with the verifier's words.
#[test]
fn a_scheduler_the_verifier_refuses_did_not_load_with_the_verifiers_message() {
    if !vm_tests_enabled("verifier_refusal") {
        return;
    }
    let scheduler = ktstr_tests::build_test_scheduler("scx_ktstr_unverifiable");
    let artifacts = tempfile::tempdir().unwrap();
    let args = ["--scheduler", scheduler.to_str().unwrap()];
    let (code, doc, summary, stderr) =
        ktstr_run_into(artifacts.path(), &[&ktstr_tests::SPIN_1S[..], &args].concat());
    let why = format!("{summary}\nstderr:\n{stderr}");
    assert_eq!((code, doc["verdict"].as_str()), (3, Some("SCHEDULER_FAILED")), "{why}");
    assert_eq!(doc["class"], "did_not_load", "{why}");
    let load_error = doc["scheduler"]["load_error"].as_str().unwrap();
    assert!(
        load_error.starts_with("prog 'unverifiable_enqueue' refused by the BPF verifier"),
        "{why}"
    );
    assert!(load_error.contains("R0 invalid mem access 'map_value_or_null'"), "{why}");
    assert!(summary.contains("why it did not load:"), "{why}");
    assert!(doc["payload"]["pid"].is_null(), "no payload runs without its scheduler: {why}");
}

/// Any binary can stand in for a scheduler: one that kills itself is
/// `crashed` (with the signal), one that exits is `exited` (with the code).
#[test]
fn a_scheduler_process_that_crashes_or_exits_is_classed_so() {
    if !vm_tests_enabled("scheduler_crash_or_exit") {
        return;
    }
    for (script, class, words) in [
        ("kill -SEGV $$", "crashed", "exited (signal: 11 (SIGSEGV))"),
        ("echo bad flag >&2; exit 7", "exited", "exited (exit status: 7)"),
    ] {
        let script = format!("--sched-arg={script}");
        let args = ["--scheduler", "/bin/sh", "--sched-arg=-c", &script];
        let (code, doc, out) = ktstr_run(&[&ktstr_tests::SPIN_1S[..], &args].concat());
        let why = format!("{doc:#}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!((code, doc["verdict"].as_str()), (3, Some("SCHEDULER_FAILED")), "{why}");
        assert_eq!(doc["class"], class, "{why}");
        assert!(doc["reason"].as_str().unwrap().contains(words), "{why}");
    }
}
