//! `ktstr nested -- ARGS`: runs `ktstr ARGS` inside an L1 guest booted with
//! QEMU (TCG where KVM does not work here). The L1 kernel has KVM built in,
//! and TCG's `-cpu max` exposes SVM, so L1 has a real `/dev/kvm`: this is how
//! ktstr's own KVM VMM is exercised on machines without usable KVM.

mod archive;

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cli::NestedArgs;
use crate::initramfs::write_newc;
use crate::plugins::Discovery;
use crate::run::{parse_memory, progress};
use crate::usage::UsageError;
use crate::vm::{Accel, QemuEngine, VmEngine, VmSpec};

const POLL: Duration = Duration::from_millis(100);
const EXIT_MARKER: &str = "KTSTR-NESTED-EXIT ";

pub fn execute(args: &NestedArgs, discovery: &Discovery) -> Result<i32> {
    if args.args.is_empty() {
        return Err(UsageError("ktstr nested needs the ktstr arguments to run in L1, after `--` (e.g. `ktstr nested -- run --vmm kvm --plugin workers`)".into()).into());
    }
    if args.args.first().is_some_and(|a| a == "nested") {
        return Err(UsageError("ktstr nested cannot run `nested` inside L1".into()).into());
    }
    let memory_mib = parse_memory(&args.memory).map_err(UsageError)?;
    let topology = format!("1n1l{}c1t", args.cpus)
        .parse()
        .map_err(|e| UsageError(format!("--cpus {}: {e}", args.cpus)))?;
    crate::interrupt::install();
    let catalog = discovery.scan();
    let kernel = crate::kernel::resolve(args.kernel.as_deref())?;
    // -cpu max under TCG is what exposes SVM+NPT; with working KVM, -cpu host
    // exposes the host's own nested virtualisation.
    let accel = if crate::run::kvm_usable().is_ok() { Accel::Kvm } else { Accel::Tcg };
    let engine = QemuEngine::detect(Some(accel))?.with_virtualization();

    let work = tempfile::Builder::new()
        .prefix("ktstr-nested-")
        .tempdir()
        .context("create a temporary directory")?;
    let artifacts = match &args.artifacts {
        Some(d) => d.clone(),
        None => work.path().to_path_buf(),
    };
    std::fs::create_dir_all(&artifacts)
        .with_context(|| format!("create {}", artifacts.display()))?;
    progress(&format!(
        "packing L1: ktstr, {} plugins, kernel {}{}",
        catalog.plugins.len(),
        kernel.version,
        if args.with_qemu { ", QEMU" } else { "" }
    ));
    let spec = archive::l1_archive(&args.args, &catalog, &kernel, args.with_qemu)?;
    let initramfs = work.path().join("l1.cpio");
    write_newc(&spec, &mut std::fs::File::create(&initramfs)?)?;
    let initramfs_path = initramfs.clone();

    let vm = VmSpec {
        kernel: kernel.bzimage.clone(),
        initramfs,
        cmdline: "panic=-1 rdinit=/init quiet".into(),
        topology,
        memory_mib,
        console_log: artifacts.join("l1-console.log"),
        data_out: artifacts.join("l1-stdout"),
        data_fallback_out: artifacts.join("l1-exit"),
    };
    progress(&format!(
        "booting L1 with {} ({} CPUs, {} MiB); watchdog {}s",
        engine.describe(),
        args.cpus,
        memory_mib,
        args.watchdog
    ));
    let ended = follow(&engine, &vm, Duration::from_secs(args.watchdog))?;

    let stdout = std::fs::read(&vm.data_out).unwrap_or_default();
    std::io::stdout().write_all(&stdout)?;
    std::io::stdout().flush()?;
    let exit_text = std::fs::read_to_string(&vm.data_fallback_out).unwrap_or_default();
    let code = parse_exit(&exit_text);
    if code != Some(0) && args.artifacts.is_none() {
        // Keep the evidence of a failure: the L1 console holds the inner run's.
        let _ = std::fs::remove_file(&initramfs_path);
        let kept = work.keep();
        progress(&format!("L1 console and outputs kept in {}", kept.display()));
    }
    match (ended, code) {
        (_, Some(code)) => Ok(code),
        (End::Watchdog, None) => bail!("L1 did not finish within {}s; its console: {}", args.watchdog, vm.console_log.display()),
        (End::Interrupted, None) => bail!("interrupted"),
        (End::Exited, None) => match l1_kernel_crash(&std::fs::read_to_string(&vm.console_log).unwrap_or_default()) {
            Some(line) => bail!("{L1_CRASHED}: its kernel says `{line}`; its console: {}", vm.console_log.display()),
            None => bail!(
                "{L1_CRASHED}: it reset or stopped before ktstr inside it reported an exit code; its console: {}",
                vm.console_log.display()
            ),
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Exited,
    Watchdog,
    Interrupted,
}

/// Boots L1 and waits for it, echoing the inner ktstr's progress lines.
fn follow(engine: &QemuEngine, vm: &VmSpec, watchdog: Duration) -> Result<End> {
    let mut running = engine.boot(vm)?;
    let started = Instant::now();
    let mut console = ConsoleTail::default();
    let end = loop {
        console.echo(&vm.console_log);
        if running.try_wait()?.is_some() {
            break End::Exited;
        }
        if crate::interrupt::requested() {
            running.kill()?;
            break End::Interrupted;
        }
        if started.elapsed() > watchdog {
            progress(&format!(
                "watchdog: L1 still running after {}s; stopping it",
                watchdog.as_secs()
            ));
            running.kill()?;
            break End::Watchdog;
        }
        std::thread::sleep(POLL);
    };
    console.echo(&vm.console_log);
    Ok(end)
}

/// Echoes new console lines that come from ktstr inside L1.
#[derive(Default)]
struct ConsoleTail {
    pos: u64,
}

impl ConsoleTail {
    fn echo(&mut self, path: &Path) {
        let Ok(f) = std::fs::File::open(path) else { return };
        let mut reader = std::io::BufReader::new(f);
        if std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(self.pos)).is_err() {
            return;
        }
        let mut line = Vec::new();
        // Whole lines only: a partial last line is read again next time.
        while let Ok(n) = reader.read_until(b'\n', &mut line) {
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            self.pos += n as u64;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if ["[ktstr]", "[bench]", "[L1]", "error:"].iter().any(|p| text.starts_with(p)) {
                eprintln!("[L1] {}", text.trim_start_matches("[L1] "));
            }
            line.clear();
        }
    }
}

/// How the end of L1 itself is reported: the emulated host, not what runs
/// inside it, failed (callers may retry on it). Nested SVM under TCG is
/// not flawless: now and then L1 resets or oopses under load.
pub const L1_CRASHED: &str = "the emulated L1 host crashed";

/// The first line of an oops or panic of L1's own kernel (inner consoles
/// copied to L1's are prefixed and do not count).
fn l1_kernel_crash(console: &str) -> Option<&str> {
    console
        .lines()
        .filter(|l| !l.starts_with("L1-inner: "))
        .find(|l| l.contains("Oops:") || l.contains("Kernel panic") || l.contains("BUG: "))
        .map(str::trim)
}

/// `KTSTR-NESTED-EXIT 3\r\n` → 3.
fn parse_exit(text: &str) -> Option<i32> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(EXIT_MARKER.trim_end()))
        .and_then(|c| c.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn crashes_of_l1_itself_are_told_apart_from_the_inner_console() {
        let inner = "L1-inner: [ 1.0] Kernel panic - not syncing: x\n[L1] up\n";
        assert_eq!(super::l1_kernel_crash(inner), None);
        let own =
            "[ 171.26] Oops: Bad pagetable: ffff [#1] SMP\n[ 171.28] Kernel panic - not syncing\n";
        assert_eq!(
            super::l1_kernel_crash(own),
            Some("[ 171.26] Oops: Bad pagetable: ffff [#1] SMP")
        );
    }

    #[test]
    fn exit_codes_are_read_from_the_marker() {
        assert_eq!(super::parse_exit("KTSTR-NESTED-EXIT 0\r\n"), Some(0));
        assert_eq!(super::parse_exit("noise\nKTSTR-NESTED-EXIT 3\n"), Some(3));
        assert_eq!(super::parse_exit(""), None);
        assert_eq!(super::parse_exit("KTSTR-NESTED-EXIT x"), None);
    }
}
