//! `ktstr-init`, PID 1 of the guest: mount, read the plan, start the
//! scheduler, run the payload in its cgroup while watching the scheduler,
//! extract, check, report over the data channel, and always power off.
//!
//! The init stays single-threaded whenever it forks, so that forking the
//! payload is safe (contained plugin calls join their helper threads).

pub(crate) mod channel;
mod disks;
mod kmsg;
pub mod monitor;
pub(crate) mod mounts;
mod out_files;
mod overseer;
mod payload;
pub use payload::{run_on_terminal, CAPTURE_CAP};
mod run;
pub mod scenario;
mod sched_ext;
mod scheduler;
mod stream;

use std::time::Duration;

pub use channel::Channel;

/// Runs the whole guest side and powers off; never returns.
pub fn main() -> ! {
    let started = since_boot();
    install_panic_hook();
    if let Err(e) = mounts::mount_all() {
        eprintln!("ktstr-init: mounting failed: {e:#}");
    }
    restore_console_loglevel();
    let observer = observe_from_above();
    let mut channel = Channel::open();
    if let Err(e) = observer {
        channel.log(format!("the init stays SCHED_OTHER ({e}): a scheduler can starve it"));
    }
    let init_error = match run::run(&mut channel, started) {
        Ok(()) => None,
        Err(e) => {
            eprintln!("ktstr-init: {e:#}");
            Some(format!("{e:#}"))
        }
    };
    channel.send(&crate::protocol::Message::Finish(crate::protocol::Finish { init_error }));
    power_off()
}

/// The init watches the scheduler under test, so that scheduler must not be
/// able to starve it: SCHED_FIFO (sched_ext and EEVDF only schedule
/// SCHED_OTHER tasks), with SCHED_RESET_ON_FORK so that the scheduler, the
/// payload and every other child start as ordinary tasks. It sleeps in poll
/// between its ~100 ms ticks; RT throttling bounds it anyway.
fn observe_from_above() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: plain syscall on ourselves with a valid parameter struct.
    let rc = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Seconds since the kernel started (CLOCK_BOOTTIME: no /proc needed).
pub fn since_boot() -> f64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

/// PID 1 must not die: a panic in the init goes to the console and, as the
/// init's error, to the host, then the VM powers off. Forked children (the
/// payload, workers) keep the default hook: their panic is theirs.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::process::id() != 1 {
            return default(info);
        }
        let text = format!("the init panicked: {info}");
        eprintln!("ktstr-init: {text}");
        let finish = crate::protocol::Finish { init_error: Some(text) };
        channel::send_last_word(&crate::protocol::Message::Finish(finish));
        power_off()
    }));
}

/// The kernel command line word that asks for a reset instead of a power-off:
/// VMMs without ACPI power management (ktstr's own) see the reset (`reboot=k`).
pub const RESET_TO_EXIT: &str = "ktstr.poweroff=reboot";

/// Powers the VM off (or resets it, see [`RESET_TO_EXIT`]); if that fails,
/// idles until the host watchdog ends it.
pub fn power_off() -> ! {
    use nix::sys::reboot::{reboot, RebootMode};
    nix::unistd::sync();
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mode =
        if wants_reset(&cmdline) { RebootMode::RB_AUTOBOOT } else { RebootMode::RB_POWER_OFF };
    let err = reboot(mode).err();
    eprintln!("ktstr-init: {mode:?} failed ({err:?}); waiting for the host watchdog");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// The host quiets the console while the kernel boots (`loglevel=`) and
/// asks for it back here (`ktstr.console_loglevel=N`): from now on the
/// console shows what the run does (sched_ext, stalls) as it happens.
fn restore_console_loglevel() {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let level = cmdline.split_whitespace().find_map(|w| w.strip_prefix("ktstr.console_loglevel="));
    if let Some(level) = level.filter(|l| l.parse::<u8>().is_ok()) {
        if let Err(e) = std::fs::write("/proc/sys/kernel/printk", level) {
            eprintln!("ktstr-init: could not restore the console's log level: {e}");
        }
    }
}

fn wants_reset(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|w| w == RESET_TO_EXIT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reset_is_asked_for_by_a_whole_word() {
        assert!(super::wants_reset("console=ttyS0 ktstr.poweroff=reboot reboot=k"));
        assert!(!super::wants_reset("console=ttyS0 xktstr.poweroff=rebootx"));
        assert!(!super::wants_reset(""));
    }
}
