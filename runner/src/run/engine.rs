//! Choosing the VM engine for `--vmm`, and saying why.

use std::path::Path;

use crate::cli::VmmArg;
use crate::usage::UsageError;
use crate::vm::{Accel, KvmEngine, QemuEngine, VmEngine};

/// Whether `/dev/kvm` can run a full-virtualisation guest here, and if not why.
pub fn kvm_usable() -> Result<(), String> {
    if Path::new("/sys/module/kvm_pvm").exists() {
        return Err("/dev/kvm is served by the emulating PVM hypervisor (kvm_pvm), which cannot \
            run ordinary Linux guests"
            .into());
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
    let kvm = kvm_usable().and_then(|()| KvmEngine::detect().map_err(|e| format!("{e:#}")));
    match (vmm, kvm) {
        (VmmArg::Kvm, Ok(engine)) => {
            let line = format!("{} — asked for with --vmm kvm", engine.describe());
            Ok((Box::new(engine), line))
        }
        (VmmArg::Kvm, Err(why)) => Err(UsageError(format!(
            "--vmm kvm: ktstr's KVM VMM cannot run here: {why}; use --vmm qemu (or auto)"
        ))
        .into()),
        (VmmArg::Auto, Ok(engine)) => {
            let line =
                format!("{} — /dev/kvm runs full-virtualisation guests here", engine.describe());
            Ok((Box::new(engine), line))
        }
        (VmmArg::Qemu | VmmArg::Auto, kvm) => {
            let (accel, why) = match &kvm {
                Ok(_) => (Accel::Kvm, "asked for with --vmm qemu; KVM works here".to_string()),
                Err(e) => (Accel::Tcg, format!("software emulation (TCG): {e}")),
            };
            let engine = QemuEngine::detect(Some(accel))?;
            let line = format!("{} — {why}", engine.describe());
            Ok((Box::new(engine), line))
        }
    }
}
