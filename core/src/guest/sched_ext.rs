//! The kernel's sched_ext status in sysfs.

pub const STATE: &str = "/sys/kernel/sched_ext/state";
pub const OPS: &str = "/sys/kernel/sched_ext/root/ops";

/// `enabled`, `disabled`, … or `missing` when the kernel has no sched_ext.
pub fn state() -> String {
    read(STATE).unwrap_or_else(|| "missing".into())
}

/// The ops name of the loaded scheduler, or empty.
pub fn ops() -> String {
    read(OPS).unwrap_or_default()
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}
