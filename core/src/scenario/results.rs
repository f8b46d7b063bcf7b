//! What a scenario run produces, step by step, for the host. Plain structs
//! and externally tagged enums only, with no skipped fields, so they travel
//! in postcard (the wire protocol) as well as JSON.

use serde::{Deserialize, Serialize};

use crate::check::CheckResult;
use crate::work::WorkerReport;

/// The name the backdrop's results go under (it ends after the last step).
pub const BACKDROP: &str = "backdrop";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub name: String,
    /// One per step that started, in order, then the backdrop's.
    pub steps: Vec<StepResult>,
    /// Why the scenario stopped early (an op failed, the run was aborted).
    pub error: Option<String>,
}

impl ScenarioResult {
    pub fn checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.steps.iter().flat_map(|s| s.checks.iter())
    }

    /// No error and every check passed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.checks().all(|c| c.passed)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub name: String,
    /// From the first op to the end of the hold (teardown excluded).
    pub duration_ms: u64,
    /// Every cgroup that received workers in this step (by the cgroup they
    /// were spawned into, even if later moved).
    pub cgroups: Vec<CgroupResult>,
    pub captures: Vec<CaptureResult>,
    pub payloads: Vec<PayloadOutcome>,
    /// Built-in checks: `starvation[step/cgroup]`, `fairness[step: a,b]`,
    /// `isolation[step/cgroup]`, `payload[step/name]`, `ops[step]`.
    pub checks: Vec<CheckResult>,
    /// Ops or teardown actions that failed, each naming the op.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CgroupResult {
    /// Relative to the scenario root.
    pub cgroup: String,
    /// The spawns it received in this step, in op order.
    pub spawns: Vec<SpawnRecord>,
    /// The CPUs its workers could use when the hold began (`None`: any).
    pub cpus: Option<Vec<u32>>,
    /// False when tasks moved in or out, its workers were pinned, or it ran
    /// a payload in this step: it is then not compared for fairness.
    pub comparable: bool,
    pub workers: Vec<WorkerResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SpawnRecord {
    pub count: u32,
    /// [`crate::work::Work::describe`].
    pub work: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerResult {
    pub report: WorkerReport,
    /// The CPUs it may use under its latest restriction (its cgroup's
    /// cpuset within its ancestors', narrowed by its affinity); `None`: any.
    /// Isolation compares this with `report.cpus_since_change`.
    pub allowed_cpus: Option<Vec<u32>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureResult {
    pub tag: String,
    pub cgroup: String,
    pub pids: Vec<u32>,
}

/// Why the scenario stopped a payload instead of letting it exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// A `kill_payload` op.
    Killed,
    /// Its step (or, for the backdrop, the scenario) ended.
    StepEnded,
    /// `hold = "payloads"` or `wait_payload` waited past the payload limit.
    TimedOut,
    /// The run was aborted (the scheduler failed, an op failed).
    Aborted,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PayloadOutcome {
    /// The instance name from `run_payload`.
    pub name: String,
    pub plugin: String,
    pub cgroup: String,
    /// `None` when it could not be started (see `error`).
    pub pid: Option<u32>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stopped: Option<StopReason>,
    pub duration_ms: u64,
    /// The last [`TAIL`] bytes of each stream (everything is also streamed
    /// to the reporter as it comes).
    pub stdout_tail: String,
    pub stderr_tail: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub error: Option<String>,
}

/// How much of each payload stream a [`PayloadOutcome`] keeps.
pub const TAIL: usize = 4096;

/// A progress sample sent about once a second while a step holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub step: String,
    pub elapsed_ms: u64,
    /// Workers alive (step and backdrop).
    pub workers: u32,
    /// Their work units so far.
    pub work_units: u64,
    pub payloads_running: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_survive_postcard_and_json() {
        let step = StepResult {
            name: "s".into(),
            duration_ms: 5,
            cgroups: vec![CgroupResult {
                cgroup: "a".into(),
                spawns: vec![SpawnRecord { count: 2, work: "spin".into() }],
                cpus: Some(vec![0, 1]),
                comparable: true,
                workers: vec![WorkerResult {
                    report: WorkerReport { pid: 9, ..Default::default() },
                    allowed_cpus: None,
                }],
            }],
            captures: vec![CaptureResult { tag: "t".into(), cgroup: "a".into(), pids: vec![9] }],
            payloads: vec![PayloadOutcome {
                name: "p".into(),
                stopped: Some(StopReason::TimedOut),
                ..Default::default()
            }],
            checks: vec![CheckResult {
                check: "starvation[s/a]".into(),
                passed: true,
                value: Some(3.0),
                detail: String::new(),
            }],
            errors: vec![],
        };
        let r = ScenarioResult { name: "x".into(), steps: vec![step], error: None };
        let bytes = postcard::to_allocvec(&r).unwrap();
        assert_eq!(postcard::from_bytes::<ScenarioResult>(&bytes).unwrap(), r);
        assert_eq!(
            serde_json::from_str::<ScenarioResult>(&serde_json::to_string(&r).unwrap()).unwrap(),
            r
        );
        assert!(r.passed());
    }
}
