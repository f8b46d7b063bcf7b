//! One L1 guest: boot it with QEMU, echo the inner ktstr's progress, end it
//! promptly when its own kernel crashes, and say how it ended.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::liveness::{Hang, Liveness, HEARTBEAT_EVERY, SILENCE_LIMIT, STALL_GRACE};
use super::{archive, hang_report};
use crate::initramfs::write_newc;
use crate::kernel::KernelEntry;
use crate::plugins::Catalog;
use crate::run::progress;
use crate::vm::{QemuEngine, VmEngine, VmSpec};

const POLL: Duration = Duration::from_millis(100);
/// L1's kernel command line. oops=panic: an oops in L1 (its QEMU or KVM)
/// ends it at once (panic=-1 reboots, QEMU's -no-reboot exits) instead of
/// leaving it wedged until the watchdog.
const L1_CMDLINE: &str = "panic=-1 oops=panic softlockup_panic=1 rdinit=/init quiet";
/// How long L1 may take to end by itself once its kernel has reported an
/// oops or panic, before the host stops it.
const CRASH_GRACE: Duration = Duration::from_secs(5);
const EXIT_MARKER: &str = "KTSTR-NESTED-EXIT ";

/// How the end of L1 itself is reported: the emulated host, not what runs
/// inside it, failed (callers may retry on it). Nested SVM under TCG is
/// not flawless: now and then L1 resets or oopses under load.
pub const L1_CRASHED: &str = "the emulated L1 host crashed";

/// What every L1 of one `ktstr nested` shares.
pub struct L1Host<'a> {
    pub engine: QemuEngine,
    pub kernel: &'a KernelEntry,
    pub catalog: &'a Catalog,
    pub with_qemu: bool,
    pub topology: ktstr_core::topology::Topology,
    pub memory_mib: u64,
    pub watchdog: Duration,
    /// `--l1-cmdline`, appended to L1's kernel command line.
    pub extra_cmdline: String,
    /// An interactive shell inside L1: its terminal's socket and TERM.
    pub terminal: Option<(PathBuf, String)>,
}

/// How one L1 ended.
pub struct L1Outcome {
    /// The inner ktstr's exit code, when L1 lived to report it.
    pub code: Option<i32>,
    pub end: End,
    pub stdout: Vec<u8>,
    pub console_log: PathBuf,
}

impl L1Outcome {
    /// Why there is no exit code, in words (an L1 crash starts with `L1_CRASHED`).
    pub fn failure(&self, watchdog: Duration) -> String {
        let console = self.console_log.display();
        let why = match &self.end {
            End::Watchdog { seen } => {
                format!("L1 did not finish within {}s; {seen}", watchdog.as_secs())
            }
            End::Interrupted => return "interrupted".into(),
            End::Hung { hang, seen } => {
                format!("{L1_CRASHED}: it hung ({}); {seen}", hang_cause(hang))
            }
            End::Exited { detail } => exit_cause(&self.console_log, detail.as_deref()),
        };
        format!("{why}; its console: {console}")
    }
}

/// Why L1 hung, in words.
fn hang_cause(hang: &Hang) -> String {
    match hang {
        Hang::Stalled(line) => {
            let grace = STALL_GRACE.as_secs();
            format!("its kernel says `{line}`, and no heartbeat came within {grace}s of that")
        }
        Hang::Silent => {
            let (every, limit) = (HEARTBEAT_EVERY.as_secs(), SILENCE_LIMIT.as_secs());
            format!("no heartbeat, due every {every}s, for {limit}s")
        }
    }
}

/// Why L1 ended before ktstr inside it reported an exit code; `detail` is
/// what its QEMU knows of the end (a triple fault).
fn exit_cause(console_log: &Path, detail: Option<&str>) -> String {
    let text = std::fs::read_to_string(console_log).unwrap_or_default();
    match l1_kernel_crash(&text) {
        // ktstr's own init script ended: our fault, never retried as the emulator's.
        Some(line) if line.contains("Attempted to kill init") => {
            let what =
                "L1's init (ktstr's script) ended before ktstr inside it reported an exit code";
            format!("{what} (`{line}`)")
        }
        Some(line) => format!("{L1_CRASHED}: its kernel says `{line}`"),
        None => match detail {
            Some(d) => format!("{L1_CRASHED}: {d}, before ktstr inside it reported an exit code"),
            None => format!(
                "{L1_CRASHED}: it reset or stopped before ktstr inside it reported an exit code"
            ),
        },
    }
}

impl L1Host<'_> {
    /// Boots one L1 running `ktstr ARGS`, its files in `dir`, and waits for it.
    pub fn run(&self, args: &[String], dir: &Path) -> Result<L1Outcome> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let term = self.terminal.as_ref().map(|(_, term)| term.as_str());
        let spec = archive::l1_archive(args, self.catalog, self.kernel, self.with_qemu, term)?;
        let initramfs = dir.join("l1.cpio");
        write_newc(&spec, &mut std::fs::File::create(&initramfs)?)?;
        let vm = VmSpec {
            kernel: self.kernel.bzimage.clone(),
            vmlinux: None,
            initramfs: vec![initramfs.clone()],
            cmdline: format!("{L1_CMDLINE} {}", self.extra_cmdline).trim_end().into(),
            topology: self.topology.clone(),
            memory_mib: self.memory_mib,
            console_log: dir.join("l1-console.log"),
            data_out: dir.join("l1-stdout"),
            data_fallback_out: dir.join("l1-exit"),
            disks: Vec::new(),
            shell_socket: self.terminal.as_ref().map(|(sock, _)| sock.clone()),
        };
        let ended = self.follow(&vm, dir);
        // The archive is large and rebuilt each time; the rest is evidence.
        let _ = std::fs::remove_file(&initramfs);
        let end = ended?;
        let exit_text = std::fs::read_to_string(&vm.data_fallback_out).unwrap_or_default();
        Ok(L1Outcome {
            code: parse_exit(&exit_text),
            end,
            stdout: std::fs::read(&vm.data_out).unwrap_or_default(),
            console_log: vm.console_log,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// L1's QEMU exited; `detail`: what it knows of why (a triple fault).
    Exited {
        detail: Option<String>,
    },
    /// `seen`: what its vCPUs and its QEMU were doing then.
    Watchdog {
        seen: String,
    },
    Interrupted,
    /// Its heartbeat stopped (see [`Liveness`]); `seen`: what its vCPUs
    /// and its QEMU were doing then (see [`hang_report`]).
    Hung {
        hang: Hang,
        seen: String,
    },
}

impl L1Host<'_> {
    /// Boots L1 and waits for it, echoing the inner ktstr's progress lines.
    fn follow(&self, vm: &VmSpec, dir: &Path) -> Result<End> {
        let watchdog = self.watchdog;
        let mut running = self.engine.boot(vm)?;
        let started = Instant::now();
        let mut console = ConsoleTail::new(started);
        let mut crashed_at: Option<Instant> = None;
        let end = loop {
            console.echo(&vm.console_log);
            if running.try_wait()?.is_some() {
                break End::Exited { detail: running.end_detail() };
            }
            if let (None, Some(line)) = (crashed_at, &console.crash) {
                progress(&format!("L1's own kernel crashed (`{line}`); ending it"));
                crashed_at = Some(Instant::now());
            }
            if crashed_at.is_some_and(|t| t.elapsed() > CRASH_GRACE) {
                running.kill()?;
                break End::Exited { detail: running.end_detail() };
            }
            if crate::interrupt::requested() {
                running.kill()?;
                break End::Interrupted;
            }
            if console.liveness.look_due(Instant::now()) {
                nudge_if_an_interrupt_was_lost(&mut *running);
            }
            if let Some(hang) = console.liveness.hung(Instant::now()) {
                progress(&format!(
                    "L1 hung ({}); reading its vCPUs, then ending it",
                    hang_cause(&hang)
                ));
                let seen = hang_report::take(&mut *running, self.kernel, dir);
                running.kill()?;
                break End::Hung { hang, seen };
            }
            if started.elapsed() > watchdog {
                progress(&format!(
                    "watchdog: L1 still running after {}s; reading its vCPUs, then stopping it",
                    watchdog.as_secs()
                ));
                let seen = hang_report::take(&mut *running, self.kernel, dir);
                running.kill()?;
                break End::Watchdog { seen };
            }
            std::thread::sleep(POLL);
        };
        console.echo(&vm.console_log);
        Ok(end)
    }
}

/// When L1's heartbeats stop, it has either hung for good or waits on an
/// interrupt its emulator never delivered: QEMU 7.2's TCG left an L1 so now
/// and then, a vCPU halted or running user code with the timer and IPIs
/// pending in its local APIC, the other idle too or spinning on an IPI to
/// it (`l1-hang.txt` of such hangs). Seen in two looks a second apart, it
/// is sent an NMI: the emulator delivers an NMI whatever the vCPU does, and
/// the interrupt its handler raises makes it deliver the lost ones. Said
/// loudly (with `LOST_INTERRUPT`), and the heartbeat still decides: if none
/// follows, L1 is ended as hung.
fn nudge_if_an_interrupt_was_lost(vm: &mut dyn crate::vm::RunningVm) {
    let mut look = || vm.vcpus().ok().and_then(|r| r.lost_interrupt());
    if look().is_none() {
        return;
    }
    std::thread::sleep(Duration::from_secs(1));
    let Some(what) = look() else { return };
    match vm.inject_nmi() {
        Ok(()) => progress(&format!("!!! {LOST_INTERRUPT} ({what}); sent it an NMI")),
        Err(e) => progress(&format!("!!! {LOST_INTERRUPT} ({what}); the NMI failed: {e:#}")),
    }
}

/// How a nudged L1 is said (tests count these).
pub const LOST_INTERRUPT: &str = "the emulated L1 host lost an interrupt";

/// Echoes new console lines that come from ktstr inside L1, notes the
/// first line in which L1's own kernel reports a crash, and follows L1's
/// heartbeat.
struct ConsoleTail {
    pos: u64,
    crash: Option<String>,
    liveness: Liveness,
}

impl ConsoleTail {
    fn new(started: Instant) -> ConsoleTail {
        ConsoleTail { pos: 0, crash: None, liveness: Liveness::new(started) }
    }

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
            self.liveness.line(text, Instant::now());
            if FORWARDED.iter().any(|p| text.starts_with(p)) {
                eprintln!("[L1] {}", text.trim_start_matches("[L1] "));
            }
            if self.crash.is_none() {
                self.crash = l1_kernel_crash(text).map(str::to_string);
            }
            line.clear();
        }
    }
}

/// The lines of L1's console that are ktstr's own stderr, echoed on ours:
/// progress, and a refused command line's error with clap's tip.
const FORWARDED: [&str; 5] = ["[ktstr]", "[bench]", "[L1]", "error:", "  tip:"];

/// The first line of an oops or panic of L1's own kernel: a kernel log line
/// (`[  12.345678] …`). What ktstr inside L1 prints (`[bench] …`, `[ktstr]
/// …`, inner consoles copied as `L1-inner: …`) may quote an L2 kernel's
/// panic and does not count.
fn l1_kernel_crash(console: &str) -> Option<&str> {
    console
        .lines()
        .map(str::trim_start)
        .filter(|l| is_kernel_line(l))
        .find(|l| l.contains("Oops:") || l.contains("Kernel panic") || l.contains("BUG: "))
        .map(str::trim)
}

/// Whether `line` starts with a printk timestamp.
pub(super) fn is_kernel_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else { return false };
    rest.split_once(']').is_some_and(|(stamp, _)| stamp.trim().parse::<f64>().is_ok())
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
        // The inner bench quoting an L2 console is not L1 crashing.
        let quoted = "[bench]   console: [    2.71] Kernel panic - not syncing: Fatal\n\
                      [ktstr] [guest] BUG: x\n";
        assert_eq!(super::l1_kernel_crash(quoted), None);
        let own =
            "[ 171.26] Oops: Bad pagetable: ffff [#1] SMP\n[ 171.28] Kernel panic - not syncing\n";
        assert_eq!(
            super::l1_kernel_crash(own),
            Some("[ 171.26] Oops: Bad pagetable: ffff [#1] SMP")
        );
    }

    #[test]
    fn the_end_of_our_own_init_script_is_not_blamed_on_the_emulator() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = |console: &str| {
            let console_log = dir.path().join("l1-console.log");
            std::fs::write(&console_log, console).unwrap();
            super::L1Outcome {
                code: None,
                end: super::End::Exited { detail: None },
                stdout: vec![],
                console_log,
            }
        };
        let watchdog = std::time::Duration::from_secs(1);
        let init = "/init: line 28: syntax error
[    2.10] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000200
";
        let why = outcome(init).failure(watchdog);
        assert!(why.starts_with("L1's init (ktstr's script) ended"), "{why}");
        let oops = "[ 171.26] Oops: Bad pagetable: ffff [#1] SMP\n";
        assert!(outcome(oops).failure(watchdog).starts_with(super::L1_CRASHED));
        // A silent end: what QEMU's CPU log says, when it says anything.
        let silent = outcome("[L1] up 2.0s\n").failure(watchdog);
        assert!(silent.contains("crashed: it reset or stopped before ktstr"), "{silent}");
        let mut triple = outcome("[L1] up 2.0s\n");
        triple.end =
            super::End::Exited { detail: Some("triple fault (in /x/qemu-cpu.log)".into()) };
        let why = triple.failure(watchdog);
        assert!(
            why.starts_with(&format!(
                "{}: triple fault (in /x/qemu-cpu.log), before",
                super::L1_CRASHED
            )),
            "{why}"
        );
    }

    #[test]
    fn a_hang_says_how_it_was_seen() {
        let outcome = |hang: super::Hang| {
            let end = super::End::Hung { hang, seen: "vCPU 0: kernel, halted".into() };
            let console_log = "/tmp/l1-console.log".into();
            let o = super::L1Outcome { code: None, end, stdout: vec![], console_log };
            o.failure(std::time::Duration::from_secs(1))
        };
        let rcu = "[   26.331305] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:";
        let why = outcome(super::Hang::Stalled(rcu.into()));
        assert!(why.starts_with(super::L1_CRASHED), "{why}");
        let said = format!("its kernel says `{rcu}`, and no heartbeat came within 25s");
        assert!(why.contains(&said), "{why}");
        let why = outcome(super::Hang::Silent);
        assert!(
            why.contains("no heartbeat, due every 10s, for 90s); vCPU 0: kernel, halted"),
            "{why}"
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
