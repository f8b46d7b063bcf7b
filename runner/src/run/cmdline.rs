//! The guest kernel's command line: what a run needs, then the user's
//! `--kernel-arg`s (e.g. `nohz_full=1`, `sched_ext.slice_bypass_us=…`,
//! `initcall_debug`), refusing those that would take the run apart.

use crate::usage::UsageError;

/// The init ktstr boots, and a panic that ends the VM at once.
pub const BASE: &str = "panic=-1 rdinit=/init";

/// A quiet console while the kernel boots, a full one once the init runs
/// (it restores `ktstr.console_loglevel`): each console byte costs the VM
/// two exits, and the boot's ~16 KB of info lines cost about a second of
/// nested boot (0.6 s alone replaying them when the serial console comes
/// up). Warnings, errors, oopses and panics still reach the console, and
/// the init streams the whole kernel log to the host (`kmsg.log`).
pub const QUIET_BOOT: &str = "loglevel=5 ktstr.console_loglevel=7";
/// Parameters by which the user chooses the console's verbosity: then
/// theirs holds throughout, and ktstr adds no [`QUIET_BOOT`].
const VERBOSITY: [&str; 4] = ["loglevel", "quiet", "debug", "ignore_loglevel"];

/// Parameters ktstr sets itself: another value would break the run.
const RESERVED: [&str; 4] = ["rdinit", "init", "panic", "reboot"];

/// `BASE`, [`QUIET_BOOT`] unless the user chose a verbosity, and the
/// user's arguments, each one word.
pub fn guest_cmdline(extra: &[String]) -> Result<String, UsageError> {
    let mut line = BASE.to_string();
    if !extra.iter().any(|a| VERBOSITY.contains(&a.split('=').next().unwrap_or_default())) {
        line.push(' ');
        line.push_str(QUIET_BOOT);
    }
    for arg in extra {
        if arg.is_empty() || arg.chars().any(char::is_whitespace) {
            return Err(UsageError(format!(
                "--kernel-arg {arg:?}: one parameter per flag, without spaces \
                 (--kernel-arg a=1 --kernel-arg b)"
            )));
        }
        let name = arg.split('=').next().unwrap_or_default();
        if RESERVED.contains(&name) || name.starts_with("ktstr.") {
            return Err(UsageError(format!(
                "--kernel-arg {arg}: ktstr sets `{name}` itself (the guest init and how the VM \
                 ends depend on it)"
            )));
        }
        line.push(' ');
        line.push_str(arg);
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn user_arguments_follow_what_the_run_needs() {
        assert_eq!(guest_cmdline(&[]).unwrap(), format!("{BASE} {QUIET_BOOT}"));
        let line = guest_cmdline(&args(&["nohz_full=1", "initcall_debug"])).unwrap();
        assert_eq!(line, format!("{BASE} {QUIET_BOOT} nohz_full=1 initcall_debug"));
        let line = guest_cmdline(&args(&["loglevel=8"])).unwrap();
        assert_eq!(line, format!("{BASE} loglevel=8"), "the user's verbosity holds");
    }

    #[test]
    fn arguments_that_would_break_the_run_are_refused_by_name() {
        for bad in ["rdinit=/bin/sh", "init=/x", "panic=10", "reboot=t", "ktstr.poweroff=off"] {
            let err = guest_cmdline(&args(&[bad])).unwrap_err().0;
            assert!(err.contains("ktstr sets"), "{bad}: {err}");
        }
        let err = guest_cmdline(&args(&["a=1 b=2"])).unwrap_err().0;
        assert!(err.contains("one parameter per flag"), "{err}");
        assert!(guest_cmdline(&args(&[""])).is_err());
    }
}
