//! The scenario executor inside the guest: creates the scenario root cgroup,
//! applies the backdrop, then each step (its cgroups, its ops in order, its
//! hold, its teardown), and finally tears the backdrop down. Every wait is
//! bounded: holds by their length, payload waits by `payload_limit`, worker
//! stops by [`crate::work::STOP_GRACE`], cgroup removal by a short retry.
//!
//! Results are [`crate::scenario::ScenarioResult`]s: per step, the workers'
//! reports by cgroup, captures, payload outcomes and the built-in checks.

mod cgroups;
mod exec;
mod payloads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::plugin::{PluginAt, RunContext};
use crate::scenario::{Progress, Scenario, ScenarioResult, StepResult, BACKDROP};
use crate::topology::Topology;

pub use cgroups::cgroup2_mount;

/// The scenario root in the guest, under the cgroup2 mount.
pub const SCENARIO_CGROUP: &str = "ktstr/scenario";

/// How a payload plugin named by `run_payload` is run in this guest.
pub enum PayloadSource {
    /// A binary the host packed (the plugin's exec'd payload).
    Binary(String),
    /// The plugin's own inline function.
    Inline { plugin: PluginAt, context: RunContext },
}

pub struct ScenarioPayload {
    pub source: PayloadSource,
    /// Used when `run_payload` gives no `args`.
    pub default_args: Vec<String>,
    /// Added to the payload's environment.
    pub env: Vec<(String, String)>,
}

/// Everything the executor needs.
pub struct ScenarioRun<'a> {
    pub scenario: &'a Scenario,
    pub topology: &'a Topology,
    /// The run duration; `hold = { fraction = F }` holds F of it.
    pub duration: Duration,
    /// The cgroup2 mount (`/sys/fs/cgroup` in the guest).
    pub cgroup_mount: PathBuf,
    /// The scenario root under the mount ([`SCENARIO_CGROUP`] in the guest).
    pub root: String,
    /// Payload plugins by plugin name, as the host resolved and packed them.
    pub payloads: BTreeMap<String, ScenarioPayload>,
    /// Longest wait for payloads (`hold = "payloads"`, `wait_payload`);
    /// those still running then are killed and fail their check.
    pub payload_limit: Duration,
}

/// What the executor tells the run loop as it goes. Every method has a
/// default, so a caller implements only what it forwards.
pub trait Reporter {
    fn step_started(&mut self, _step: &str) {}
    fn log(&mut self, _text: String) {}
    fn payload_started(&mut self, _name: &str, _pid: u32, _cgroup: &str) {}
    fn payload_output(&mut self, _name: &str, _stdout: bool, _chunk: &[u8]) {}
    /// About once a second while a step holds.
    fn progress(&mut self, _progress: &Progress) {}
    /// Each step's results as it ends; the backdrop's come last.
    fn step_finished(&mut self, _result: &StepResult) {}
    /// Called about every 100 ms while waiting; false aborts the scenario
    /// (e.g. the scheduler failed): everything is torn down and reported.
    fn keep_going(&mut self) -> bool {
        true
    }
}

/// Whether something ends with its step or with the scenario (backdrop
/// cgroups and tasks, and cgroups made by `add_cgroup`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Life {
    Scenario,
    Step,
}

/// Runs the scenario. An `Err` means nothing ran (invalid scenario, no root
/// cgroup); failures while running end the scenario early and are reported
/// in the result (`error`, and an `ops[step]` check).
pub fn run(input: &ScenarioRun<'_>, reporter: &mut dyn Reporter) -> anyhow::Result<ScenarioResult> {
    input.scenario.validate(input.topology).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tree = cgroups::CgroupTree::create_root(&input.cgroup_mount, &input.root)?;
    if let Some(w) = &tree.controller_warning {
        reporter.log(format!("scenario: {w}"));
    }
    let root = tree.root().to_path_buf();
    let mut ex = exec::Exec::new(input, tree, reporter);
    let mut result =
        ScenarioResult { name: input.scenario.name.clone(), steps: Vec::new(), error: None };

    let mut backdrop = exec::Track::new(BACKDROP);
    let mut ok = ex.phase(
        Life::Scenario,
        &input.scenario.backdrop.cgroups,
        &input.scenario.backdrop.ops,
        &mut backdrop,
    );
    ex.note_hold_cpus(&mut backdrop);
    if ok {
        for step in &input.scenario.steps {
            ex.reporter.step_started(&step.name);
            let mut track = exec::Track::new(&step.name);
            let started = Instant::now();
            ok = ex.phase(Life::Step, &step.cgroups, &step.ops, &mut track);
            if ok {
                ex.note_hold_cpus(&mut track);
                ok = ex.hold(&step.hold);
            }
            track.duration = started.elapsed();
            let step_result = ex.teardown(Life::Step, track);
            ex.reporter.step_finished(&step_result);
            result.steps.push(step_result);
            if !ok {
                break;
            }
        }
    }
    if !ok {
        result.error = Some(ex.stop_reason());
    }
    let backdrop_result = ex.teardown(Life::Scenario, backdrop);
    ex.reporter.step_finished(&backdrop_result);
    result.steps.push(backdrop_result);
    if let Err(e) = cgroups::remove_dir(&root) {
        ex.reporter.log(format!("scenario: {e:#}"));
    }
    Ok(result)
}

#[cfg(test)]
mod tests;
