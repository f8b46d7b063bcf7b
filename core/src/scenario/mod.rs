//! Scenarios: what runs where, declared as data. A scenario is a backdrop
//! (cgroups and ops that live for the whole run) and ordered steps, each with
//! its own cgroups, ops applied in order and a hold. The full TOML reference
//! is `core/scenarios/SCHEMA.md`.
//!
//! This module is pure: the model, its TOML/JSON forms, validation against a
//! topology before anything boots, the built-in checks and the canned
//! library. The guest executor is `crate::guest::scenario`.

mod checks;
mod forms;
mod library;
mod metrics;
mod results;
mod validate;

use serde::{Deserialize, Serialize};

use crate::topology::Topology;
pub use crate::work::{Work, WorkKind};
pub use checks::{
    evaluate_cgroup_checks, fairness_groups, payload_check, DEFAULT_FAIRNESS_MAX_SPREAD,
};
pub use library::{canned, library};
pub use metrics::metrics;
pub use results::{
    CaptureResult, CgroupResult, PayloadOutcome, Progress, ScenarioResult, SpawnRecord, StepResult,
    StopReason, WorkerResult, BACKDROP, TAIL,
};
pub(crate) use validate::q;
pub use validate::{check_cgroup_name, effective_cpus, ScenarioError, MAX_WORKERS};

/// A whole scenario. Serialises to TOML and JSON (self-describing formats
/// only: holds, CPU selections and work use `deserialize_any`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Thresholds of the built-in checks.
    #[serde(default)]
    pub checks: ChecksConfig,
    /// Cgroups and ops that persist across steps, until the end of the run.
    #[serde(default)]
    pub backdrop: Backdrop,
    /// Disks the run gets (`[[disks]]`), before any given with `--disk`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<crate::disk::DiskEntry>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backdrop {
    #[serde(default)]
    pub cgroups: Vec<CgroupDef>,
    #[serde(default)]
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    /// Created when the step starts, removed when it ends (unlike cgroups
    /// made by `add_cgroup`, which live until removed or the scenario ends).
    #[serde(default)]
    pub cgroups: Vec<CgroupDef>,
    #[serde(default)]
    pub ops: Vec<Op>,
    pub hold: Hold,
}

/// A cgroup, named by its path relative to the scenario root ("a", "p/c").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupDef {
    pub name: String,
    #[serde(default)]
    pub cpuset: Option<CpuSel>,
}

/// One action; applied in order, each finishing before the next starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Lives until `remove_cgroup` or the end of the scenario, so later
    /// steps can move tasks into it and remove it.
    AddCgroup {
        cgroup: String,
        #[serde(default)]
        cpuset: Option<CpuSel>,
    },
    RemoveCgroup {
        cgroup: String,
    },
    SetCpuset {
        cgroup: String,
        cpus: CpuSel,
    },
    ClearCpuset {
        cgroup: String,
    },
    /// `count` worker processes, each running `work`, named `comm`.
    Spawn {
        cgroup: String,
        #[serde(default = "one")]
        count: u32,
        work: Work,
        /// Defaults to `ktstr-<kind>`; at most 15 bytes (the kernel's limit).
        #[serde(default)]
        comm: Option<String>,
    },
    /// A payload plugin (by plugin name) run in `cgroup` as instance `name`.
    RunPayload {
        name: String,
        plugin: String,
        /// Absent: the plugin's default arguments; `[]`: none.
        #[serde(default)]
        args: Option<Vec<String>>,
        cgroup: String,
    },
    WaitPayload {
        name: String,
    },
    KillPayload {
        name: String,
    },
    /// Moves every process of `from` into `to`.
    MoveTasks {
        from: String,
        to: String,
    },
    /// Pins the cgroup's current workers (every thread) to `cpus`.
    SetAffinity {
        cgroup: String,
        cpus: CpuSel,
    },
    /// Records the pids in the cgroup's `cgroup.procs` under `tag`.
    Capture {
        cgroup: String,
        tag: String,
    },
}

fn one() -> u32 {
    1
}

impl Op {
    /// The op's name as written in TOML (`spawn`, `move_tasks`…).
    pub fn kind(&self) -> &'static str {
        match self {
            Op::AddCgroup { .. } => "add_cgroup",
            Op::RemoveCgroup { .. } => "remove_cgroup",
            Op::SetCpuset { .. } => "set_cpuset",
            Op::ClearCpuset { .. } => "clear_cpuset",
            Op::Spawn { .. } => "spawn",
            Op::RunPayload { .. } => "run_payload",
            Op::WaitPayload { .. } => "wait_payload",
            Op::KillPayload { .. } => "kill_payload",
            Op::MoveTasks { .. } => "move_tasks",
            Op::SetAffinity { .. } => "set_affinity",
            Op::Capture { .. } => "capture",
        }
    }
}

/// How long a step lasts after its ops: `{ secs = 3 }`, `{ ms = 500 }`,
/// `{ fraction = 0.5 }` (of the run duration) or `"payloads"` (until the
/// step's payloads end, bounded by the executor's payload limit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hold {
    Secs(f64),
    Ms(u64),
    Fraction(f64),
    Payloads,
}

/// A CPU selection: a cpulist (`"0-3,6"`), `{ llc = N }` or `{ node = N }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuSel {
    List(String),
    Llc(u32),
    Node(u32),
}

impl CpuSel {
    /// The CPUs selected on `topo`, sorted; the error says what is out of range.
    pub fn resolve(&self, topo: &Topology) -> Result<Vec<u32>, String> {
        match self {
            CpuSel::List(list) => {
                let cpus = crate::topology::parse_cpulist(list).map_err(|e| e.to_string())?;
                if cpus.is_empty() {
                    return Err(format!("cpulist \"{list}\" selects no CPU"));
                }
                match cpus.iter().find(|&&c| c >= topo.cpus()) {
                    Some(c) => Err(format!(
                        "CPU {c} is outside the topology {topo} (CPUs 0-{})",
                        topo.cpus() - 1
                    )),
                    None => Ok(cpus),
                }
            }
            CpuSel::Llc(n) if *n >= topo.llcs() => {
                Err(format!("LLC {n} is outside the topology {topo} ({} LLCs)", topo.llcs()))
            }
            CpuSel::Llc(n) => Ok((0..topo.cpus()).filter(|&c| topo.llc_of(c) == *n).collect()),
            CpuSel::Node(n) if *n >= topo.nodes => {
                Err(format!("node {n} is outside the topology {topo} ({} nodes)", topo.nodes))
            }
            CpuSel::Node(n) => Ok(topo.node_cpus(*n)),
        }
    }
}

impl std::fmt::Display for CpuSel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CpuSel::List(l) => write!(f, "\"{l}\""),
            CpuSel::Llc(n) => write!(f, "{{ llc = {n} }}"),
            CpuSel::Node(n) => write!(f, "{{ node = {n} }}"),
        }
    }
}

/// Thresholds of the built-in checks; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    /// Fail a cgroup when one of its workers did fewer than `min_work_units`.
    pub starvation: bool,
    pub min_work_units: u64,
    /// Compare cgroups that got identical spawns and the same CPUs.
    pub fairness: bool,
    /// Most (max - min) / mean of per-cgroup work rates; see
    /// [`DEFAULT_FAIRNESS_MAX_SPREAD`] for why the default is what it is.
    pub fairness_max_spread: f64,
    /// Fail a cgroup whose workers ran on a CPU outside their cpuset/affinity.
    pub isolation: bool,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        ChecksConfig {
            starvation: true,
            min_work_units: 1,
            fairness: true,
            fairness_max_spread: DEFAULT_FAIRNESS_MAX_SPREAD,
            isolation: true,
        }
    }
}

impl Scenario {
    /// Parses TOML; the error carries the TOML parser's line and column.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))
    }

    /// Checks everything that can be checked before booting, against `topo`.
    /// Every problem is collected (see [`ScenarioError::Invalid`]).
    pub fn validate(&self, topo: &Topology) -> Result<(), ScenarioError> {
        validate::validate(self, topo)
    }

    /// The payload plugin names the scenario runs, for the host to resolve.
    pub fn payload_plugins(&self) -> std::collections::BTreeSet<String> {
        let backdrop = self.backdrop.ops.iter();
        backdrop
            .chain(self.steps.iter().flat_map(|s| s.ops.iter()))
            .filter_map(|op| match op {
                Op::RunPayload { plugin, .. } => Some(plugin.clone()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
