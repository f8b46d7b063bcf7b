//! The shared model of ktstr: metrics, checks, plugin loading, the run plan,
//! the wire protocol and the guest init. Knows nothing of KVM or QEMU.

pub mod check;
pub mod disk;
pub mod extract;
pub mod guest;
pub mod metrics;
pub mod plan;
pub mod plugin;
pub mod protocol;
pub mod scenario;
pub mod work;

/// The topology model lives in its own leaf crate (ktstr-vmm uses it too).
pub use ktstr_topology as topology;
