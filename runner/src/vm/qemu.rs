//! The QEMU engine: finds `qemu-system-x86_64`, spawns it for a `VmSpec`
//! (arguments from `qemu_args`), and guarantees it never outlives ktstr.

use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub use super::qemu_args::Accel;
use super::qemu_args::{self, QemuConfig, TcgTiming};
use super::qemu_vcpus;
use super::vcpus::VcpuReport;
use super::{RunningVm, VmEngine, VmExit, VmSpec};

const BINARY: &str = "qemu-system-x86_64";

/// QEMU rejects bad options within milliseconds; waiting this long at boot
/// turns that into an error that carries QEMU's own message.
const EARLY_EXIT_WINDOW: Duration = Duration::from_millis(300);

/// QEMU's monitor socket, in a directory of its own under /tmp (a run's
/// directory can be deeper than a socket path may be long).
const QMP_SOCKET: &str = "qmp.sock";
/// A QEMU whose main loop is stuck does not answer its monitor; that is
/// evidence too, and must not hold up the report.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub struct QemuEngine {
    binary: PathBuf,
    accel: Accel,
    version: String,
    /// The host TSC rate, when the guest can trust it (TCG only).
    tsc_khz: Option<u64>,
    /// Whether guests get SVM/VMX (see `QemuConfig::virtualization`).
    virtualization: bool,
}

impl QemuEngine {
    /// Finds QEMU (`KTSTR_QEMU` overrides the PATH search). TCG unless KVM is asked for.
    pub fn detect(accel: Option<Accel>) -> anyhow::Result<QemuEngine> {
        let accel = accel.unwrap_or(Accel::Tcg);
        let binary = match std::env::var_os("KTSTR_QEMU") {
            Some(p) => {
                let p = PathBuf::from(p);
                if !p.is_file() {
                    bail!("KTSTR_QEMU={} is not a file", p.display());
                }
                p
            }
            None => crate::plugins::find_in_path(BINARY).with_context(|| {
                format!(
                    "{BINARY} not found in PATH: install it (`apt-get install \
                    qemu-system-x86`) or point KTSTR_QEMU at it"
                )
            })?,
        };
        let out = Command::new(&binary)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {} --version", binary.display()))?;
        if !out.status.success() {
            bail!(
                "{} --version failed: {}",
                binary.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let version = parse_version(&String::from_utf8_lossy(&out.stdout))
            .unwrap_or_else(|| "(unknown version)".into());
        let tsc_khz = if accel == Accel::Tcg { host_tsc_khz() } else { None };
        Ok(QemuEngine { binary, accel, version, tsc_khz, virtualization: false })
    }

    /// Guests of this engine may host VMs themselves (SVM/VMX exposed).
    pub fn with_virtualization(mut self) -> QemuEngine {
        self.virtualization = true;
        self
    }

    fn config(&self, spec: &VmSpec) -> QemuConfig {
        let timing = self.tsc_khz.map(|tsc_khz| TcgTiming { tsc_khz, hz: kernel_hz(&spec.kernel) });
        QemuConfig { accel: self.accel, timing, virtualization: self.virtualization }
    }
}

impl VmEngine for QemuEngine {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn describe(&self) -> String {
        format!("qemu {} ({})", self.version, self.accel.name())
    }

    fn boot(&self, spec: &VmSpec) -> anyhow::Result<Box<dyn RunningVm>> {
        spec.check_files()?;
        // QEMU takes one -initrd file: several parts are joined into a
        // temporary one, kept until the VM is gone (ktstr-vmm loads parts
        // straight into guest memory instead).
        let joined = match spec.initramfs.as_slice() {
            [_] => None,
            parts => {
                // Beside the last part (a run's plan, in its scratch directory).
                let mut b = tempfile::Builder::new();
                b.prefix("initramfs-joined-");
                let beside = parts.last().and_then(|p| p.parent());
                let tmp = match beside.map(|d| b.tempfile_in(d)) {
                    Some(Ok(t)) => t,
                    _ => b.tempfile()?,
                };
                let parts: Vec<&std::path::Path> = parts.iter().map(|p| p.as_path()).collect();
                crate::initramfs::concat(&parts, tmp.path())?;
                Some(tmp.into_temp_path())
            }
        };
        let mut one = spec.clone();
        if let Some(j) = &joined {
            one.initramfs = vec![j.to_path_buf()];
        }
        let mut args = qemu_args::build(&self.config(spec), &one)?;
        let monitor = tempfile::Builder::new().prefix("ktstr-qmp-").tempdir()?;
        let socket = monitor.path().join(QMP_SOCKET);
        args.extend([
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", qemu_args::path_str(&socket)?),
        ]);
        let stderr_path = spec.console_log.with_file_name("qemu.stderr");
        let stderr = File::create(&stderr_path)
            .with_context(|| format!("create {}", stderr_path.display()))?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(&args).stdin(Stdio::null()).stdout(stderr.try_clone()?).stderr(stderr);
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // The kernel kills QEMU when the thread that forked it dies,
                // so ktstr must spawn from a thread that lives as long as the VM.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // ktstr died before prctl took effect: nobody would kill us.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("start {}", self.binary.display()))?;
        tracing::debug!("qemu pid {}: {} {}", child.id(), self.binary.display(), args.join(" "));
        let cpu_log = qemu_args::cpu_log(spec);
        let mut vm = RunningQemu { child, exit: None, _initrd: joined, monitor, cpu_log };
        let started = Instant::now();
        while started.elapsed() < EARLY_EXIT_WINDOW {
            if let Some(VmExit::Exited { code, signal }) = vm.try_wait()? {
                if code != Some(0) {
                    let tail = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    bail!(
                        "QEMU exited at once (code {code:?}, signal {signal:?}): {}",
                        tail.trim()
                    );
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Box::new(vm))
    }
}

struct RunningQemu {
    child: Child,
    exit: Option<VmExit>,
    /// A joined initramfs, deleted with the VM.
    _initrd: Option<tempfile::TempPath>,
    /// Holds the QMP socket.
    monitor: tempfile::TempDir,
    cpu_log: PathBuf,
}

impl RunningVm for RunningQemu {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn try_wait(&mut self) -> anyhow::Result<Option<VmExit>> {
        if self.exit.is_none() {
            if let Some(status) = self.child.try_wait().context("wait for QEMU")? {
                self.exit = Some(VmExit::Exited { code: status.code(), signal: status.signal() });
            }
        }
        Ok(self.exit)
    }

    fn kill(&mut self) -> anyhow::Result<()> {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        // Fails only if it already exited, which wait() below picks up.
        let _ = self.child.kill();
        let status = self.child.wait().context("reap QEMU")?;
        self.exit = Some(VmExit::Exited { code: status.code(), signal: status.signal() });
        Ok(())
    }

    fn end_detail(&self) -> Option<String> {
        let log = std::fs::read_to_string(&self.cpu_log).unwrap_or_default();
        triple_fault(&log).then(|| format!("triple fault (in {})", self.cpu_log.display()))
    }

    fn vcpus(&mut self) -> anyhow::Result<VcpuReport> {
        qemu_vcpus::read(&self.monitor.path().join(QMP_SOCKET), MONITOR_TIMEOUT)
    }

    fn inject_nmi(&mut self) -> anyhow::Result<()> {
        let socket = self.monitor.path().join(QMP_SOCKET);
        super::qmp::Monitor::connect(&socket, MONITOR_TIMEOUT)?.inject_nmi()
    }
}

/// Whether QEMU's CPU log (`-d cpu_reset`) records a triple fault: a vCPU
/// whose exception handling itself faulted twice, which resets the machine.
/// Inside an L1's own guest that is an exit to L1, not logged here.
fn triple_fault(cpu_log: &str) -> bool {
    cpu_log.lines().any(|l| l.trim() == "Triple fault")
}

impl Drop for RunningQemu {
    fn drop(&mut self) {
        if let Err(e) = self.kill() {
            tracing::warn!("could not kill QEMU (pid {}): {e:#}", self.child.id());
        }
    }
}

/// "QEMU emulator version 7.2.22 (Debian …)" → "7.2.22".
fn parse_version(out: &str) -> Option<String> {
    let rest = out.lines().next()?.split("version ").nth(1)?;
    Some(rest.split_whitespace().next()?.to_string())
}

/// CONFIG_HZ from the `config` that ktstr's kernel cache keeps beside bzImage.
fn kernel_hz(kernel: &Path) -> Option<u32> {
    let config = std::fs::read_to_string(kernel.parent()?.join("config")).ok()?;
    config.lines().find_map(|l| l.strip_prefix("CONFIG_HZ="))?.trim().parse().ok()
}

/// The host TSC rate in kHz, measured, when the host itself trusts its TSC
/// (clocksource `tsc`): under TCG the guest's RDTSC returns the host's.
#[cfg(target_arch = "x86_64")]
fn host_tsc_khz() -> Option<u64> {
    let cs =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .ok()?;
    if cs.trim() != "tsc" {
        return None;
    }
    // SAFETY: RDTSC has no preconditions on x86_64.
    let tsc = || unsafe { core::arch::x86_64::_rdtsc() };
    let (t0, c0) = (Instant::now(), tsc());
    std::thread::sleep(Duration::from_millis(20));
    let (c1, t1) = (tsc(), Instant::now());
    let nanos = t1.duration_since(t0).as_nanos() as u64;
    let khz = c1.checked_sub(c0)?.checked_mul(1_000_000)? / nanos.max(1);
    (khz > 0).then_some(khz)
}

#[cfg(not(target_arch = "x86_64"))]
fn host_tsc_khz() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line() {
        let out = "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright …\n";
        assert_eq!(parse_version(out).as_deref(), Some("7.2.22"));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn hz_from_the_cached_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config"), "CONFIG_HZ_250=y\nCONFIG_HZ=250\n").unwrap();
        assert_eq!(kernel_hz(&dir.path().join("bzImage")), Some(250));
        assert_eq!(kernel_hz(Path::new("/nonexistent/bzImage")), None);
    }

    /// An engine whose "QEMU" is a shell script, with a spec of dummy files.
    fn fake(dir: &Path, script: &str) -> (QemuEngine, VmSpec) {
        use std::os::unix::fs::PermissionsExt;
        let binary = dir.join("fake-qemu");
        std::fs::write(&binary, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        for f in ["bzImage", "initrd"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let engine = QemuEngine {
            binary,
            accel: Accel::Tcg,
            version: "0".into(),
            tsc_khz: None,
            virtualization: false,
        };
        let spec = VmSpec {
            kernel: dir.join("bzImage"),
            vmlinux: None,
            initramfs: vec![dir.join("initrd")],
            cmdline: String::new(),
            topology: "1n1l1c1t".parse().unwrap(),
            memory_mib: 256,
            console_log: dir.join("console.log"),
            data_out: dir.join("data.bin"),
            data_fallback_out: dir.join("com2.bin"),
            disks: Vec::new(),
            shell_socket: None,
        };
        (engine, spec)
    }

    fn alive(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn kill_reaps_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, spec) = fake(dir.path(), "exec sleep 1000");
        let mut vm = engine.boot(&spec).unwrap();
        let pid = vm.pid();
        assert!(alive(pid));
        assert_eq!(vm.try_wait().unwrap(), None);
        vm.kill().unwrap();
        assert!(!alive(pid), "pid {pid} survived kill()");
        let exit = Some(VmExit::Exited { code: None, signal: Some(libc::SIGKILL) });
        assert_eq!(vm.try_wait().unwrap(), exit);
        vm.kill().unwrap();
        assert_eq!(vm.try_wait().unwrap(), exit);
    }

    #[test]
    fn several_initramfs_parts_reach_qemu_as_one_file_removed_with_the_vm() {
        let dir = tempfile::tempdir().unwrap();
        // The fake QEMU copies what -initrd names, and remembers its path.
        let script = format!(
            "while [ \"$1\" != -initrd ]; do shift; done; cat \"$2\" > {0}/seen; \
             echo \"$2\" > {0}/path; exec sleep 1000",
            dir.path().display()
        );
        let (engine, mut spec) = fake(dir.path(), &script);
        std::fs::write(dir.path().join("base"), b"AAAA").unwrap();
        std::fs::write(dir.path().join("plan"), b"BBBB").unwrap();
        spec.initramfs = vec![dir.path().join("base"), dir.path().join("plan")];
        let mut vm = engine.boot(&spec).unwrap();
        let seen = dir.path().join("seen");
        for _ in 0..500 {
            if std::fs::read(&seen).is_ok_and(|b| b.len() == 8) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(std::fs::read(&seen).unwrap(), b"AAAABBBB");
        let joined = std::fs::read_to_string(dir.path().join("path")).unwrap();
        assert!(Path::new(joined.trim()).exists());
        assert_eq!(Path::new(joined.trim()).parent(), Some(dir.path()), "beside the parts");
        vm.kill().unwrap();
        drop(vm);
        assert!(!Path::new(joined.trim()).exists(), "the joined file goes with the VM");
    }

    #[test]
    fn drop_kills() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, spec) = fake(dir.path(), "exec sleep 1000");
        let vm = engine.boot(&spec).unwrap();
        let pid = vm.pid();
        drop(vm);
        assert!(!alive(pid), "pid {pid} survived drop");
    }

    #[test]
    fn early_failure_carries_qemu_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, spec) = fake(dir.path(), "echo 'qemu: bad option' >&2; exit 1");
        let err = format!("{:#}", engine.boot(&spec).err().expect("boot must fail"));
        assert!(err.contains("qemu: bad option") && err.contains("Some(1)"), "{err}");
        let (engine, mut spec) = fake(dir.path(), "exit 0");
        spec.kernel = dir.path().join("missing");
        let err = format!("{:#}", engine.boot(&spec).err().expect("boot must fail"));
        assert!(err.contains("kernel") && err.contains("does not exist"), "{err}");
    }

    #[test]
    fn host_tsc_rate_is_plausible() {
        if let Some(khz) = host_tsc_khz() {
            assert!((100_000..20_000_000).contains(&khz), "{khz} kHz");
        }
    }
}

#[cfg(test)]
#[path = "qemu_boot_tests.rs"]
mod boot_tests;
