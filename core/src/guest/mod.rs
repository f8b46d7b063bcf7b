//! `ktstr-init`, PID 1 of the guest: mount, read the plan, start the
//! scheduler, run the payload in its cgroup while watching the scheduler,
//! extract, check, report over the data channel, and always power off.
//!
//! The init stays single-threaded so that forking the payload is safe.

mod channel;
mod kmsg;
mod mounts;
mod payload;
mod run;
mod sched_ext;
mod scheduler;

use std::time::Duration;

pub use channel::Channel;

/// Runs the whole guest side and powers off; never returns.
pub fn main() -> ! {
    if let Err(e) = mounts::mount_all() {
        eprintln!("ktstr-init: mounting failed: {e:#}");
    }
    let mut channel = Channel::open();
    let init_error = match run::run(&mut channel) {
        Ok(()) => None,
        Err(e) => {
            eprintln!("ktstr-init: {e:#}");
            Some(format!("{e:#}"))
        }
    };
    channel.send(&crate::protocol::Message::Finish(crate::protocol::Finish { init_error }));
    power_off()
}

/// Powers the VM off; if that fails, idles until the host watchdog ends it.
pub fn power_off() -> ! {
    nix::unistd::sync();
    let err = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF).err();
    eprintln!("ktstr-init: power off failed ({err:?}); waiting for the host watchdog");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
