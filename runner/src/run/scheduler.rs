//! Which launcher starts the scheduler the user asked for, and where the
//! binary it names is.

use std::path::PathBuf;

use ktstr_core::plugin::{Kind, LaunchSpec, PluginRef};

use crate::kernel::KernelEntry;
use crate::plugins::Catalog;
use crate::usage::UsageError;

/// A scheduler plugin of that exact name (e.g. `eevdf`), else the first
/// launcher that accepts any binary (`scx`), and what it says to start.
pub fn launcher<'c>(
    requested: &str,
    catalog: &'c Catalog,
) -> anyhow::Result<(&'c PluginRef, LaunchSpec)> {
    let exact = catalog
        .find(Kind::Scheduler, requested)
        .filter(|p| !p.info.scheduler.as_ref().is_some_and(|s| s.accepts_any_binary));
    let launcher = match exact {
        Some(p) => p,
        None => catalog
            .plugins
            .iter()
            .find(|p| p.info.scheduler.as_ref().is_some_and(|s| s.accepts_any_binary))
            .ok_or_else(|| {
                UsageError(format!(
                    "no scheduler plugin named `{requested}` and no \
                launcher for arbitrary sched_ext binaries (is the `scx` plugin installed?)"
                ))
            })?,
    };
    let spec = launcher
        .launch(requested)
        .map_err(|e| UsageError(format!("scheduler `{requested}`: {e}")))?;
    Ok((launcher, spec))
}

/// The binary `spec` names, found: a path, else in the kernel cache entry,
/// else on PATH; `None` for a scheduler built into the kernel.
pub fn binary(spec: &LaunchSpec, kernel: &KernelEntry) -> anyhow::Result<Option<PathBuf>> {
    let Some(binary) = spec.binary.clone() else { return Ok(None) };
    if binary.contains('/') {
        let p = PathBuf::from(&binary);
        if !p.is_file() {
            return Err(UsageError(format!("scheduler binary {binary} does not exist")).into());
        }
        return Ok(Some(p));
    }
    if let Some(p) = kernel.find_scheduler(&binary) {
        return Ok(Some(p));
    }
    if let Some(p) = crate::plugins::find_in_path(&binary) {
        return Ok(Some(p));
    }
    let cached: Vec<String> =
        crate::kernel::available_schedulers().into_iter().map(|(n, _)| n).collect();
    Err(UsageError(format!(
        "scheduler `{binary}` not found in the kernel cache entry ({}) nor on PATH; cached \
            schedulers: {}",
        kernel.dir.display(),
        if cached.is_empty() {
            "none (run `ktstr kernel build`)".into()
        } else {
            cached.join(", ")
        }
    ))
    .into())
}
