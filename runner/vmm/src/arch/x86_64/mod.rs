//! x86_64 guest setup: memory layout, boot protocol, CPU state, CPUID, ACPI
//! and MP tables.

pub mod acpi;
pub mod aml;
pub mod boot;
pub mod cpuid;
pub mod kernel;
pub mod layout;
pub mod mptable;
pub mod regs;
pub mod topo;
pub mod xsave;
