//! The shared model of ktstr: metrics, checks and plugin loading, used both by
//! the host runner and by the guest init. Knows nothing of KVM or QEMU.

pub mod check;
pub mod extract;
pub mod metrics;
pub mod plugin;
