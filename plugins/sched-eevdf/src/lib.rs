//! The kernel's own fair scheduler: nothing to start, nothing to stop.

use ktstr_plugin_api::{export_plugin, LaunchSpec, Manifest, Plugin, SchedulerSpec};

pub struct Eevdf;

impl Plugin for Eevdf {
    fn manifest() -> Manifest {
        let spec = SchedulerSpec::built_in();
        Manifest::scheduler(
            "eevdf",
            env!("CARGO_PKG_VERSION"),
            "EEVDF, the kernel's built-in fair scheduler (no sched_ext scheduler loaded)",
            spec,
        )
    }

    fn launch(requested: &str) -> Result<LaunchSpec, String> {
        if requested != "eevdf" {
            return Err(format!("the eevdf launcher only starts `eevdf`, not `{requested}`"));
        }
        Ok(LaunchSpec::built_in())
    }
}

export_plugin!(Eevdf);
