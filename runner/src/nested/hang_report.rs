//! What a hung L1, or one its watchdog ends, was doing, read before it is
//! killed: where its vCPUs were, twice a second apart (stuck in one place,
//! or moving), and how much CPU its QEMU used in that second (an emulator
//! spinning, or one idle and waiting). The summary goes into the failure,
//! the whole dump into `l1-hang.txt` beside L1's console.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::kernel::symbols::Symbols;
use crate::kernel::KernelEntry;
use crate::vm::RunningVm;

pub const FILE: &str = "l1-hang.txt";
const APART: Duration = Duration::from_secs(1);

/// Reads the hung VM and writes `FILE` in `dir`; returns one line for the
/// failure message. Never fails: what cannot be read is said.
pub fn take(vm: &mut dyn RunningVm, kernel: &KernelEntry, dir: &Path) -> String {
    let pid = vm.pid();
    let cpu_before = cpu_ticks(pid);
    let t0 = Instant::now();
    let first = vm.vcpus();
    std::thread::sleep(APART);
    let second = vm.vcpus();
    let cpu = cpu_ticks(pid).zip(cpu_before).map(|(after, before)| {
        let secs = t0.elapsed().as_secs_f64();
        100.0 * after.saturating_sub(before) as f64 / clock_ticks_per_sec() / secs
    });
    let (symbols, symbols_note) = match Symbols::for_kernel(kernel) {
        Ok(s) => (Some(s), String::new()),
        Err(e) => (None, format!("addresses unnamed: {e:#}\n")),
    };
    let qemu_line = match cpu {
        Some(pct) => format!("QEMU (pid {pid}) used {pct:.0}% of a CPU in that second"),
        None => format!("QEMU's CPU use (pid {pid}) could not be read"),
    };
    let mut text = format!("{qemu_line}\n{symbols_note}");
    for (label, look) in [("first look", &first), ("a second later", &second)] {
        match look {
            Ok(r) => text.push_str(&format!("\n== {label}\n{}", r.text(symbols.as_ref()))),
            Err(e) => text.push_str(&format!("\n== {label}\nthe vCPUs could not be read: {e:#}\n")),
        }
    }
    let mut summary = vec![qemu_line];
    match (&first, &second) {
        (Ok(a), Ok(b)) => summary.extend(b.lines_since(a, symbols.as_ref())),
        (_, Ok(b)) => summary.extend(b.lines(symbols.as_ref())),
        (_, Err(e)) => summary.push(format!("the vCPUs could not be read: {e:#}")),
    }
    let path = dir.join(FILE);
    summary.push(match std::fs::write(&path, text) {
        Ok(()) => format!("details in {}", path.display()),
        Err(e) => format!("{} could not be written: {e}", path.display()),
    });
    summary.join("; ")
}

/// user + system time of a process, in clock ticks (`/proc/PID/stat`).
fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // Fields after the command name, which may itself hold spaces and ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let (utime, stime) =
        (fields.get(11)?.parse::<u64>().ok()?, fields.get(12)?.parse::<u64>().ok()?);
    Some(utime + stime)
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_is_user_plus_system_whatever_the_command_name() {
        let stat = "4242 (qemu (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(super::parse_cpu_ticks(stat), Some(300));
        assert_eq!(super::parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn our_own_cpu_time_can_be_read() {
        assert!(super::cpu_ticks(std::process::id()).is_some());
    }
}
