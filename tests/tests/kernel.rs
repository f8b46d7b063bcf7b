//! `ktstr kernel build` end to end: build (a cache hit after the first
//! run), check the entry, then boot the cached bzImage under QEMU TCG with
//! a busybox initramfs and check that sched_ext is there.
//!
//! Needs the kernel toolchain, linux-source-6.12, qemu-system-x86 and
//! busybox-static (scripts/setup.sh installs them). A missing one fails
//! the test loudly; KTSTR_SKIP_VM_TESTS=1 skips it instead.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ktstr_tests::ktstr_bin;

/// QEMU is killed after this, so the test can never hang.
const BOOT_WATCHDOG: Duration = Duration::from_secs(120);
const BUSYBOX: &str = "/bin/busybox";

fn skip_vm_tests() -> bool {
    if std::env::var("KTSTR_SKIP_VM_TESTS").is_ok_and(|v| v == "1") {
        eprintln!(
            "\n******** SKIPPED: KTSTR_SKIP_VM_TESTS=1, \
             kernel build and boot not tested ********\n"
        );
        return true;
    }
    false
}

fn require(ok: bool, what: &str) {
    assert!(
        ok,
        "\n\n!!!!!!!! {what} is missing: run scripts/setup.sh \
         (or set KTSTR_SKIP_VM_TESTS=1 to skip VM tests) !!!!!!!!\n"
    );
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// `ktstr kernel build --json`: (metadata, wall time).
fn kernel_build() -> (serde_json::Value, Duration) {
    let bin = ktstr_bin(); // builds the workspace: not part of the timing
    let start = Instant::now();
    let out = Command::new(bin)
        .args(["kernel", "build", "--json"])
        .stderr(Stdio::inherit())
        .output()
        .expect("run ktstr kernel build");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "ktstr kernel build failed ({}); see its stderr above",
        out.status
    );
    (serde_json::from_slice(&out.stdout).expect("kernel build --json prints JSON"), took)
}

#[test]
fn kernel_build_is_cached_and_boots_with_sched_ext() {
    if skip_vm_tests() {
        return;
    }
    require(on_path("qemu-system-x86_64"), "qemu-system-x86_64 (package qemu-system-x86)");
    require(Path::new(BUSYBOX).is_file(), "/bin/busybox (package busybox-static)");

    let (meta, first) = kernel_build();
    eprintln!("first `ktstr kernel build`: {first:.2?} (cache_hit={})", meta["cache_hit"]);
    let bzimage = PathBuf::from(meta["paths"]["bzimage"].as_str().expect("paths.bzimage"));
    assert!(bzimage.is_file(), "{} missing", bzimage.display());
    for p in ["vmlinux", "config"] {
        let path = meta["paths"][p].as_str().unwrap_or_else(|| panic!("paths.{p}"));
        assert!(Path::new(path).is_file(), "{path} missing");
    }
    let schedulers: Vec<&str> = meta["paths"]["schedulers"]
        .as_array()
        .expect("schedulers")
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for name in ["scx_simple", "scx_qmap", "scx_central", "scx_flatcg"] {
        assert!(
            schedulers.iter().any(|s| s.ends_with(&format!("/schedulers/{name}"))),
            "{name} not in {schedulers:?}"
        );
    }
    for s in &schedulers {
        assert!(Path::new(s).is_file(), "{s} missing");
    }

    // The same key again: a cache hit on the same entry (its speed is
    // measured, not asserted).
    let (again, second) = kernel_build();
    eprintln!("second `ktstr kernel build`: {second:.2?}");
    assert_eq!(again["cache_hit"], true);
    assert_eq!(again["key"], meta["key"]);

    // It is the newest entry, so `kernel list` shows it first.
    let list = Command::new(ktstr_bin()).args(["kernel", "list", "--json"]).output().unwrap();
    assert!(list.status.success());
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(list.as_array().unwrap().iter().any(|e| e["key"] == meta["key"]), "{list}");

    let dir = tempfile::tempdir().unwrap();
    let initrd = dir.path().join("initrd.cpio");
    std::fs::write(&initrd, initramfs()).unwrap();
    let console = boot(&bzimage, &initrd);
    eprintln!("guest console:\n{console}");
    assert!(
        console.contains("CONFIG_SCHED_CLASS_EXT=y"),
        "no CONFIG_SCHED_CLASS_EXT=y in the guest's /proc/config.gz; console:\n{console}"
    );
    assert!(
        console.contains("SCHED_EXT_STATE=disabled"),
        "no /sys/kernel/sched_ext/state = disabled; console:\n{console}"
    );
    assert!(console.contains("NPROC=2"), "the guest did not bring up 2 CPUs; console:\n{console}");
}

#[test]
fn bad_source_is_a_usage_error() {
    let out = Command::new(ktstr_bin())
        .args(["kernel", "build", "--source", "/nonexistent/linux"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/linux"));
}

/// /init prints what the test checks, then powers off.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
zcat /proc/config.gz | grep CONFIG_SCHED_CLASS_EXT=
test -e /sys/kernel/sched_ext/state && echo SCHED_EXT_STATE=$(cat /sys/kernel/sched_ext/state)
echo NPROC=$(nproc)
poweroff -f
"#;

/// An uncompressed newc archive: busybox, /init, and /dev/console (the
/// kernel opens it for init's stdio; an initramfs gets no devtmpfs).
fn initramfs() -> Vec<u8> {
    let busybox = std::fs::read(BUSYBOX).expect("read /bin/busybox");
    let mut a = Vec::new();
    for d in ["bin", "dev", "proc", "sys"] {
        newc(&mut a, d, 0o040755, 0, &[]);
    }
    newc(&mut a, "dev/console", 0o020600, (5 << 8) | 1, &[]);
    newc(&mut a, "bin/busybox", 0o100755, 0, &busybox);
    newc(&mut a, "init", 0o100755, 0, INIT.as_bytes());
    newc(&mut a, "TRAILER!!!", 0, 0, &[]);
    a
}

/// One newc record; `rdev` is (major << 8) | minor.
fn newc(out: &mut Vec<u8>, name: &str, mode: u32, rdev: u32, data: &[u8]) {
    static INO: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let ino = INO.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        rdev >> 8,
        rdev & 0xff,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

/// What ktstr's QEMU engine tells a TCG guest (runner/src/vm/qemu_args.rs):
/// the TSC's rate, so it skips PIT calibration, and `lpj=`, so it skips the
/// delay-loop calibration, which waits for timer ticks and now and then
/// waited for ever under TCG (a guest found spinning in `calibrate_delay`,
/// its timer interrupt never raised). `lpj=` is per tick: CONFIG_HZ from
/// the `config` the cache keeps beside `bzimage`.
fn tcg_timing(bzimage: &Path) -> String {
    let config = bzimage.with_file_name("config");
    let text = std::fs::read_to_string(&config).expect("the entry's config");
    let hz: u64 = (text.lines().find_map(|l| l.strip_prefix("CONFIG_HZ=")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no CONFIG_HZ in {}", config.display()));
    // SAFETY: RDTSC has no preconditions on x86_64.
    let tsc = || unsafe { core::arch::x86_64::_rdtsc() };
    let (t0, c0) = (Instant::now(), tsc());
    std::thread::sleep(Duration::from_millis(20));
    let (c1, nanos) = (tsc(), t0.elapsed().as_nanos() as u64);
    let khz = c1.saturating_sub(c0).saturating_mul(1_000_000) / nanos.max(1);
    format!("tsc=reliable tsc_early_khz={khz} lpj={}", khz * 1000 / hz)
}

/// Boots under QEMU TCG (`/dev/kvm` here cannot run Linux guests) and
/// returns the serial console output; kills QEMU after [`BOOT_WATCHDOG`].
fn boot(bzimage: &Path, initrd: &Path) -> String {
    let start = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg,thread=multi",
            "-cpu",
            "max",
            "-M",
            "microvm",
            "-m",
            "512",
            "-smp",
            "2",
        ])
        .args(["-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(bzimage)
        .arg("-initrd")
        .arg(initrd)
        .args([
            "-append",
            &format!("console=ttyS0 quiet panic=-1 reboot=t {}", tcg_timing(bzimage)),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-x86_64");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > BOOT_WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let console = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    let errors = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
    eprintln!("guest ran {:.2?}", start.elapsed());
    match status {
        None => panic!(
            "QEMU did not finish within {BOOT_WATCHDOG:?} and was killed; \
             console:\n{console}\nstderr:\n{errors}"
        ),
        Some(s) => {
            assert!(s.success(), "QEMU exited with {s}; console:\n{console}\nstderr:\n{errors}")
        }
    }
    console
}
