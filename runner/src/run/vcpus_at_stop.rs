//! Where a guest's vCPUs were when the run gave up on it (the watchdog, or
//! a console report the guest did not get past): one line each for the
//! summary and `--json`, named with the kernel's symbols, and `vcpus.txt`
//! in the artifacts with the engine's own dump.

use std::path::Path;

use crate::kernel::symbols::Symbols;
use crate::kernel::KernelEntry;
use crate::vm::vcpus::VcpuReport;

pub const FILE: &str = "vcpus.txt";

/// The lines, after writing `FILE` into `artifacts`; the addresses named
/// with `kernel`'s symbols when it has them.
pub fn record(
    seen: &Result<VcpuReport, String>,
    kernel: &KernelEntry,
    artifacts: &Path,
) -> Vec<String> {
    let symbols = match Symbols::for_kernel(kernel) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("vCPU addresses stay unnamed: {e:#}");
            None
        }
    };
    record_with(seen, symbols.as_ref(), artifacts)
}

fn record_with(
    seen: &Result<VcpuReport, String>,
    symbols: Option<&Symbols>,
    artifacts: &Path,
) -> Vec<String> {
    let report = match seen {
        Ok(r) => r,
        Err(e) => return vec![format!("could not be read: {e}")],
    };
    if let Err(e) = std::fs::write(artifacts.join(FILE), report.text(symbols)) {
        tracing::warn!("could not write {}: {e}", artifacts.join(FILE).display());
    }
    report.lines(symbols)
}

#[cfg(test)]
mod tests {
    use crate::vm::vcpus::{Vcpu, VcpuReport};

    #[test]
    fn the_lines_are_returned_and_kept_with_the_engines_dump() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vcpu { index: 0, rip: 0x1234, cpl: 3, ..Vcpu::default() };
        let seen = Ok(VcpuReport { vcpus: vec![v], raw: "RIP=0000000000001234".into() });
        let lines = super::record_with(&seen, None, dir.path());
        assert_eq!(lines, ["vCPU 0: user, running, at 0x1234"]);
        let kept = std::fs::read_to_string(dir.path().join(super::FILE)).unwrap();
        assert!(kept.contains("vCPU 0: user") && kept.contains("RIP=0000000000001234"), "{kept}");
        let failed = super::record_with(&Err("the VM has ended".into()), None, dir.path());
        assert_eq!(failed, ["could not be read: the VM has ended"]);
    }
}
