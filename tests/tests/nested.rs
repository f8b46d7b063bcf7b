//! ktstr's own KVM VMM, end to end through nested virtualisation: an L1 guest
//! under QEMU (TCG `-cpu max` exposes SVM) has a real /dev/kvm, and inside it
//! `ktstr run --vmm kvm` boots L2 with our VMM.

use ktstr_tests::{ktstr, ktstr_nested, metric, stdout_json, vm_tests_enabled};

#[test]
fn our_kvm_vmm_boots_the_exact_topology_inside_an_l1_guest() {
    if !vm_tests_enabled("nested kvm vmm") {
        return;
    }
    let out = ktstr_nested(&[
        "--",
        "run",
        "--vmm",
        "kvm",
        "--plugin",
        "workers",
        "--scheduler",
        "scx_simple",
        "--topology",
        "1n2l2c1t",
        "--memory",
        "512",
        "--arg=--work",
        "--arg=spin,futex",
        "--arg=--duration",
        "--arg=2",
        "--json",
        "-",
    ]);
    let doc = stdout_json(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{doc:#}\nstderr:\n{stderr}");
    assert_eq!(doc["verdict"], "PASS");
    assert_eq!(doc["engine"]["name"], "kvm", "{:#}", doc["engine"]);
    assert_eq!(doc["scheduler"]["during_payload"]["ops"], "simple");
    assert!(metric(&doc, "work_units").unwrap() > 0.0);
    assert!(metric(&doc, "futex/wake_samples").unwrap() > 0.0);
    // No WARN() in L2's log: e.g. its XSAVE size matches the XCR0 it runs
    // with (L1's TCG does not intercept XSETBV; the VMM presets XCR0).
    assert_eq!(doc["kernel_warnings"]["seen"], 0, "{:#}", doc["kernel_warnings"]);

    // The topology L2 reports, as read from its sysfs.
    assert_eq!(doc["topology"]["mismatches"].as_array().unwrap().len(), 0, "{:#}", doc["topology"]);
    let seen = &doc["topology"]["seen"];
    assert_eq!(seen["online"], serde_json::json!([0, 1, 2, 3]));
    let llcs: Vec<&serde_json::Value> =
        seen["cpus"].as_array().unwrap().iter().map(|c| &c["llc"]).collect();
    assert_eq!(
        llcs,
        [
            &serde_json::json!([0, 1]),
            &serde_json::json!([0, 1]),
            &serde_json::json!([2, 3]),
            &serde_json::json!([2, 3])
        ]
    );
}

#[test]
fn nested_passes_the_inner_exit_code_through() {
    if !vm_tests_enabled("nested exit code") {
        return;
    }
    // A usage error inside L1 (exit 2) comes back as this command's exit code.
    let artifacts = tempfile::tempdir().unwrap();
    let out = ktstr_nested(&[
        "--artifacts",
        artifacts.path().to_str().unwrap(),
        "--",
        "run",
        "--plugin",
        "no-such-payload",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("[L1] error: ") && stderr.contains("no-such-payload"), "{stderr}");
    assert!(artifacts.path().join("l1-console.log").is_file(), "the L1 console is kept");
}

#[test]
fn a_command_line_ktstr_refuses_is_answered_before_booting_l1() {
    // No VM needed: the inner arguments are parsed here, as L1 would.
    let out = ktstr(&["nested", "--", "run", "--plugin", "workers", "--no-such-flag"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error: unexpected argument '--no-such-flag'"), "{stderr}");
    assert!(!stderr.contains("L1:"), "no L1 was booted: {stderr}");
    let help = ktstr(&["nested", "--", "run", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: ktstr run"));
    // A bench's job is checked here too, not after L1 is prepared.
    let out = ktstr(&["nested", "--", "bench", "--", "--plugin", "workers", "--vmm", "qemu"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the bench sets --vmm itself"), "{stderr}");
    assert!(!stderr.contains("L1") && !stderr.contains("kept in"), "nothing prepared: {stderr}");
}

#[test]
fn our_kvm_vmm_gives_numa_nodes_and_smt_siblings_with_memory_across_the_32_bit_gap() {
    if !vm_tests_enabled("nested kvm vmm numa") {
        return;
    }
    // 4 GiB: node 1's half spans the MMIO gap below 4 GiB.
    let out = ktstr_nested(&[
        "--memory",
        "6G",
        "--",
        "run",
        "--vmm",
        "kvm",
        "--plugin",
        "workers",
        "--topology",
        "2n1l2c2t",
        "--memory",
        "4G",
        "--arg=--work",
        "--arg=spin",
        "--arg=--duration",
        "--arg=1",
        "--json",
        "-",
    ]);
    let doc = stdout_json(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{doc:#}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(doc["topology"]["mismatches"].as_array().unwrap().len(), 0, "{:#}", doc["topology"]);
    let seen = &doc["topology"]["seen"];
    let nodes: Vec<&serde_json::Value> =
        seen["nodes"].as_array().unwrap().iter().map(|n| &n["cpus"]).collect();
    assert_eq!(nodes, [&serde_json::json!([0, 1, 2, 3]), &serde_json::json!([4, 5, 6, 7])]);
    for n in seen["nodes"].as_array().unwrap() {
        assert!(n["mem_total_kib"].as_u64().unwrap() > 1800 * 1024, "2 GiB per node: {n:#}");
    }
    let siblings: Vec<&serde_json::Value> =
        seen["cpus"].as_array().unwrap().iter().map(|c| &c["thread_siblings"]).collect();
    assert_eq!(siblings[0], &serde_json::json!([0, 1]));
    assert_eq!(siblings[7], &serde_json::json!([6, 7]));
}

#[test]
fn our_kvm_vmm_stops_a_guest_that_never_ends_within_its_stop_deadline() {
    if !vm_tests_enabled("nested kvm vmm bounded stop") {
        return;
    }
    // The payload would spin for 10 minutes; the watchdog ends the VM at 10 s
    // while its vCPUs are busy in the guest.
    let out = ktstr_nested(&[
        "--",
        "run",
        "--vmm",
        "kvm",
        "--plugin",
        "workers",
        "--topology",
        "1n1l2c1t",
        "--memory",
        "512",
        "--arg=--work",
        "--arg=spin",
        "--arg=--duration",
        "--arg=600",
        "--duration",
        "600",
        "--watchdog",
        "10",
        "--json",
        "-",
    ]);
    let doc = stdout_json(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{doc:#}\nstderr:\n{stderr}");
    assert_eq!(doc["verdict"], "TIMEOUT", "{doc:#}");
    assert_eq!(doc["engine"]["name"], "kvm");
    assert_eq!(doc["engine"]["end"], "stopped by ktstr", "{:#}", doc["engine"]);
    // Bounded by construction (the VMM kicks its vCPUs for at most 500 ms and
    // then leaves busy ones behind); the bound here only says "not the
    // payload's 10 minutes", with room for a loaded emulated host.
    let stop_ms = doc["engine"]["stop_ms"].as_u64().expect("stop_ms reported");
    assert!(stop_ms < 5000, "stopping took {stop_ms} ms\n{stderr}");
    // Before the stop, each vCPU thread said where its vCPU was.
    let vcpus = doc["engine"]["vcpus_at_stop"].as_array().expect("vcpus_at_stop");
    let lines: Vec<&str> = vcpus.iter().filter_map(|l| l.as_str()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("vCPU 0: ") && lines[1].starts_with("vCPU 1: "), "{lines:?}");
    // In the kernel, by name: L1 has the kernel's symbols.map.
    for l in &lines {
        assert!(l.contains(": user, ") || !l.contains(" at 0x"), "{lines:?}");
    }
}

#[test]
fn our_kvm_vmm_serves_a_disk_that_its_guest_formats_mounts_and_fio_measures() {
    if !vm_tests_enabled("nested kvm vmm disk") {
        return;
    }
    // The ext4 template is built inside L1 by a one-shot L2 on our VMM (mkfs
    // writes through our virtio-blk), then the run's clone is mounted and fio
    // reads and writes it with O_DIRECT.
    let out = ktstr_nested(&[
        "--",
        "run",
        "--vmm",
        "kvm",
        "--plugin",
        "fio",
        "--disk",
        "64M,fs=ext4",
        "--topology",
        "1n1l2c1t",
        "--memory",
        "512",
        "--duration",
        "2",
        "--json",
        "-",
    ]);
    let doc = stdout_json(&out);
    let why = format!("{doc:#}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{why}");
    assert_eq!(doc["engine"]["name"], "kvm", "{why}");
    let disk = &doc["disks"][0];
    assert_eq!(disk["device"], "/dev/vda", "{why}");
    assert_eq!((disk["fs"].as_str(), disk["mount"].as_str()), (Some("ext4"), Some("/mnt/disk0")));
    assert_eq!(disk["template"]["cache"], "built", "{why}");
    for m in ["read/iops", "write/iops"] {
        assert!(metric(&doc, m).is_some_and(|v| v > 0.0), "{m}: {why}");
    }
}

/// The interactive shell under ktstr-vmm: `ktstr nested -- shell` through a
/// real terminal (tmux), the ktstr in L1 on a PTY relayed from ours, the
/// shell in L2 on a PTY relayed over our VMM's `ktstr-shell` port.
#[test]
fn our_kvm_vmm_gives_an_interactive_shell_through_two_relays() {
    if !ktstr_tests::tmux::tests_enabled("nested interactive shell") {
        return;
    }
    let _turn = ktstr_tests::nested_turn();
    let args = [
        "nested",
        "--",
        "shell",
        "--vmm",
        "kvm",
        "--scheduler",
        "scx_simple",
        "--topology",
        "1n1l2c1t",
    ];
    let attempt = || {
        let dir = tempfile::tempdir().unwrap();
        ktstr_tests::tmux::shell_scenario(&ktstr_tests::ktstr_bin(), &args, dir.path())
    };
    let Err(screen) = attempt() else { return };
    // Only the emulated host's failures are retried (once, loudly), as
    // ktstr_nested does; anything else fails the test.
    let Some(why) = ktstr_tests::emulated_host_failure(&screen, &screen) else {
        panic!("{screen}")
    };
    ktstr_tests::note_retry("nested interactive shell", &why, &screen);
    if let Err(screen) = attempt() {
        panic!("{screen}");
    }
}
