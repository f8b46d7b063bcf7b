//! `ktstr run` end to end: real kernel, real VM (QEMU), real schedulers.

use ktstr_tests::{ktstr_run, metric, vm_tests_enabled};

fn explain(out: &std::process::Output) -> String {
    format!("stderr:\n{}", String::from_utf8_lossy(&out.stderr))
}

#[test]
fn workers_under_eevdf_pass_with_work_and_wake_latency() {
    if !vm_tests_enabled("workers_under_eevdf") {
        return;
    }
    let (code, doc, out) = ktstr_run(&[
        "--plugin",
        "workers",
        "--topology",
        "1n2l2c1t",
        "--arg=--work",
        "--arg=spin,futex,sleep",
        "--arg=--duration",
        "--arg=2",
        "--kernel-arg",
        "printk.devkmsg=on",
    ]);
    assert_eq!(code, 0, "{doc:#}\n{}", explain(&out));
    assert_eq!(doc["verdict"], "PASS");
    // The user's kernel argument reached the guest kernel's command line.
    assert!(doc["kernel"].as_str().unwrap().ends_with(" with printk.devkmsg=on"), "{doc:#}");
    let kmsg = std::path::Path::new(doc["artifacts"].as_str().unwrap()).join("kmsg.log");
    let kmsg = std::fs::read_to_string(kmsg).unwrap();
    let line = kmsg.lines().find(|l| l.contains("Command line:")).expect("the boot's command line");
    assert!(line.contains(" printk.devkmsg=on"), "{line}");
    // The VM gave the kernel nothing to doubt: no WARN() in its log.
    assert_eq!(doc["kernel_warnings"]["seen"], 0, "{:#}", doc["kernel_warnings"]);
    // The monitor sampled throughout and found nobody starved under EEVDF.
    let monitor = &doc["monitor"];
    assert!(monitor["samples"].as_u64().unwrap() > 1, "{monitor:#}");
    assert!(monitor["stall"].is_null(), "{monitor:#}");
    assert_eq!(monitor["max_runnable_per_cpu"].as_array().unwrap().len(), 4, "{monitor:#}");
    assert!(metric(&doc, "work_units").unwrap() > 0.0);
    assert!(metric(&doc, "wake_latency_p99_us").is_some());
    assert!(metric(&doc, "futex/wake_samples").unwrap() > 0.0);
    assert_eq!(doc["topology"]["mismatches"].as_array().unwrap().len(), 0, "{:#}", doc["topology"]);
    assert!(!doc["topology"]["seen"].is_null(), "the guest reports its topology");
}

#[test]
fn stress_ng_under_scx_simple_runs_with_sched_ext_enabled() {
    if !vm_tests_enabled("stress_ng_under_scx_simple") {
        return;
    }
    let (code, doc, out) = ktstr_run(&[
        "--plugin",
        "stress-ng",
        "--scheduler",
        "scx_simple",
        "--topology",
        "1n2l2c1t",
        "--arg=--cpu",
        "--arg=2",
        "--arg=--timeout",
        "--arg=2s",
        "--arg=--metrics-brief",
        "--arg=--yaml",
        "--arg=/dev/stdout",
    ]);
    assert_eq!(code, 0, "{doc:#}\n{}", explain(&out));
    assert_eq!(doc["scheduler"]["during_payload"]["sched_ext_state"], "enabled");
    assert_eq!(doc["scheduler"]["during_payload"]["ops"], "simple");
    assert!(metric(&doc, "cpu/bogo_ops").unwrap() >= 1.0);
}

#[test]
fn fio_under_scx_qmap_extracts_read_iops() {
    if !vm_tests_enabled("fio_under_scx_qmap") {
        return;
    }
    let (code, doc, out) = ktstr_run(&[
        "--plugin",
        "fio",
        "--scheduler",
        "scx_qmap",
        "--topology",
        "1n1l2c1t",
        "--arg=--name=randread",
        "--arg=--rw=randread",
        "--arg=--size=8M",
        "--arg=--bs=4k",
        "--arg=--ioengine=psync",
        "--arg=--runtime=2",
        "--arg=--time_based",
        "--arg=--filename=/tmp/fio.dat",
        "--arg=--output-format=json",
    ]);
    assert_eq!(code, 0, "{doc:#}\n{}", explain(&out));
    assert_eq!(doc["scheduler"]["during_payload"]["ops"], "qmap");
    assert!(metric(&doc, "read/iops").unwrap() > 0.0, "{:#}", doc["metrics"]);
}

#[test]
fn a_failing_check_exits_1_and_names_metric_value_and_bound() {
    if !vm_tests_enabled("a_failing_check") {
        return;
    }
    let (code, doc, out) = ktstr_run(&[
        "--plugin",
        "workers",
        "--arg=--work",
        "--arg=spin",
        "--arg=--duration",
        "--arg=1",
        "--check",
        "work_units<=0",
    ]);
    assert_eq!(code, 1, "{doc:#}\n{}", explain(&out));
    assert_eq!(doc["verdict"], "CHECK_FAILED");
    let failed: Vec<&serde_json::Value> =
        doc["checks"].as_array().unwrap().iter().filter(|c| c["passed"] == false).collect();
    assert_eq!(failed.len(), 1);
    let detail = failed[0]["detail"].as_str().unwrap();
    assert!(detail.starts_with("work_units = ") && detail.ends_with("must be <= 0"), "{detail}");
    let summary = ktstr_tests::ktstr(&[
        "run",
        "--plugin",
        "workers",
        "--arg=--work",
        "--arg=spin",
        "--arg=--duration",
        "--arg=1",
        "--check",
        "work_units<=0",
    ]);
    let text = String::from_utf8_lossy(&summary.stdout);
    assert!(
        text.contains("FAIL work_units<=0: work_units = ") && text.contains("must be <= 0"),
        "{text}"
    );
}

#[test]
fn a_guest_that_never_answers_is_ended_by_the_watchdog() {
    if !vm_tests_enabled("watchdog") {
        return;
    }
    let artifacts = tempfile::tempdir().unwrap();
    let dir = artifacts.path().to_str().unwrap();
    let (code, doc, out) = ktstr_run(&[
        "--plugin",
        "workers",
        "--arg=--work",
        "--arg=sleep",
        "--arg=--duration",
        "--arg=600",
        "--duration",
        "900",
        "--watchdog",
        "25",
        "--artifacts",
        dir,
    ]);
    assert_eq!(code, 4, "{doc:#}\n{}", explain(&out));
    assert_eq!(doc["verdict"], "TIMEOUT");
    assert!(!doc["console_tail"].as_array().unwrap().is_empty(), "the last console lines are kept");
    // Where the vCPUs were, read from QEMU's monitor before it was stopped:
    // a line per vCPU the guest had, in order, and each vCPU caught in the
    // kernel (idle, or the init's monitor at work: either may be) is in
    // code the kernel's symbols name.
    let vcpus = doc["engine"]["vcpus_at_stop"].as_array().expect("vcpus_at_stop");
    let lines: Vec<&str> = vcpus.iter().filter_map(|l| l.as_str()).collect();
    let cpus = doc["topology"]["seen"]["cpus"].as_array().expect("the guest's CPUs").len();
    assert_eq!(lines.len(), cpus, "{lines:?}");
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with(&format!("vCPU {i}: ")), "{lines:?}");
        assert!(line.contains(": user, ") || !line.contains(" at 0x"), "{lines:?}");
    }
    assert!(artifacts.path().join("vcpus.txt").is_file(), "the engine's dump is kept");
    // This run's QEMU names the artifacts directory in its arguments (other
    // tests run their own VMs at the same time).
    let qemu_left = std::process::Command::new("pgrep")
        .args(["-f", &format!("qemu-system-x86_64.*{dir}")])
        .output()
        .unwrap();
    assert!(
        qemu_left.stdout.is_empty(),
        "no VM process survives: {}",
        String::from_utf8_lossy(&qemu_left.stdout)
    );
}

#[test]
fn bad_input_is_rejected_before_boot_with_exit_2() {
    for (args, needle) in [
        (vec!["run", "--plugin", "workers", "--topology", "1n2x"], "bad topology"),
        (vec!["run", "--plugin", "workers", "--check", "work_units<5"], "bad check"),
        (vec!["run", "--plugin", "nope"], "no payload plugin named `nope`"),
        (vec!["run", "--plugin", "workers", "--memory", "lots"], "bad --memory"),
        (vec!["run", "--plugin", "workers", "--kernel-arg", "rdinit=/x"], "ktstr sets `rdinit`"),
    ] {
        let out = ktstr_tests::ktstr(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // Where /dev/kvm cannot run guests, asking for our VMM says so before boot.
    if std::path::Path::new("/sys/module/kvm_pvm").exists()
        || !std::path::Path::new("/dev/kvm").exists()
    {
        let out = ktstr_tests::ktstr(&["run", "--plugin", "workers", "--vmm", "kvm"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("--vmm kvm: ktstr's KVM VMM cannot run here"), "{err}");
    }
}

#[test]
fn ctrl_c_stops_the_vm_keeps_the_artifacts_and_removes_temporary_files() {
    if !vm_tests_enabled("ctrl-c") {
        return;
    }
    let artifacts = tempfile::tempdir().unwrap();
    let dir = artifacts.path().to_str().unwrap().to_string();
    let child = std::process::Command::new(ktstr_tests::ktstr_bin())
        .args([
            "run",
            "--plugin",
            "workers",
            "--arg=--work",
            "--arg=sleep",
            "--arg=--duration",
            "--arg=600",
            "--duration",
            "900",
        ])
        .args(["--artifacts", &dir, "--json", "-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the payload to run: its start is in the guest's progress.
    let console = artifacts.path().join("console.log");
    let started = std::time::Instant::now();
    let qemu = loop {
        let ps = std::process::Command::new("pgrep")
            .args(["-af", &format!("qemu-system-x86_64.*{dir}")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&ps.stdout).into_owned();
        let booted = std::fs::read_to_string(&console).unwrap_or_default().contains("ktstr-init:");
        if booted && !text.is_empty() {
            break text;
        }
        assert!(started.elapsed().as_secs() < 120, "the VM did not boot: {text}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // The per-run scratch directory holds the initramfs QEMU was given.
    let initrd = qemu
        .split_whitespace()
        .skip_while(|a| *a != "-initrd")
        .nth(1)
        .expect("-initrd in the QEMU command line")
        .to_string();
    let scratch = std::path::Path::new(&initrd).parent().unwrap().to_path_buf();
    assert!(scratch.is_dir());
    assert!(std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let doc = ktstr_tests::stdout_json(&out);
    assert_eq!(out.status.code(), Some(130), "{doc:#}\n{}", explain(&out));
    assert_eq!(doc["verdict"], "INTERRUPTED");
    let left = std::process::Command::new("pgrep")
        .args(["-f", &format!("qemu-system-x86_64.*{dir}")])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "no VM process survives Ctrl-C: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    assert!(!scratch.exists(), "the scratch directory {} is removed", scratch.display());
    for kept in ["console.log", "result.json", "plan.json"] {
        assert!(artifacts.path().join(kept).is_file(), "{kept} is kept");
    }
}
