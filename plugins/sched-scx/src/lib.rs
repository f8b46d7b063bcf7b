//! Launches any sched_ext scheduler binary, named (`scx_qmap`, found on PATH
//! or in the kernel cache entry) or given as a path.
//!
//! Readiness: sched_ext `enabled` and `root/ops` starting with the binary's
//! name without `scx_` (`simple` for scx_simple; real-world schedulers add a
//! version suffix, e.g. `bpfland_1.1.4_x86_64_unknown_linux_gnu`).

use ktstr_plugin_api::{export_plugin, LaunchSpec, Manifest, Plugin, SchedulerSpec};

pub struct Scx;

/// BPF verification under software emulation takes seconds; be generous.
const READY_TIMEOUT_MS: u32 = 60_000;
const STOP_TIMEOUT_MS: u32 = 10_000;

/// The ops name prefix a sched_ext binary registers, from its file name.
pub fn ops_prefix(requested: &str) -> Result<String, String> {
    let base = requested.rsplit('/').next().unwrap_or("");
    if base.is_empty() || base == "." || base == ".." {
        return Err(format!("`{requested}` does not name a scheduler binary"));
    }
    if base.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{requested}`: a scheduler name cannot contain spaces or control characters"
        ));
    }
    Ok(base.strip_prefix("scx_").unwrap_or(base).to_string())
}

impl Plugin for Scx {
    fn manifest() -> Manifest {
        let spec = SchedulerSpec::any_sched_ext_binary();
        Manifest::scheduler(
            "scx",
            env!("CARGO_PKG_VERSION"),
            "any sched_ext scheduler binary (scx_simple, scx_qmap, scx_rusty, a path…)",
            spec,
        )
    }

    fn launch(requested: &str) -> Result<LaunchSpec, String> {
        let prefix = ops_prefix(requested)?;
        Ok(LaunchSpec::sched_ext(requested, Some(&prefix))
            .with_timeouts(READY_TIMEOUT_MS, STOP_TIMEOUT_MS))
    }
}

export_plugin!(Scx);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_prefix_from_name_or_path() {
        assert_eq!(ops_prefix("scx_simple").unwrap(), "simple");
        assert_eq!(ops_prefix("/opt/bin/scx_bpfland").unwrap(), "bpfland");
        assert_eq!(ops_prefix("my_sched").unwrap(), "my_sched");
        assert!(ops_prefix("").is_err());
        assert!(ops_prefix("/opt/").is_err());
        assert!(ops_prefix("a b").is_err());
    }
}
