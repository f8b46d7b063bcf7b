//! Assembles a VM: KVM objects, guest memory, kernel and boot data, ACPI,
//! devices on their buses, and configured vCPUs (not yet running).

use std::fs::{File, OpenOptions};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use kvm_bindings::{
    kvm_pit_config, kvm_userspace_memory_region, CpuId, KVM_CAP_PRE_FAULT_MEMORY,
    KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY,
};
use kvm_ioctls::{Cap, IoEventAddress, Kvm, NoDatamatch, VmFd};
use vm_memory::{Bytes, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::arch::x86_64::{acpi, boot, cpuid, kernel, layout::*, mptable, regs, topo, xsave};
use crate::devices::bus::Bus;
use crate::devices::i8042::I8042;
use crate::devices::serial::{LineSink, Serial};
use crate::devices::virtio::block::Block;
use crate::devices::virtio::console::Console;
use crate::devices::virtio::mmio::MmioTransport;
use crate::devices::virtio::shell_port::{ShellInput, ShellPort};
use crate::devices::virtio::throttle::Throttle;
use crate::devices::virtio::worker::{QueueWorker, ShellReader};
use crate::exit::{ExitState, ResetLine};
use crate::prefault;
use crate::snapshot::Snapshots;
use crate::vcpu::Vcpu;
use crate::{DiskConfig, VmConfig};
use virtio_bindings::virtio_mmio::VIRTIO_MMIO_QUEUE_NOTIFY;

/// The guest finds the data port by this name (see ktstr_core::guest::channel).
pub const DATA_PORT_NAME: &str = "ktstr";
/// And the interactive shell's (ktstr_core::protocol::terminal::SHELL_PORT).
pub const SHELL_PORT_NAME: &str = "ktstr-shell";

/// Everything that must outlive the vCPU threads.
pub struct VmResources {
    pub _kvm: Kvm,
    pub _vm: VmFd,
    pub _mem: GuestMemoryMmap,
    pub _irqs: Vec<Arc<EventFd>>,
}

pub struct Built {
    pub vcpus: Vec<Vcpu>,
    /// Threads that serve devices off the vCPU threads, by name: one per
    /// disk, and the shell port's reader.
    pub workers: Vec<(String, Box<dyn FnOnce() + Send>)>,
    pub resources: VmResources,
    pub exit: Arc<ExitState>,
    /// Where the vCPUs are, asked while the VM runs.
    pub snapshots: Arc<Snapshots>,
}

/// The full kernel command line: the caller's, then what this VMM needs.
pub fn kernel_cmdline(caller: &str) -> String {
    let mut parts: Vec<&str> = caller.split_whitespace().collect();
    // console: COM1. reboot=k: reset through the i8042, the VM's end signal;
    // ktstr.poweroff=reboot: ktstr-init reboots instead of powering off, as a
    // hardware-reduced ACPI machine without sleep registers cannot power off.
    // io_delay=none: port 0x80 writes would each be a VM exit.
    parts.extend(["console=ttyS0", "reboot=k", "ktstr.poweroff=reboot", "io_delay=none"]);
    parts.join(" ")
}

fn open_out(path: &std::path::Path, append: bool) -> anyhow::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    o.open(path).with_context(|| format!("open {}", path.display()))
}

pub fn build(cfg: &VmConfig) -> anyhow::Result<Built> {
    let cpu_topo = topo::CpuTopo::new(&cfg.topology)?;
    let node_mib = topo::node_memory_mib(cfg.memory_mib, cfg.topology.nodes)?;
    let initramfs = cfg.initramfs.iter().map(|p| ("initramfs", p));
    for (what, p) in std::iter::once(("kernel", &cfg.kernel)).chain(initramfs) {
        if !p.is_file() {
            bail!("the {what} {} does not exist", p.display());
        }
    }
    if cfg.disks.len() > MAX_DISKS {
        bail!("{} disks asked for; ktstr-vmm has room for {MAX_DISKS}", cfg.disks.len());
    }
    let mem_bytes = cfg.memory_mib << 20;
    // Where a build's time goes, for `-vv` (it varies tenfold in a nested L1).
    let mut steps = Steps::new();

    let kvm = Kvm::new().context("open /dev/kvm")?;
    let vm = kvm.create_vm().context("KVM_CREATE_VM")?;
    vm.set_tss_address(KVM_TSS_ADDR as usize).context("KVM_SET_TSS_ADDR")?;
    // Intel-only; harmless elsewhere.
    let _ = vm.set_identity_map_address(KVM_IDENTITY_MAP_ADDR);
    vm.create_irq_chip().context("KVM_CREATE_IRQCHIP")?;
    vm.create_pit2(kvm_pit_config { flags: KVM_PIT_SPEAKER_DUMMY, ..Default::default() })
        .context("KVM_CREATE_PIT2")?;

    let mem =
        GuestMemoryMmap::from_ranges(&ram_ranges(mem_bytes)).context("allocate guest memory")?;
    for (slot, region) in mem.iter().enumerate() {
        let host =
            mem.get_host_address(region.start_addr()).context("host address of guest RAM")?;
        advise_huge_pages(host, region.len());
        let r = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the mapping lives in `mem`, which VmResources keeps until
        // every vCPU thread has been joined.
        unsafe { vm.set_user_memory_region(r) }.context("KVM_SET_USER_MEMORY_REGION")?;
    }

    steps.done("KVM VM and memory");
    let kernel = kernel::load_kernel(&mem, &cfg.kernel)?;
    steps.done("kernel");
    tracing::debug!("kernel {} loaded as {:?}", cfg.kernel.display(), kernel.kind);
    let initrd: Vec<&std::path::Path> = cfg.initramfs.iter().map(|p| p.as_path()).collect();
    let initrd_at =
        boot::setup_boot(&mem, &kernel, mem_bytes, &initrd, &kernel_cmdline(&cfg.cmdline))?;
    steps.done("initramfs and boot parameters");
    regs::write_boot_tables(&mem)?;
    let mut offset = 0u64;
    let nodes: Vec<acpi::NodeRam> = node_mib
        .iter()
        .map(|mib| {
            let span = ram_span(offset, offset + (mib << 20));
            offset += mib << 20;
            span
        })
        .collect();
    acpi::write(&mem, &acpi::build(&cpu_topo, &nodes, cfg.disks.len())?)?;
    let mp = mptable::build(&cpu_topo, MPTABLE_START as u32);
    mem.write_slice(&mp, vm_memory::GuestAddress(MPTABLE_START)).context("write the MP table")?;

    let exit = Arc::new(ExitState::default());
    let mut irqs = Vec::new();
    let mut irq = |gsi: u32| -> anyhow::Result<Arc<EventFd>> {
        let fd = Arc::new(EventFd::new(EFD_NONBLOCK).context("eventfd")?);
        vm.register_irqfd(&fd, gsi).with_context(|| format!("KVM_IRQFD for GSI {gsi}"))?;
        irqs.push(fd.clone());
        Ok(fd)
    };
    let mut pio = Bus::new();
    // The console is written a line at a time, not a byte at a time.
    let com1 = Serial::new(irq(COM1_IRQ)?, LineSink::new(open_out(&cfg.console_log, true)?));
    pio.insert(COM1_PORT.into(), 8, Arc::new(Mutex::new(com1)))?;
    let com2 = Serial::new(irq(COM2_IRQ)?, open_out(&cfg.data_fallback_out, false)?);
    pio.insert(COM2_PORT.into(), 8, Arc::new(Mutex::new(com2)))?;
    pio.insert(
        I8042_PORT.into(),
        I8042_LEN.into(),
        Arc::new(Mutex::new(I8042::new(Arc::new(ResetLine(exit.clone()))))),
    )?;
    let mut mmio = Bus::new();
    let mut workers: Vec<(String, Box<dyn FnOnce() + Send>)> = Vec::new();
    let mut console = Console::new(DATA_PORT_NAME, open_out(&cfg.data_out, false)?);
    let shell = cfg.shell_socket.as_ref().map(|p| connect_shell(p)).transpose()?;
    if let Some((stream, input)) = &shell {
        let out = Box::new(stream.try_clone().context("clone the shell socket")?);
        let (name, input) = (SHELL_PORT_NAME.into(), input.clone());
        console = console.with_shell(ShellPort { name, out, input, guest_open: false });
    }
    let transport = MmioTransport::new(Box::new(console), mem.clone(), irq(VIRTIO_CONSOLE_IRQ)?);
    let transport = Arc::new(Mutex::new(transport));
    mmio.insert(VIRTIO_MMIO_BASE, VIRTIO_MMIO_SIZE, transport.clone())?;
    if let Some((stream, input)) = shell {
        let reader = ShellReader { transport, stream, input, exit: exit.clone() };
        workers.push(("ktstr-shell".into(), Box::new(move || reader.run())));
    }
    for (i, disk) in cfg.disks.iter().enumerate() {
        let (base, gsi) = disk_slot(i);
        let block = open_disk(disk)?;
        let transport =
            Arc::new(Mutex::new(MmioTransport::new(Box::new(block), mem.clone(), irq(gsi)?)));
        mmio.insert(base, VIRTIO_MMIO_SIZE, transport.clone())?;
        // Queue notifications complete in KVM and wake the disk's worker.
        let notify = EventFd::new(EFD_NONBLOCK).context("eventfd")?;
        let at = IoEventAddress::Mmio(base + u64::from(VIRTIO_MMIO_QUEUE_NOTIFY));
        vm.register_ioevent(&notify, &at, NoDatamatch).context("KVM_IOEVENTFD for a disk")?;
        let worker = QueueWorker { transport, notify, exit: exit.clone() };
        workers.push((format!("ktstr-disk{i}"), Box::new(move || worker.run())));
    }
    let (pio, mmio) = (Arc::new(pio), Arc::new(mmio));

    steps.done("tables and devices");
    let supported =
        kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).context("KVM_GET_SUPPORTED_CPUID")?;
    let extras = cpuid::KvmExtras { tsc_deadline: kvm.check_extension(Cap::TscDeadlineTimer) };
    let mut vcpus = Vec::new();
    let snapshots = Arc::new(Snapshots::new(cpu_topo.places().len()));
    for place in cpu_topo.places() {
        // The vCPU id is the initial APIC id.
        let fd = vm
            .create_vcpu(u64::from(place.apic_id))
            .with_context(|| format!("create vCPU {}", place.cpu))?;
        let entries = cpuid::for_vcpu(supported.as_slice(), extras, &cpu_topo, place.cpu);
        let cpuid =
            CpuId::from_entries(&entries).map_err(|e| anyhow::anyhow!("CPUID table: {e:?}"))?;
        fd.set_cpuid2(&cpuid).with_context(|| format!("KVM_SET_CPUID2 on vCPU {}", place.cpu))?;
        if let Some(xcr0) = xsave::initial_xcr0(&entries) {
            // Not fatal: the guest then starts from KVM's reset XCR0, as
            // before, and sets its own.
            match xsave::setup_xcr0(&fd, xcr0) {
                Err(e) if place.cpu == 0 => tracing::warn!("{e:#}; the guest sets XCR0 itself"),
                Err(e) => tracing::debug!("vCPU {}: {e:#}", place.cpu),
                Ok(()) => {}
            }
        }
        regs::setup_msrs(&fd)?;
        regs::setup_fpu(&fd)?;
        regs::setup_lapic(&fd)?;
        if place.cpu == 0 {
            // The others wait for INIT/SIPI from the kernel, as on hardware.
            regs::setup_boot_vcpu(&fd, kernel.entry.0)?;
            // KVM maps ahead only with two-dimensional paging (Linux 6.10+).
            if vm.check_extension_raw(KVM_CAP_PRE_FAULT_MEMORY.into()) > 0 {
                let ranges = prefault::boot_ranges(kernel.end, initrd_at, mem_bytes);
                let t = std::time::Instant::now();
                let done = prefault::prefault(&mem, &fd, &ranges);
                tracing::debug!("prefaulted {ranges:x?}: {done:?} in {:?}", t.elapsed());
            }
        }
        vcpus.push(Vcpu {
            index: place.cpu,
            fd,
            pio: pio.clone(),
            mmio: mmio.clone(),
            exit: exit.clone(),
            mem: mem.clone(),
            snapshots: snapshots.clone(),
        });
    }
    steps.done("vCPUs");
    tracing::debug!("VM built: {steps}");
    let resources = VmResources { _kvm: kvm, _vm: vm, _mem: mem, _irqs: irqs };
    Ok(Built { vcpus, workers, resources, exit, snapshots })
}

/// How long each step of a build took, said as `kernel 12 ms, …`.
struct Steps {
    last: std::time::Instant,
    spent: Vec<(&'static str, std::time::Duration)>,
}

impl Steps {
    fn new() -> Steps {
        Steps { last: std::time::Instant::now(), spent: Vec::new() }
    }

    fn done(&mut self, step: &'static str) {
        self.spent.push((step, self.last.elapsed()));
        self.last = std::time::Instant::now();
    }
}

impl std::fmt::Display for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> =
            self.spent.iter().map(|(step, d)| format!("{step} {} ms", d.as_millis())).collect();
        f.write_str(&parts.join(", "))
    }
}

/// The host's end of the shell port: a Unix socket it listens on.
fn connect_shell(path: &std::path::Path) -> anyhow::Result<(UnixStream, ShellInput)> {
    let stream = UnixStream::connect(path)
        .with_context(|| format!("connect to the shell socket {}", path.display()))?;
    Ok((stream, ShellInput::default()))
}

/// Asks for guest RAM in transparent huge pages, as QEMU does. Each guest page
/// first touched is a nested page fault, the dearest exit when this VMM itself
/// runs nested; 2 MB pages make 512 times fewer. Only a hint: a host kernel
/// without THP refuses it and the guest runs on 4 KB pages.
fn advise_huge_pages(host: *mut u8, len: u64) {
    // SAFETY: the range is one whole mapping owned by the guest memory;
    // MADV_HUGEPAGE changes no contents.
    let rc = unsafe { libc::madvise(host.cast(), len as usize, libc::MADV_HUGEPAGE) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        tracing::debug!("madvise(MADV_HUGEPAGE) on guest RAM refused: {err}");
    }
}

fn open_disk(disk: &DiskConfig) -> anyhow::Result<Block> {
    let file = OpenOptions::new()
        .read(true)
        .write(!disk.read_only)
        .open(&disk.path)
        .with_context(|| format!("open the disk image {}", disk.path.display()))?;
    let throttle = Throttle::new(disk.iops, disk.bps, std::time::Instant::now());
    Ok(Block::new(file, disk.read_only, &disk.serial)
        .with_context(|| format!("size of {}", disk.path.display()))?
        .with_throttle(throttle))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VmFlags line of the mapping that starts at `addr`, from smaps.
    fn vm_flags(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let start = format!("{addr:x}-");
        let block = smaps.split_inclusive('\n').skip_while(|l| !l.starts_with(&start));
        let line = block.skip(1).find(|l| l.starts_with("VmFlags:")).unwrap_or_default();
        line.to_string()
    }

    #[test]
    fn guest_ram_asks_for_huge_pages_where_the_kernel_has_them() {
        use vm_memory::{GuestAddress, GuestMemoryBackend};
        let mem: GuestMemoryMmap =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap();
        let host = mem.get_host_address(GuestAddress(0)).unwrap();
        advise_huge_pages(host, 4 << 20);
        let flags = vm_flags(host as usize);
        let thp = std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists();
        // `hg`: the mapping is marked MADV_HUGEPAGE; without THP the kernel refuses it.
        assert_eq!(flags.split_whitespace().any(|f| f == "hg"), thp, "{flags}");
    }

    #[test]
    fn cmdline_appends_what_the_vmm_needs() {
        assert_eq!(
            kernel_cmdline(" rdinit=/init  panic=-1 "),
            "rdinit=/init panic=-1 console=ttyS0 reboot=k ktstr.poweroff=reboot io_delay=none"
        );
    }
}
