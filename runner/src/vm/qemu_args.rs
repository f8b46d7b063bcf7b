//! The QEMU command line for a `VmSpec`, as a pure function.
//!
//! Mapping of a `NnNlNcNt` topology (verified in guests on QEMU 7.2, TCG `-cpu max`):
//! - every LLC is a QEMU socket: `sockets = nodes * llcs_per_node`, `cores`,
//!   `threads` as asked. QEMU's L3 is shared per die, but microvm rejects
//!   `dies=`, and with `-cpu max` (AMD vendor) Linux ignored dies on `-M pc` too:
//!   the L3 followed the socket. CPUs are numbered socket → core → thread,
//!   as Linux numbers them.
//! - one node: `-M microvm` (ACPI on, so `poweroff -f` ends QEMU). microvm
//!   builds no SRAT, so several nodes need `-M q35`, with one RAM backend and
//!   one `-numa node` per node over consecutive CPUs.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::{VmDisk, VmSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Tcg,
    Kvm,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// Under TCG the guest reads the host's TSC, so the host's rate lets the
/// guest skip PIT calibration (flaky under load, and it can hang microvm,
/// which has no HPET to fall back on) and per-package delay-loop calibration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcgTiming {
    pub tsc_khz: u64,
    /// The guest kernel's CONFIG_HZ, when known: gives `lpj=`.
    pub hz: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QemuConfig {
    pub accel: Accel,
    pub timing: Option<TcgTiming>,
    /// Give a KVM guest SVM/VMX: only for guests that host VMs themselves
    /// (`ktstr nested`). Test guests get neither, as under ktstr-vmm, so the
    /// test kernel's built-in KVM stays idle.
    pub virtualization: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    Microvm,
    Q35,
}

impl Machine {
    pub fn for_nodes(nodes: u32) -> Machine {
        if nodes > 1 {
            Machine::Q35
        } else {
            Machine::Microvm
        }
    }
}

/// Smallest RAM per NUMA node worth booting.
pub const MIN_NODE_MIB: u64 = 64;

/// RAM per node in MiB: an even split, the remainder on node 0; the sum is `total`.
pub fn node_memory_mib(total_mib: u64, nodes: u32) -> anyhow::Result<Vec<u64>> {
    let nodes = u64::from(nodes.max(1));
    if total_mib < nodes * MIN_NODE_MIB {
        bail!(
            "{total_mib} MiB of memory is too little for {nodes} NUMA node(s): give at least \
            {MIN_NODE_MIB} MiB per node"
        );
    }
    let each = total_mib / nodes;
    let mut split = vec![each; nodes as usize];
    split[0] += total_mib - each * nodes;
    Ok(split)
}

/// The kernel command line: the caller's part, then what the devices and the
/// accelerator need.
pub fn kernel_cmdline(cfg: &QemuConfig, spec: &VmSpec) -> String {
    let mut parts: Vec<String> = Vec::new();
    let caller = spec.cmdline.trim();
    if !caller.is_empty() {
        parts.push(caller.to_string());
    }
    parts.push("console=ttyS0".into());
    if let (Accel::Tcg, Some(t)) = (cfg.accel, cfg.timing) {
        // Every vCPU reads the one host TSC: the guest's sync check only sees
        // TCG's scheduling jitter, and without tsc=reliable it falls back to
        // jiffies as its clock.
        parts.push("tsc=reliable".into());
        parts.push(format!("tsc_early_khz={}", t.tsc_khz));
        if let Some(hz) = t.hz.filter(|&hz| hz > 0) {
            parts.push(format!("lpj={}", t.tsc_khz * 1000 / u64::from(hz)));
        }
    }
    parts.join(" ")
}

/// Every argument after the binary.
pub fn build(cfg: &QemuConfig, spec: &VmSpec) -> anyhow::Result<Vec<String>> {
    let topo = &spec.topology;
    let machine = Machine::for_nodes(topo.nodes);
    let node_mib = node_memory_mib(spec.memory_mib, topo.nodes)?;
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));

    push(&[
        "-M",
        match machine {
            Machine::Microvm => "microvm,acpi=on",
            Machine::Q35 => "q35",
        },
    ]);
    match cfg.accel {
        // TCG's `max` without SVM loses its cache topology leaves (QEMU 7.2),
        // and its guests never hit the nested trouble: left as it is.
        Accel::Tcg => push(&["-accel", "tcg,thread=multi", "-cpu", "max"]),
        Accel::Kvm if cfg.virtualization => push(&["-accel", "kvm", "-cpu", "host"]),
        Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host,-vmx,-svm"]),
    }
    push(&["-m", &format!("{}M", spec.memory_mib)]);
    let smp = format!(
        "cpus={},sockets={},cores={},threads={}",
        topo.cpus(),
        topo.llcs(),
        topo.cores_per_llc,
        topo.threads_per_core
    );
    push(&["-smp", &smp]);
    if topo.nodes > 1 {
        for (node, mib) in node_mib.iter().enumerate() {
            let cpus = topo.node_cpus(node as u32);
            let (first, last) = (cpus[0], cpus[cpus.len() - 1]);
            push(&["-object", &format!("memory-backend-ram,id=mem{node},size={mib}M")]);
            push(&["-numa", &format!("node,nodeid={node},cpus={first}-{last},memdev=mem{node}")]);
        }
    }
    push(&["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"]);
    let [initrd] = spec.initramfs.as_slice() else {
        anyhow::bail!("QEMU takes one initramfs file, not {}", spec.initramfs.len());
    };
    push(&["-kernel", path_str(&spec.kernel)?, "-initrd", path_str(initrd)?]);
    push(&["-append", &kernel_cmdline(cfg, spec)]);

    // COM1: any -device isa-serial would take COM1 unless COM1 is claimed first.
    push(&[
        "-chardev",
        &format!("file,id=com1,path={},append=on", chardev_path(&spec.console_log)?),
    ]);
    push(&["-serial", "chardev:com1"]);
    push(&["-chardev", &format!("file,id=com2,path={}", chardev_path(&spec.data_fallback_out)?)]);
    push(&["-device", "isa-serial,chardev=com2,index=1"]);
    // microvm has virtio-mmio slots (described in its DSDT); q35 has PCI.
    push(&[
        "-device",
        match machine {
            Machine::Microvm => "virtio-serial-device,id=vser0",
            Machine::Q35 => "virtio-serial-pci,id=vser0",
        },
    ]);
    push(&["-chardev", &format!("file,id=data,path={}", chardev_path(&spec.data_out)?)]);
    push(&["-device", "virtserialport,bus=vser0.0,chardev=data,name=ktstr"]);
    if let Some(sock) = &spec.shell_socket {
        // QEMU connects to our listening socket; it holds input back until
        // the guest opens the port, and relays both ways.
        push(&["-chardev", &format!("socket,id=shell,path={}", chardev_path(sock)?)]);
        push(&["-device", "virtserialport,bus=vser0.0,chardev=shell,name=ktstr-shell"]);
    }
    for (i, disk) in spec.disks.iter().enumerate() {
        a.extend(disk_args(i, disk, machine)?);
    }
    // CPU resets: a triple fault is logged there and nowhere else (-no-reboot
    // makes it an exit like a power-off). An L1's guest errors too; a test
    // guest's payload runs as root and could poke unassigned MMIO in a loop,
    // a line each time.
    let events = if cfg.virtualization { "cpu_reset,guest_errors" } else { "cpu_reset" };
    a.extend(["-d".into(), events.into(), "-D".into(), path_str(&cpu_log(spec))?.into()]);
    Ok(a)
}

/// QEMU's log of CPU resets (and an L1's guest errors), beside the console log.
pub fn cpu_log(spec: &VmSpec) -> PathBuf {
    spec.console_log.with_file_name("qemu-cpu.log")
}

/// A raw image as a virtio-blk device the guest finds by its serial; limits
/// through QEMU's block throttling.
fn disk_args(i: usize, disk: &VmDisk, machine: Machine) -> anyhow::Result<[String; 4]> {
    let mut drive = format!("file={},if=none,id=disk{i},format=raw", chardev_path(&disk.path)?);
    if disk.read_only {
        drive.push_str(",readonly=on");
    }
    if let Some(n) = disk.iops {
        drive.push_str(&format!(",throttling.iops-total={n}"));
    }
    if let Some(n) = disk.bps {
        drive.push_str(&format!(",throttling.bps-total={n}"));
    }
    let model = match machine {
        Machine::Microvm => "virtio-blk-device",
        Machine::Q35 => "virtio-blk-pci",
    };
    if disk.serial.contains(',') {
        bail!("disk serial `{}` has a comma", disk.serial);
    }
    let device = format!("{model},drive=disk{i},serial={}", disk.serial);
    Ok(["-drive".into(), drive, "-device".into(), device])
}

pub(super) fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().with_context(|| format!("path {} is not UTF-8; QEMU options need text", p.display()))
}

/// A path inside a QEMU `key=value,…` option: commas are doubled.
fn chardev_path(p: &Path) -> anyhow::Result<String> {
    Ok(path_str(p)?.replace(',', ",,"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec(topo: &str, mem: u64) -> VmSpec {
        VmSpec {
            kernel: PathBuf::from("/k/bzImage"),
            vmlinux: None,
            initramfs: vec![PathBuf::from("/i/initrd.cpio")],
            cmdline: "rdinit=/init panic=-1".into(),
            topology: topo.parse().unwrap(),
            memory_mib: mem,
            console_log: PathBuf::from("/out/console.log"),
            data_out: PathBuf::from("/out/data,1.bin"),
            data_fallback_out: PathBuf::from("/out/com2.bin"),
            disks: Vec::new(),
            shell_socket: None,
        }
    }

    const TCG: QemuConfig = QemuConfig { accel: Accel::Tcg, timing: None, virtualization: false };

    /// The value after each occurrence of `flag`.
    fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2).filter(|w| w[0] == flag).map(|w| w[1].as_str()).collect()
    }

    #[test]
    fn single_node_is_microvm() {
        let args = build(&TCG, &spec("1n2l2c1t", 1024)).unwrap();
        assert_eq!(values(&args, "-M"), ["microvm,acpi=on"]);
        assert_eq!(values(&args, "-accel"), ["tcg,thread=multi"]);
        assert_eq!(values(&args, "-cpu"), ["max"]);
        assert_eq!(values(&args, "-m"), ["1024M"]);
        assert_eq!(values(&args, "-smp"), ["cpus=4,sockets=2,cores=2,threads=1"]);
        assert!(values(&args, "-numa").is_empty());
        assert!(values(&args, "-object").is_empty());
        for flag in ["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"] {
            assert!(args.iter().any(|a| a == flag), "{flag}");
        }
        assert_eq!(values(&args, "-kernel"), ["/k/bzImage"]);
        assert_eq!(values(&args, "-initrd"), ["/i/initrd.cpio"]);
        assert_eq!(values(&args, "-append"), ["rdinit=/init panic=-1 console=ttyS0"]);
        assert_eq!(values(&args, "-d"), ["cpu_reset"], "a test guest logs its CPU resets only");
        assert_eq!(
            values(&args, "-chardev"),
            [
                "file,id=com1,path=/out/console.log,append=on",
                "file,id=com2,path=/out/com2.bin",
                "file,id=data,path=/out/data,,1.bin",
            ]
        );
        assert_eq!(values(&args, "-serial"), ["chardev:com1"]);
        assert_eq!(
            values(&args, "-device"),
            [
                "isa-serial,chardev=com2,index=1",
                "virtio-serial-device,id=vser0",
                "virtserialport,bus=vser0.0,chardev=data,name=ktstr",
            ]
        );
    }

    #[test]
    fn a_shell_socket_is_a_second_port_qemu_connects_to() {
        let s = VmSpec {
            shell_socket: Some(PathBuf::from("/run/x/shell.sock")),
            ..spec("1n1l2c1t", 512)
        };
        let args = build(&TCG, &s).unwrap();
        assert!(values(&args, "-chardev").contains(&"socket,id=shell,path=/run/x/shell.sock"));
        assert!(values(&args, "-device")
            .contains(&"virtserialport,bus=vser0.0,chardev=shell,name=ktstr-shell"));
    }

    #[test]
    fn disks_are_virtio_blk_with_their_serial_and_limits() {
        let mut s = spec("1n1l2c1t", 512);
        let disk = |path: &str, ro, iops, bps| VmDisk {
            path: PathBuf::from(path),
            read_only: ro,
            serial: "ktstr-disk0".into(),
            iops,
            bps,
        };
        s.disks = vec![
            disk("/c/a,b.img", false, None, None),
            disk("/c/r.img", true, Some(50), Some(1 << 20)),
        ];
        let args = build(&TCG, &s).unwrap();
        assert_eq!(
            values(&args, "-drive"),
            [
                "file=/c/a,,b.img,if=none,id=disk0,format=raw",
                "file=/c/r.img,if=none,id=disk1,format=raw,readonly=on,\
                 throttling.iops-total=50,throttling.bps-total=1048576",
            ]
        );
        let devices = values(&args, "-device");
        assert!(devices.contains(&"virtio-blk-device,drive=disk0,serial=ktstr-disk0"));
        assert!(devices.contains(&"virtio-blk-device,drive=disk1,serial=ktstr-disk0"));
        s.topology = "2n1l1c1t".parse().unwrap();
        let pci = build(&TCG, &s).unwrap();
        assert!(values(&pci, "-device").contains(&"virtio-blk-pci,drive=disk0,serial=ktstr-disk0"));
    }

    #[test]
    fn smt_and_llcs_become_sockets() {
        let args = build(&TCG, &spec("1n2l4c2t", 1024)).unwrap();
        assert_eq!(values(&args, "-smp"), ["cpus=16,sockets=2,cores=4,threads=2"]);
        let args = build(&TCG, &spec("1n1l1c1t", 256)).unwrap();
        assert_eq!(values(&args, "-smp"), ["cpus=1,sockets=1,cores=1,threads=1"]);
    }

    #[test]
    fn numa_uses_q35_and_splits_memory() {
        let args = build(&TCG, &spec("2n4l2c1t", 1025)).unwrap();
        assert_eq!(values(&args, "-M"), ["q35"]);
        assert_eq!(values(&args, "-smp"), ["cpus=16,sockets=8,cores=2,threads=1"]);
        assert_eq!(
            values(&args, "-object"),
            ["memory-backend-ram,id=mem0,size=513M", "memory-backend-ram,id=mem1,size=512M"]
        );
        assert_eq!(
            values(&args, "-numa"),
            ["node,nodeid=0,cpus=0-7,memdev=mem0", "node,nodeid=1,cpus=8-15,memdev=mem1"]
        );
        assert!(values(&args, "-device").contains(&"virtio-serial-pci,id=vser0"));
        assert_eq!(values(&args, "-m"), ["1025M"]);
    }

    #[test]
    fn memory_split() {
        assert_eq!(node_memory_mib(1024, 1).unwrap(), [1024]);
        assert_eq!(node_memory_mib(1000, 3).unwrap(), [334, 333, 333]);
        assert_eq!(node_memory_mib(128, 2).unwrap(), [64, 64]);
        let err = node_memory_mib(127, 2).unwrap_err().to_string();
        assert!(err.contains("at least 64 MiB per node"), "{err}");
        assert!(build(&TCG, &spec("4n1l1c1t", 200)).is_err());
    }

    #[test]
    fn kvm_and_timing_hints() {
        let kvm = QemuConfig {
            accel: Accel::Kvm,
            timing: Some(TcgTiming { tsc_khz: 2_596_148, hz: Some(250) }),
            virtualization: true,
        };
        let args = build(&kvm, &spec("1n1l2c1t", 512)).unwrap();
        assert_eq!(values(&args, "-accel"), ["kvm"]);
        assert_eq!(values(&args, "-cpu"), ["host"], "a nested host keeps SVM/VMX");
        assert_eq!(values(&args, "-d"), ["cpu_reset,guest_errors"], "an L1 logs guest errors");
        assert_eq!(values(&args, "-D"), ["/out/qemu-cpu.log"]);
        let test_guest = QemuConfig { virtualization: false, ..kvm };
        assert_eq!(
            values(&build(&test_guest, &spec("1n1l2c1t", 512)).unwrap(), "-cpu"),
            ["host,-vmx,-svm"]
        );
        // Timing hints are for TCG only: KVM guests calibrate against kvmclock.
        assert_eq!(values(&args, "-append"), ["rdinit=/init panic=-1 console=ttyS0"]);

        let tcg = QemuConfig {
            accel: Accel::Tcg,
            timing: Some(TcgTiming { tsc_khz: 2_596_148, hz: Some(250) }),
            virtualization: false,
        };
        assert_eq!(
            kernel_cmdline(&tcg, &spec("1n1l2c1t", 512)),
            "rdinit=/init panic=-1 console=ttyS0 tsc=reliable tsc_early_khz=2596148 lpj=10384592"
        );
        let no_hz = QemuConfig {
            accel: Accel::Tcg,
            timing: Some(TcgTiming { tsc_khz: 2_000_000, hz: None }),
            virtualization: false,
        };
        let mut s = spec("1n1l2c1t", 512);
        s.cmdline = "  ".into();
        assert_eq!(kernel_cmdline(&no_hz, &s), "console=ttyS0 tsc=reliable tsc_early_khz=2000000");
    }
}
