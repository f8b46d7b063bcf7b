//! The kernel's own fair scheduler: nothing to start, nothing to stop.

use ktstr_plugin_api::abi_stable::std_types::{ROption, RVec};
use ktstr_plugin_api::{export_plugin, LaunchSpec, Manifest, Plugin, SchedulerSpec, StopSignal};

pub struct Eevdf;

impl Plugin for Eevdf {
    fn manifest() -> Manifest {
        let spec = SchedulerSpec {
            binary: ROption::RNone,
            default_args: RVec::new(),
            accepts_any_binary: false,
            sched_ext: false,
        };
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
        Ok(LaunchSpec {
            binary: ROption::RNone,
            args: RVec::new(),
            ops_prefix: ROption::RNone,
            sched_ext: false,
            stop_signal: StopSignal::Terminate,
            ready_timeout_ms: 0,
            stop_timeout_ms: 0,
        })
    }
}

export_plugin!(Eevdf);
