//! The CPU topology a test asks for (`NnNlNcNt`), the view the guest should
//! have of it, the view it really has (read from sysfs), and the difference.
//!
//! CPU numbering follows what Linux does in a VM: CPUs are numbered in APIC-id
//! order, which is node → LLC → core → thread order, so
//! `cpu = ((node * L + llc) * C + core) * T + thread`.
//!
//! A leaf crate: ktstr-core re-exports it as `ktstr_core::topology`, and
//! ktstr-vmm uses it without pulling in the rest of ktstr-core.

mod compare;
mod cpulist;
mod machine;
mod model;
mod sysfs;
#[cfg(test)]
mod test_util;

pub use compare::compare;
pub use cpulist::{format_cpulist, parse_cpulist};
pub use machine::{Approximation, Machine, MachineCpu};
pub use model::{Topology, TopologyError, MAX_APIC_ID, MAX_CPUS};
pub use sysfs::{GuestCpu, GuestNode, GuestTopology};
