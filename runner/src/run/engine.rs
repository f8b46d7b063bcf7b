//! Choosing the VM engine for `--vmm`, and saying why.

use std::path::Path;

use crate::cli::VmmArg;
use crate::usage::UsageError;
use crate::vm::{Accel, QemuEngine, VmEngine};

/// Whether `/dev/kvm` can run a full-virtualisation guest here, and if not why.
pub fn kvm_usable() -> Result<(), String> {
    if Path::new("/sys/module/kvm_pvm").exists() {
        return Err("/dev/kvm is served by the emulating PVM hypervisor (kvm_pvm), which cannot run ordinary Linux guests".into());
    }
    match std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("/dev/kvm does not exist".into()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err("no permission to open /dev/kvm (add yourself to the `kvm` group)".into())
        }
        Err(e) => Err(format!("cannot open /dev/kvm: {e}")),
    }
}

/// The engine for `--vmm`, with a line saying which and why.
pub fn select(vmm: VmmArg) -> anyhow::Result<(Box<dyn VmEngine>, String)> {
    let kvm = kvm_usable();
    match vmm {
        VmmArg::Kvm => Err(UsageError(
            "--vmm kvm: ktstr's own KVM VMM is not part of this build yet; use --vmm qemu (or auto)".into(),
        )
        .into()),
        VmmArg::Qemu | VmmArg::Auto => {
            let (accel, why) = match &kvm {
                Ok(()) => (Accel::Kvm, "KVM works here".to_string()),
                Err(e) => (Accel::Tcg, format!("software emulation (TCG): {e}")),
            };
            let engine = QemuEngine::detect(Some(accel))?;
            let line = format!("{} — {why}", engine.describe());
            Ok((Box::new(engine), line))
        }
    }
}
