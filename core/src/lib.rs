//! The shared model of ktstr: metrics, checks, plugin loading, the run plan,
//! the wire protocol and the guest init. Knows nothing of KVM or QEMU.

pub mod check;
pub mod extract;
pub mod guest;
pub mod metrics;
pub mod plan;
pub mod plugin;
pub mod protocol;
pub mod scenario;
pub mod topology;
pub mod work;
