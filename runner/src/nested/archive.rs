//! What an L1 guest needs to run `ktstr` itself: this ktstr and its guest
//! init, every loaded plugin, the binaries the payload plugins found on this
//! host, the kernel cache entry (the L2 kernel and its schedulers), busybox
//! for the L1 init script, and optionally QEMU with its firmware.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use ktstr_core::disk::Filesystem;

use crate::initramfs::ArchiveSpec;
use crate::kernel::KernelEntry;
use crate::plugins::{locate, Catalog};

/// Where things live inside L1.
pub const KTSTR_DIR: &str = "/ktstr";
pub const CACHE_DIR: &str = "/cache";
pub const BIN_DIR: &str = "/usr/bin";
const BUSYBOX_CANDIDATES: [&str; 2] = ["/bin/busybox", "/usr/bin/busybox"];
/// Firmware QEMU loads for `-M microvm` (the first) and `-M q35` guests.
const QEMU_FIRMWARE: [&str; 4] =
    ["bios-microvm.bin", "bios-256k.bin", "kvmvapic.bin", "linuxboot_dma.bin"];
/// QEMU's data directory in L1; on the host Debian splits it with seabios.
const QEMU_DATA_DIR: &str = "/usr/share/qemu";
const HOST_FIRMWARE_DIRS: [&str; 2] = ["/usr/share/qemu", "/usr/share/seabios"];

/// The script L1 runs as PID 1: mounts, runs `ktstr ARGS` with its stdout
/// on the virtio port `ktstr`, its exit code on COM2, and powers off. With
/// a terminal (`Some(TERM)`, an interactive `shell`), ktstr runs on a PTY
/// relayed to the port `ktstr-shell` instead.
fn init_script(args: &[String], terminal: Option<&str>) -> String {
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let run = match terminal {
        Some(term) => format!(
            "TERM={} {KTSTR_DIR}/ktstr on-terminal $tty {KTSTR_DIR}/ktstr {}",
            shell_quote(term),
            quoted.join(" ")
        ),
        None => format!("{KTSTR_DIR}/ktstr {} > $out", quoted.join(" ")),
    };
    format!(
        r#"#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /usr/sbin /proc /sys /dev /tmp /run /root
/bin/busybox --install -s
# No colours: the host forwards ktstr's `error:` lines from this console.
export PATH={BIN_DIR}:/bin:/sbin:/usr/sbin HOME=/root KTSTR_CACHE_DIR={CACHE_DIR} NO_COLOR=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup
# No huge pages for L2 RAM: with them, in 140 bench runs each, ktstr-vmm's
# L2 guests failed 4 times (hangs, an RCU stall, a segfault) and QEMU's none;
# without, ours 0 in 60 and QEMU's 2 (README, Performance).
echo never > /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null
out=/dev/null
tty=
for p in /sys/class/virtio-ports/*; do
  dev=/dev/${{p##*/}}
  [ -e $dev ] || mknod $dev c $(tr : ' ' < $p/dev)
  case "$(cat $p/name 2>/dev/null)" in
    ktstr) out=$dev ;;
    ktstr-shell) tty=$dev ;;
  esac
done
# A heartbeat on the console: the host ends an L1 that falls silent.
( while :; do sleep {HEARTBEAT_S}; echo "{HEARTBEAT} $(cut -d' ' -f1 /proc/uptime)"; done ) &
kvm=$([ -e /dev/kvm ] && echo present || echo MISSING)
echo "[L1] up $(cut -d' ' -f1 /proc/uptime)s; /dev/kvm: $kvm; running: ktstr "{shown}
{run}
rc=$?
if [ $rc -ne 0 ]; then
  # Evidence for the host: the console of the newest inner run.
  last=$(ls -1d {CACHE_DIR}/runs/*/ 2>/dev/null | tail -n 1)
  if [ -n "$last" ] && [ -f "$last/console.log" ]; then
    echo "L1: console of the inner run $last:"
    sed 's/^/L1-inner: /' "$last/console.log"
  fi
fi
stty -F /dev/ttyS1 raw 2>/dev/null
echo "KTSTR-NESTED-EXIT $rc" > /dev/ttyS1
sync
poweroff -f
"#,
        HEARTBEAT = super::liveness::HEARTBEAT,
        HEARTBEAT_S = super::liveness::HEARTBEAT_EVERY.as_secs(),
        // The quoted command line, itself single-quoted: shown as given, never run.
        shown = shell_quote(&quoted.join(" ")),
    )
}

/// Single-quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Everything L1 needs; `with_qemu` adds QEMU (for `--vmm qemu` inside L1);
/// `terminal` (TERM) runs ktstr on a terminal (see [`init_script`]).
pub fn l1_archive(
    args: &[String],
    catalog: &Catalog,
    kernel: &KernelEntry,
    with_qemu: bool,
    terminal: Option<&str>,
) -> Result<ArchiveSpec> {
    let mut a = ArchiveSpec::default();
    let busybox = BUSYBOX_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file()).context(
        "busybox not found (/bin/busybox): install busybox-static (scripts/setup.sh does)",
    )?;
    a.add_file(&busybox, "/bin/busybox", 0o755);
    a.add_bytes("/init", init_script(args, terminal), 0o755);

    let exe = std::env::current_exe().context("find the ktstr executable")?;
    a.add_elf_with_deps(&exe, format!("{KTSTR_DIR}/ktstr"))?;
    a.add_elf_with_deps(crate::run::init_binary()?, format!("{KTSTR_DIR}/ktstr-init"))?;
    for p in &catalog.plugins {
        a.add_elf_in_dir(&p.path, &format!("{KTSTR_DIR}/plugins"))?;
        let binary = p.info.payload.as_ref().and_then(|pl| pl.binary.as_ref());
        if let Some(found) = binary.and_then(|b| locate(b, &p.path).ok()) {
            a.add_elf_in_dir(&found.path, BIN_DIR)?;
        }
    }
    add_kernel_entry(&mut a, kernel)?;
    if args.iter().any(|a| a == "--disk" || a.starts_with("--disk=")) {
        add_mkfs(&mut a)?;
    }
    if with_qemu {
        add_qemu(&mut a)?;
    }
    Ok(a)
}

/// The entry as L1's kernel cache sees it: the 100 MB vmlinux only as its
/// loadable 15 MB (`vmlinux.boot`, which ktstr-vmm boots in L1) and its
/// functions' addresses (`symbols.map`).
fn add_kernel_entry(a: &mut ArchiveSpec, kernel: &KernelEntry) -> Result<()> {
    let key = kernel.key.as_deref().context(
        "the L2 kernel must be a cache entry (`ktstr kernel build`), not a bare bzImage",
    )?;
    let guest = format!("{CACHE_DIR}/kernels/{key}");
    for name in ["bzImage", "config", "metadata.json"] {
        let host = kernel.dir.join(name);
        if host.is_file() {
            a.add_file(&host, format!("{guest}/{name}"), 0o644);
        }
    }
    if let Some(vmlinux) = &kernel.vmlinux {
        let boot = crate::kernel::boot_elf::ensure(&kernel.dir, vmlinux)?;
        a.add_file(&boot, format!("{guest}/{}", crate::kernel::boot_elf::BOOT_ELF), 0o644);
        // So that a guest stopped in L1 says where its vCPUs were by name.
        let map = crate::kernel::symbols::ensure_map(kernel)?;
        a.add_file(&map, format!("{guest}/{}", crate::kernel::symbols::MAP), 0o644);
    }
    for (name, path) in kernel.schedulers() {
        a.add_elf_with_deps(&path, format!("{guest}/schedulers/{name}"))?;
    }
    Ok(())
}

/// The host's mkfs binaries under their own names, for the disk templates
/// that `ktstr run --disk` builds inside L1; those missing here are left out
/// (a run inside L1 that needs one says so).
fn add_mkfs(a: &mut ArchiveSpec) -> Result<()> {
    for fs in Filesystem::ALL {
        let (Some(name), Ok(path)) = (fs.mkfs(), crate::disk::template::mkfs_path(fs)) else {
            continue;
        };
        a.add_elf_with_deps(&path, format!("/usr/sbin/{name}"))?;
    }
    if let Ok(conf) = std::fs::read("/etc/mke2fs.conf") {
        a.add_bytes("/etc/mke2fs.conf", conf, 0o644);
    }
    Ok(())
}

fn add_qemu(a: &mut ArchiveSpec) -> Result<()> {
    let qemu = crate::plugins::find_in_path("qemu-system-x86_64")
        .context("--with-qemu: qemu-system-x86_64 not found (apt-get install qemu-system-x86)")?;
    a.add_elf_with_deps(&qemu, format!("{BIN_DIR}/qemu-system-x86_64"))?;
    for (i, fw) in QEMU_FIRMWARE.iter().enumerate() {
        match HOST_FIRMWARE_DIRS.iter().map(|d| Path::new(d).join(fw)).find(|p| p.is_file()) {
            Some(host) => {
                a.add_file(&host, format!("{QEMU_DATA_DIR}/{fw}"), 0o644);
            }
            None if i == 0 => bail!(
                "--with-qemu: QEMU firmware {fw} not found in {}",
                HOST_FIRMWARE_DIRS.join(" or ")
            ),
            None => tracing::warn!(
                "QEMU firmware {fw} not found: NUMA (q35) guests will not boot with QEMU inside L1"
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("--check=x>=1"), "'--check=x>=1'");
    }

    /// Arguments a shell would otherwise read: the script must stay valid
    /// and show them as given (a `"` once ended the echo's string and L1's
    /// init died with a syntax error, reported as L1 crashing).
    #[test]
    fn any_argument_leaves_the_script_valid_and_is_shown_as_given() {
        let nasty = r#"a "b" (c) $(d) `e` $f \g 'h'; i"#;
        let args = ["shell".to_string(), "--exec".into(), nasty.into()];
        let script = init_script(&args, None);
        let check = std::process::Command::new("sh").args(["-n", "-c", &script]).output().unwrap();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
        let echo = script.lines().find(|l| l.starts_with("echo \"[L1] up")).unwrap();
        let out = std::process::Command::new("sh").args(["-c", echo]).output().unwrap();
        let shown = String::from_utf8(out.stdout).unwrap();
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        assert!(
            shown.trim_end().ends_with(&format!("running: ktstr {}", quoted.join(" "))),
            "{shown}"
        );
    }

    #[test]
    fn the_script_runs_ktstr_with_the_arguments_and_reports_its_exit() {
        let s = init_script(&["run".into(), "--plugin".into(), "work ers".into()], None);
        assert!(s.starts_with("#!/bin/busybox sh\n"));
        assert!(s.contains("/ktstr/ktstr 'run' '--plugin' 'work ers' > $out\n"), "{s}");
        assert!(s.contains("KTSTR-NESTED-EXIT $rc"));
        assert!(s.contains("KTSTR_CACHE_DIR=/cache"));
        let s = init_script(&["shell".into()], Some("xterm"));
        assert!(
            s.contains("TERM='xterm' /ktstr/ktstr on-terminal $tty /ktstr/ktstr 'shell'\n"),
            "{s}"
        );
        assert!(s.contains("sleep 10; echo \"KTSTR-L1-ALIVE $(cut"), "a heartbeat: {s}");
        assert!(s.contains("echo never > /sys/kernel/mm/transparent_hugepage/enabled"), "{s}");
        assert!(s.trim_end().ends_with("poweroff -f"));
    }
}
