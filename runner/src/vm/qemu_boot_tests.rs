//! Real boots through `QemuEngine`: the guest must see exactly the topology
//! asked for, and both data channels must carry bytes out.
//!
//! Needs a cached kernel (`ktstr kernel build`), busybox-static and cpio. When
//! one is missing it fails saying which, as every VM test does, unless
//! KTSTR_SKIP_VM_TESTS=1 asks to skip (loudly).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ktstr_core::topology::{compare, GuestTopology, Topology};

use super::QemuEngine;
use crate::vm::{VmEngine, VmExit, VmSpec};

const WATCHDOG: Duration = Duration::from_secs(120);
const MARKER: &str = "KTSTR-MARKER data-channel-ok";
const FILE_PREFIX: &str = "KTSTR-FILE ";

/// PID 1: prints the sysfs topology files as `KTSTR-FILE <path> <content>`,
/// writes the marker to the virtio port named ktstr and to COM2, powers off.
const INIT: &str = r#"#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
dump() { for f in "$@"; do [ -f "$f" ] && echo "KTSTR-FILE $f $($B cat $f)"; done; }
dump /sys/devices/system/cpu/online
for c in /sys/devices/system/cpu/cpu[0-9]*; do
  dump $c/topology/thread_siblings_list
  for i in $c/cache/index[0-9]*; do dump $i/level $i/shared_cpu_list; done
done
for n in /sys/devices/system/node/node[0-9]*; do
  dump $n/cpulist
  [ -f $n/meminfo ] && echo "KTSTR-FILE $n/meminfo $($B grep MemTotal $n/meminfo)"
done
echo "KTSTR-UPTIME $($B cat /proc/uptime)"
echo "KTSTR-CLOCK $($B cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
for p in /sys/class/virtio-ports/*; do
  [ "$($B cat $p/name 2>/dev/null)" = ktstr ] || continue
  d=/dev/${p##*/}
  # No mdev/udev in an initramfs: make the node if devtmpfs did not.
  [ -e $d ] || $B mknod $d c $($B cat $p/dev | $B tr : ' ')
  echo "KTSTR-MARKER data-channel-ok" > $d
done
echo "KTSTR-MARKER data-channel-ok" > /dev/ttyS1
echo "KTSTR-DONE"
$B poweroff -f
"#;

/// Why the test cannot run here, or what it needs.
enum Prereq<T> {
    Have(T),
    Missing(String),
}

fn skip_allowed() -> bool {
    std::env::var("KTSTR_SKIP_VM_TESTS").is_ok_and(|v| v == "1")
}

/// The kernel a run would boot (`$KTSTR_KERNEL`, else the default cache
/// entry: the newest built with this ktstr's fragment).
fn test_kernel() -> Prereq<PathBuf> {
    match crate::kernel::resolve(None) {
        Ok(k) => Prereq::Have(k.bzimage),
        Err(e) => Prereq::Missing(format!("{e:#}")),
    }
}

/// A statically linked busybox: the initramfs has no libraries.
fn static_busybox() -> Prereq<PathBuf> {
    let p = PathBuf::from("/bin/busybox");
    let Ok(data) = std::fs::read(&p) else {
        return Prereq::Missing("no /bin/busybox (apt-get install -y busybox-static)".into());
    };
    use object::read::elf::{ElfFile64, ProgramHeader};
    let Ok(elf) = ElfFile64::<object::Endianness>::parse(&*data) else {
        return Prereq::Missing("/bin/busybox is not a 64-bit ELF".into());
    };
    let endian = elf.endian();
    if elf.elf_program_headers().iter().any(|ph| ph.p_type(endian) == object::elf::PT_INTERP) {
        return Prereq::Missing(
            "/bin/busybox is dynamically linked (apt-get install -y busybox-static)".into(),
        );
    }
    Prereq::Have(p)
}

fn build_initramfs(busybox: &Path, init_script: &str, dir: &Path) -> PathBuf {
    let root = dir.join("root");
    for d in ["bin", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    let init = root.join("init");
    std::fs::write(&init, init_script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.join("initramfs.cpio");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("find . | cpio -o -H newc --quiet > '{}'", out.display()))
        .current_dir(&root)
        .status()
        .expect("run find | cpio");
    assert!(status.success(), "find | cpio failed: {status}");
    out
}

/// A test guest's VM: its logs and data channels in `out`; `loglevel=1` keeps
/// printk from splitting the lines the init prints.
fn guest_spec(
    kernel: &Path,
    initramfs: PathBuf,
    extra: &str,
    topology: Topology,
    mib: u64,
    out: &Path,
) -> VmSpec {
    VmSpec {
        kernel: kernel.to_path_buf(),
        vmlinux: None,
        initramfs: vec![initramfs],
        cmdline: format!("rdinit=/init panic=-1 loglevel=1 {extra}").trim_end().into(),
        topology,
        memory_mib: mib,
        console_log: out.join("console.log"),
        data_out: out.join("data.bin"),
        data_fallback_out: out.join("com2.bin"),
        disks: Vec::new(),
        shell_socket: None,
    }
}

/// The kernel, busybox and engine of the tests after the first, which says
/// what is missing (or skips loudly); None when one is.
fn prerequisites() -> Option<(PathBuf, PathBuf, QemuEngine)> {
    match (test_kernel(), static_busybox(), which("cpio"), QemuEngine::detect(None)) {
        (Prereq::Have(k), Prereq::Have(b), Prereq::Have(()), Ok(e)) => Some((k, b, e)),
        _ => {
            assert!(skip_allowed(), "see guest_sees_the_requested_topology");
            None
        }
    }
}

/// Rebuilds the guest's sysfs files from the console under `root`.
fn sysfs_from_console(console: &str, root: &Path) -> usize {
    let mut n = 0;
    for line in console.lines().map(|l| l.trim_end_matches('\r')) {
        let Some(rest) = line.strip_prefix(FILE_PREFIX) else { continue };
        let (path, content) = rest.split_once(' ').unwrap_or((rest, ""));
        let file = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, format!("{content}\n")).unwrap();
        n += 1;
    }
    n
}

/// Boots `topo` and fails unless the guest sees it exactly and both data channels work.
fn boot_and_check(engine: &QemuEngine, kernel: &Path, initramfs: &Path, topo: &str, dir: &Path) {
    let topology: Topology = topo.parse().unwrap();
    let out = dir.join(topo);
    std::fs::create_dir_all(&out).unwrap();
    let spec = guest_spec(kernel, initramfs.to_path_buf(), "", topology.clone(), 512, &out);
    let started = Instant::now();
    let mut vm = engine.boot(&spec).expect("boot");
    let exit = loop {
        if let Some(exit) = vm.try_wait().unwrap() {
            break exit;
        }
        if started.elapsed() > WATCHDOG {
            vm.kill().unwrap();
            let console = std::fs::read_to_string(&spec.console_log).unwrap_or_default();
            panic!("{topo}: no exit after {WATCHDOG:?}; console:\n{console}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = started.elapsed();
    let console = String::from_utf8_lossy(&std::fs::read(&spec.console_log).unwrap()).into_owned();
    let stderr = std::fs::read_to_string(out.join("qemu.stderr")).unwrap_or_default();
    assert_eq!(
        exit,
        VmExit::Exited { code: Some(0), signal: None },
        "{topo}: qemu stderr:\n{stderr}\nconsole:\n{console}"
    );
    assert!(console.contains("KTSTR-DONE"), "{topo}: init did not finish; console:\n{console}");

    let sysfs = out.join("sysfs");
    assert!(
        sysfs_from_console(&console, &sysfs) > 0,
        "{topo}: no sysfs lines; console:\n{console}"
    );
    let seen = GuestTopology::read_from_sysfs(&sysfs).unwrap();
    let diffs = compare(&topology, &seen);
    assert!(
        diffs.is_empty(),
        "{topo}: the guest sees another topology:\n  {}\nconsole:\n{console}",
        diffs.join("\n  ")
    );

    for (what, path) in [("virtio-console", &spec.data_out), ("COM2", &spec.data_fallback_out)] {
        let data = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
        assert!(
            data.contains(MARKER),
            "{topo}: no marker on the {what} channel ({}): {data:?}",
            path.display()
        );
    }
    let line = |tag: &str| {
        console.lines().find_map(|l| l.strip_prefix(tag)).unwrap_or("?").trim().to_string()
    };
    let (uptime, clock) = (line("KTSTR-UPTIME "), line("KTSTR-CLOCK "));
    let mem: Vec<String> =
        seen.nodes.iter().map(|n| format!("node{}={:?}KiB", n.node, n.mem_total_kib)).collect();
    eprintln!(
        "{topo}: {} boot-to-exit {:.2}s wall, guest uptime at init end {uptime}, clocksource {clock}; {}",
        engine.describe(),
        wall.as_secs_f64(),
        mem.join(" ")
    );
}

#[test]
fn guest_sees_the_requested_topology() {
    let prereqs = (test_kernel(), static_busybox(), which("cpio"), QemuEngine::detect(None));
    let (kernel, busybox, engine) = match prereqs {
        (Prereq::Have(k), Prereq::Have(b), Prereq::Have(()), Ok(e)) => (k, b, e),
        (k, b, c, e) => {
            let why: Vec<String> =
                [k.missing(), b.missing(), c.missing(), e.err().map(|e| format!("{e:#}"))]
                    .into_iter()
                    .flatten()
                    .collect();
            assert!(skip_allowed(), "the QEMU boot test needs: {} (scripts/setup.sh and `ktstr kernel build`; KTSTR_SKIP_VM_TESTS=1 skips VM tests)", why.join("; "));
            eprintln!("\n!!! SKIPPED qemu boot test: {} (KTSTR_SKIP_VM_TESTS=1)\n", why.join("; "));
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let initramfs = build_initramfs(&busybox, INIT, dir.path());
    eprintln!("kernel {}", kernel.display());
    // KTSTR_VM_TEST_TOPOLOGIES=1n2l4c2t,2n4l2c1t tries other shapes.
    let topologies =
        std::env::var("KTSTR_VM_TEST_TOPOLOGIES").unwrap_or_else(|_| "1n2l2c1t,2n1l2c2t".into());
    for topo in topologies.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        boot_and_check(&engine, &kernel, &initramfs, topo, dir.path());
    }
}

fn which(cmd: &str) -> Prereq<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false);
    if found {
        Prereq::Have(())
    } else {
        Prereq::Missing(format!("no `{cmd}` command (apt-get install -y {cmd})"))
    }
}

impl<T> Prereq<T> {
    fn missing(self) -> Option<String> {
        match self {
            Prereq::Have(_) => None,
            Prereq::Missing(why) => Some(why),
        }
    }
}

/// Waits until the guest's console says `what`; fails if it ends first or
/// the watchdog passes.
fn wait_for_console(vm: &mut Box<dyn crate::vm::RunningVm>, spec: &VmSpec, what: &str) {
    let started = Instant::now();
    let console = || std::fs::read_to_string(&spec.console_log).unwrap_or_default();
    while !console().contains(what) {
        assert!(started.elapsed() < WATCHDOG, "no `{what}` on the console:\n{}", console());
        assert!(vm.try_wait().unwrap().is_none(), "the guest ended:\n{}", console());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A guest that never stops: one vCPU spins in a shell loop, the other idles.
const SPIN_INIT: &str = r#"#!/bin/busybox sh
echo KTSTR-SPINNING
while :; do :; done
"#;

/// What a hung guest's report is made of: QEMU's monitor names every vCPU,
/// and the vmlinux beside the bzImage names the kernel code they are in.
#[test]
fn a_running_guest_tells_where_its_vcpus_are() {
    let Some((kernel, busybox, engine)) = prerequisites() else { return };
    let dir = tempfile::tempdir().unwrap();
    let initramfs = build_initramfs(&busybox, SPIN_INIT, dir.path());
    let topology = "1n1l2c1t".parse().unwrap();
    let spec = guest_spec(&kernel, initramfs, "", topology, 256, dir.path());
    let mut vm = engine.boot(&spec).expect("boot");
    wait_for_console(&mut vm, &spec, "KTSTR-SPINNING");
    let report = vm.vcpus().expect("QEMU's monitor answers");
    vm.kill().unwrap();
    let indices: Vec<u32> = report.vcpus.iter().map(|v| v.index).collect();
    assert_eq!(indices, [0, 1], "{}", report.raw);
    // Each vCPU's local APIC was read too (its dump is kept in `raw`).
    for i in 0..2 {
        let dump = format!("local APIC state for CPU {i}");
        assert!(report.raw.contains(&dump), "{}", report.raw);
    }
    let symbols = crate::kernel::symbols::Symbols::from_vmlinux(&kernel.with_file_name("vmlinux"))
        .expect("the cache entry's vmlinux");
    let lines = report.lines(Some(&symbols));
    // The spinning shell may be caught in the kernel (a timer tick) or not;
    // any vCPU in the kernel is in code its vmlinux names.
    for (v, line) in report.vcpus.iter().zip(&lines) {
        assert!(v.cpl == 3 || !line.contains(" at 0x"), "{line}\n{}", report.raw);
    }
    assert!(report.vcpus.iter().any(|v| v.cpl == 0), "{}", lines.join("\n"));
    eprintln!("{}", lines.join("\n"));
}

/// A guest that reboots at once: with `reboot=t` by the triple-fault method
/// (an empty IDT, then int3), otherwise as every run ends.
const REBOOT_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox reboot -f
"#;

#[test]
fn a_triple_fault_under_qemu_is_named_as_one() {
    let Some((kernel, busybox, engine)) = prerequisites() else { return };
    let dir = tempfile::tempdir().unwrap();
    let reboot = |name: &str, arg: &str| {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let initramfs = build_initramfs(&busybox, REBOOT_INIT, &sub);
        let spec = guest_spec(&kernel, initramfs, arg, "1n1l1c1t".parse().unwrap(), 256, &sub);
        let mut vm = engine.boot(&spec).expect("boot");
        let started = Instant::now();
        while vm.try_wait().unwrap().is_none() {
            let console = || std::fs::read_to_string(&spec.console_log).unwrap_or_default();
            assert!(started.elapsed() < WATCHDOG, "{name}: no reboot:\n{}", console());
            std::thread::sleep(Duration::from_millis(50));
        }
        vm.end_detail()
    };
    let detail = reboot("triple", "reboot=t").expect("a triple fault is named");
    assert!(detail.starts_with("triple fault (in ") && detail.contains("qemu-cpu.log"), "{detail}");
    assert_eq!(reboot("orderly", ""), None, "an orderly reset is no triple fault");
}

/// A guest that idles once its init has spoken: its vCPUs halt.
const IDLE_INIT: &str = r#"#!/bin/busybox sh
echo KTSTR-IDLE
/bin/busybox sleep 1000
"#;

#[test]
fn an_idle_guest_is_woken_by_an_injected_nmi() {
    // What `ktstr nested` sends an L1 that waits on a lost interrupt.
    let Some((kernel, busybox, engine)) = prerequisites() else { return };
    let dir = tempfile::tempdir().unwrap();
    let initramfs = build_initramfs(&busybox, IDLE_INIT, dir.path());
    let spec = guest_spec(&kernel, initramfs, "", "1n1l2c1t".parse().unwrap(), 256, dir.path());
    let mut vm = engine.boot(&spec).expect("boot");
    wait_for_console(&mut vm, &spec, "KTSTR-IDLE");
    vm.inject_nmi().expect("QEMU's monitor takes inject-nmi");
    // The halted vCPUs take it and the kernel goes on (KERN_EMERG lines:
    // microvm has no NMI reason port, so it reads a PCI SERR).
    wait_for_console(&mut vm, &spec, "Dazed and confused, but trying to continue");
    assert!(vm.try_wait().unwrap().is_none(), "the guest survives the NMI");
    vm.kill().unwrap();
}
