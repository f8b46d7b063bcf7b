//! The run plan: everything the guest init must do, written by the host into
//! the per-run initramfs as `/ktstr/plan.json`. Versioned with the protocol.

use serde::{Deserialize, Serialize};

use crate::check::Check;
use crate::disk::DiskPlan;
use crate::plugin::{LaunchSpec, PluginAt, RunContext, Stream};
use crate::scenario::Scenario;

/// Where the plan lives in the guest.
pub const PLAN_PATH: &str = "/ktstr/plan.json";
/// Where plugins are packed in the guest.
pub const PLUGIN_DIR: &str = "/ktstr/plugins";
/// Where payload and scheduler binaries are packed in the guest.
pub const BIN_DIR: &str = "/ktstr/bin";
/// The cgroup (under the cgroup2 root) the payload runs in.
pub const PAYLOAD_CGROUP: &str = "ktstr/payload";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    /// Must equal [`crate::protocol::PROTOCOL_VERSION`] of the init.
    pub protocol: u16,
    /// The one payload of a plain run; `None` when a scenario runs instead.
    pub payload: Option<PayloadPlan>,
    pub scenario: Option<ScenarioPlan>,
    pub scheduler: SchedulerPlan,
    pub checks: Vec<Check>,
    /// The topology string the host asked for (`1n2l2c1t`), reported back.
    pub topology: String,
    /// The run-queue monitor, while a payload runs; `None`: off.
    #[serde(default)]
    pub monitor: Option<MonitorPlan>,
    /// Disks to find (and format, and mount) before the scheduler starts.
    #[serde(default)]
    pub disks: Vec<DiskPlan>,
    /// End once the disks are set up: a disk template's build.
    #[serde(default)]
    pub setup_only: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadPlan {
    pub name: String,
    /// The payload plugin (run inline when `binary` is `None`).
    pub plugin: PluginAt,
    pub extractor: PluginAt,
    /// The stream the extractor reads first.
    pub metric_stream: Stream,
    /// Guest path of the binary to exec; `None` runs the plugin inline.
    pub binary: Option<String>,
    pub args: Vec<String>,
    pub own_process_group: bool,
    /// Kill the payload after this long, as timed out; `None`: no limit
    /// inside the guest (the host watchdog still applies).
    pub timeout_ms: Option<u64>,
    /// What the payload is told about the run (its `out_dir` is created
    /// before it starts and sent back after it ends).
    pub context: RunContext,
    /// Extra environment for the payload (`KTSTR_*`, line buffering).
    pub env: Vec<(String, String)>,
    /// The payload gets a terminal (`ktstr shell`): a PTY for its stdio,
    /// relayed to the virtio-console port `ktstr-shell`, and it outlives a
    /// scheduler failure, which is reported as it happens.
    #[serde(default)]
    pub terminal: bool,
}

/// A scenario and the payload plugins its `run_payload` ops name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioPlan {
    pub scenario: Scenario,
    pub payloads: Vec<ScenarioPayloadPlan>,
    /// The run duration (`hold = { fraction = F }` holds F of it); also the
    /// longest a step waits for its payloads.
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioPayloadPlan {
    /// The plugin name `run_payload` uses.
    pub name: String,
    /// The plugin (run inline when `binary` is `None`).
    pub plugin: PluginAt,
    pub binary: Option<String>,
    pub default_args: Vec<String>,
    pub context: RunContext,
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerPlan {
    /// What the user asked for (`eevdf`, `scx_simple`, a path).
    pub requested: String,
    /// What the launcher said to start, resolved on the host (the guest
    /// never loads the launcher).
    pub launch: LaunchSpec,
    /// The launcher plugin's name, for messages.
    pub launcher: String,
    /// Guest path of the binary the launcher named, packed by the host.
    pub binary: Option<String>,
    /// Extra arguments from `--sched-arg`, after the launcher's own.
    pub extra_args: Vec<String>,
}

impl RunPlan {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plans serialise")
    }

    /// Parses a plan and checks its protocol version.
    pub fn from_json(text: &str) -> anyhow::Result<RunPlan> {
        let plan: RunPlan =
            serde_json::from_str(text).map_err(|e| anyhow::anyhow!("unreadable run plan: {e}"))?;
        if plan.protocol != crate::protocol::PROTOCOL_VERSION {
            anyhow::bail!(
                "run plan speaks protocol {}, this init speaks {}: the initramfs was built by \
                    another ktstr version",
                plan.protocol,
                crate::protocol::PROTOCOL_VERSION
            );
        }
        Ok(plan)
    }
}

/// The run-queue monitor the host asks for (`--monitor-interval-ms`,
/// `--monitor-stall-ms`; see `guest::monitor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorPlan {
    pub interval_ms: u64,
    pub stall_ms: u64,
}
