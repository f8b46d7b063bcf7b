//! Validation before anything boots: the scenario is walked op by op with a
//! model of which cgroups exist, what they hold and which payloads run, so
//! ordering mistakes (using a cgroup before adding it, removing one that
//! still holds tasks) are caught here rather than inside the guest.
//!
//! Every problem is collected, each prefixed with where it is, e.g.
//! `step "split" op 2 (spawn): unknown cgroup "c"` (indexes count from 1).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{CgroupDef, CpuSel, Hold, Op, Scenario, BACKDROP};
use crate::topology::{format_cpulist, Topology};

/// Most workers alive at once; more would only measure fork and memory.
pub const MAX_WORKERS: u64 = 4096;
/// Longest fixed hold.
const MAX_HOLD_SECS: f64 = 86_400.0;

#[derive(Debug, Clone, PartialEq)]
pub enum ScenarioError {
    /// The TOML (or JSON) did not parse into a scenario.
    Parse(String),
    /// Every validation problem, in scenario order.
    Invalid(Vec<String>),
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioError::Parse(e) => write!(f, "bad scenario: {e}"),
            ScenarioError::Invalid(errors) if errors.len() == 1 => f.write_str(&errors[0]),
            ScenarioError::Invalid(errors) => {
                write!(f, "{} problems in the scenario:\n  {}", errors.len(), errors.join("\n  "))
            }
        }
    }
}

impl std::error::Error for ScenarioError {}

/// A name as shown in messages: quoted, control characters escaped.
pub(crate) fn q(name: &str) -> String {
    format!("\"{}\"", name.escape_debug())
}

/// Why `name` cannot be a cgroup path under the scenario root, if it cannot.
pub fn check_cgroup_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty cgroup name".into());
    }
    if name.starts_with('/') {
        return Err(format!(
            "cgroup name {} must be relative to the scenario root (no leading \"/\")",
            q(name)
        ));
    }
    if name.contains('\0') {
        return Err(format!("cgroup name {} contains a NUL byte", q(name)));
    }
    for part in name.split('/') {
        let bad = match part {
            "" => Some("an empty component".to_string()),
            "." => Some("a \".\" component".to_string()),
            ".." => Some("a \"..\" component".to_string()),
            p if p.len() > 255 => Some("a component longer than 255 bytes".to_string()),
            p if !p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) => {
                Some(format!("{} (only letters, digits, '.', '_' and '-' are allowed)", q(p)))
            }
            p if ["cgroup.", "cpu.", "cpuset.", "memory.", "io.", "pids."]
                .iter()
                .any(|f| p.starts_with(f)) =>
            {
                Some(format!("{} (clashes with cgroup interface files)", q(p)))
            }
            _ => None,
        };
        if let Some(why) = bad {
            return Err(format!("cgroup name {} has {why}", q(name)));
        }
    }
    Ok(())
}

/// How long something lives: until the current step ends, or to the end of
/// the scenario (backdrop cgroups and tasks, and cgroups made by add_cgroup).
/// The CPUs a cgroup's tasks may use: its configured cpuset (`None`:
/// inherited) within its ancestors'. Like the kernel, an empty intersection
/// falls back to the parent's. `None`: every CPU.
pub fn effective_cpus(
    configured: &BTreeMap<String, Option<Vec<u32>>>,
    name: &str,
) -> Option<Vec<u32>> {
    let mut path = String::new();
    let mut eff: Option<Vec<u32>> = None;
    for part in name.split('/') {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(part);
        if let Some(Some(own)) = configured.get(&path) {
            let narrowed: Vec<u32> = own
                .iter()
                .copied()
                .filter(|c| eff.as_ref().is_none_or(|e| e.contains(c)))
                .collect();
            if !narrowed.is_empty() {
                eff = Some(narrowed);
            }
        }
    }
    eff
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    Scenario,
    Step,
}

struct Tasks {
    owner: Owner,
    cgroup: String,
    /// `Some` for a payload, `None` for workers.
    payload: Option<String>,
    workers: u64,
}

struct Sim<'a> {
    topo: &'a Topology,
    /// Existing cgroups and their configured CPUs (None: inherited).
    cgroups: BTreeMap<String, Option<Vec<u32>>>,
    /// Cgroups the current step created, in creation order.
    step_cgroups: Vec<String>,
    tasks: Vec<Tasks>,
    payload_names: BTreeSet<String>,
    capture_tags: BTreeSet<String>,
    errors: Vec<String>,
    /// Where we are, e.g. `step "split" op 2 (spawn)`.
    at: String,
}

pub(super) fn validate(s: &Scenario, topo: &Topology) -> Result<(), ScenarioError> {
    let mut sim = Sim {
        topo,
        cgroups: BTreeMap::new(),
        step_cgroups: Vec::new(),
        tasks: Vec::new(),
        payload_names: BTreeSet::new(),
        capture_tags: BTreeSet::new(),
        errors: Vec::new(),
        at: "scenario".into(),
    };
    sim.scenario_level(s);
    sim.phase(BACKDROP, Owner::Scenario, &s.backdrop.cgroups, &s.backdrop.ops);
    for step in &s.steps {
        let label = format!("step {}", q(&step.name));
        sim.capture_tags.clear();
        sim.phase(&label, Owner::Step, &step.cgroups, &step.ops);
        sim.at = format!("{label} (hold)");
        sim.hold(&step.hold);
        sim.at = format!("{label} (end)");
        sim.end_step();
    }
    if sim.errors.is_empty() {
        Ok(())
    } else {
        Err(ScenarioError::Invalid(sim.errors))
    }
}

impl Sim<'_> {
    fn err(&mut self, msg: impl fmt::Display) {
        self.errors.push(format!("{}: {msg}", self.at));
    }

    fn scenario_level(&mut self, s: &Scenario) {
        if s.name.trim().is_empty() {
            self.err("the name must not be empty");
        }
        if s.steps.is_empty() {
            self.err("no steps; a scenario needs at least one");
        }
        let mut seen = BTreeSet::new();
        for (i, step) in s.steps.iter().enumerate() {
            if step.name.trim().is_empty() {
                self.err(format!("step {} has an empty name", i + 1));
            } else if step.name == BACKDROP {
                self.err(format!("step {} may not be named {} (reserved)", i + 1, q(BACKDROP)));
            } else if !seen.insert(step.name.as_str()) {
                self.err(format!("duplicate step name {}", q(&step.name)));
            }
        }
        let spread = s.checks.fairness_max_spread;
        if !(spread.is_finite() && spread >= 0.0) {
            self.at = "checks".into();
            self.err(format!("fairness_max_spread must be a finite number >= 0, not {spread}"));
        }
    }

    fn phase(&mut self, label: &str, owner: Owner, cgroups: &[CgroupDef], ops: &[Op]) {
        for (i, def) in cgroups.iter().enumerate() {
            self.at = format!("{label} cgroup {}", i + 1);
            self.add(&def.name, def.cpuset.as_ref(), owner);
        }
        for (i, op) in ops.iter().enumerate() {
            self.at = format!("{label} op {} ({})", i + 1, op.kind());
            self.op(op, owner);
        }
    }

    fn resolve(&mut self, what: &str, sel: &CpuSel) -> Option<Vec<u32>> {
        match sel.resolve(self.topo) {
            Ok(cpus) => Some(cpus),
            Err(e) => {
                self.err(format!("{what} {sel}: {e}"));
                None
            }
        }
    }

    fn known(&mut self, name: &str) -> bool {
        if self.cgroups.contains_key(name) {
            return true;
        }
        match check_cgroup_name(name) {
            Err(e) => self.err(e),
            Ok(()) => self.err(format!("unknown cgroup {}", q(name))),
        }
        false
    }

    fn add(&mut self, name: &str, cpuset: Option<&CpuSel>, owner: Owner) {
        if let Err(e) = check_cgroup_name(name) {
            return self.err(e);
        }
        if self.cgroups.contains_key(name) {
            return self.err(format!("cgroup {} already exists", q(name)));
        }
        if let Some((parent, _)) = name.rsplit_once('/') {
            if !self.cgroups.contains_key(parent) {
                return self.err(format!(
                    "parent {} of cgroup {} does not exist",
                    q(parent),
                    q(name)
                ));
            }
        }
        let cpus = cpuset.and_then(|sel| self.resolve("cpuset", sel));
        self.cgroups.insert(name.to_string(), cpus);
        if owner == Owner::Step {
            self.step_cgroups.push(name.to_string());
        }
    }

    fn live_workers(&self) -> u64 {
        self.tasks.iter().map(|t| t.workers).sum()
    }

    fn op(&mut self, op: &Op, owner: Owner) {
        match op {
            // Added cgroups outlive the step, so later steps can churn them.
            Op::AddCgroup { cgroup, cpuset } => self.add(cgroup, cpuset.as_ref(), Owner::Scenario),
            Op::RemoveCgroup { cgroup } => self.remove(cgroup),
            Op::SetCpuset { cgroup, cpus } => {
                if self.known(cgroup) {
                    if let Some(cpus) = self.resolve("cpuset", cpus) {
                        self.cgroups.insert(cgroup.clone(), Some(cpus));
                    }
                }
            }
            Op::ClearCpuset { cgroup } => {
                if self.known(cgroup) {
                    self.cgroups.insert(cgroup.clone(), None);
                }
            }
            Op::Spawn { cgroup, count, work, comm } => {
                let known = self.known(cgroup);
                if !(1..=1024).contains(count) {
                    self.err(format!("count {count} must be in [1, 1024]"));
                }
                if let Some(comm) = comm {
                    if comm.is_empty() {
                        self.err("comm must not be empty");
                    } else if comm.contains('\0') {
                        self.err(format!("comm {} contains a NUL byte", q(comm)));
                    } else if comm.len() > 15 {
                        self.err(format!(
                            "comm {} is {} bytes; the kernel keeps at most 15",
                            q(comm),
                            comm.len()
                        ));
                    }
                }
                if let Err(e) = work.check() {
                    self.err(format!("work: {e}"));
                }
                if known {
                    self.tasks.push(Tasks {
                        owner,
                        cgroup: cgroup.clone(),
                        payload: None,
                        workers: u64::from(*count),
                    });
                    if self.live_workers() > MAX_WORKERS {
                        self.err(format!(
                            "{} workers would be alive at once; at most {MAX_WORKERS}",
                            self.live_workers()
                        ));
                    }
                }
            }
            Op::RunPayload { name, plugin, cgroup, .. } => {
                if name.trim().is_empty() {
                    self.err("the payload name must not be empty");
                } else if !self.payload_names.insert(name.clone()) {
                    self.err(format!("duplicate payload name {}", q(name)));
                }
                if plugin.trim().is_empty() {
                    self.err("the plugin name must not be empty");
                }
                if self.known(cgroup) {
                    self.tasks.push(Tasks {
                        owner,
                        cgroup: cgroup.clone(),
                        payload: Some(name.clone()),
                        workers: 0,
                    });
                }
            }
            Op::WaitPayload { name } | Op::KillPayload { name } => {
                match self.tasks.iter().position(|t| t.payload.as_deref() == Some(name.as_str())) {
                    Some(i) => {
                        self.tasks.remove(i);
                    }
                    None if self.payload_names.contains(name) => self.err(format!(
                        "payload {} is no longer running (already waited for or \
                            killed, or its step ended)",
                        q(name)
                    )),
                    None => self.err(format!("unknown payload {}", q(name))),
                }
            }
            Op::MoveTasks { from, to } => {
                let (a, b) = (self.known(from), self.known(to));
                if a && b && from == to {
                    self.err(format!("moves tasks from {} to itself", q(from)));
                } else if a && b {
                    for t in self.tasks.iter_mut().filter(|t| t.cgroup == *from) {
                        t.cgroup.clone_from(to);
                    }
                }
            }
            Op::SetAffinity { cgroup, cpus } => {
                if !self.known(cgroup) {
                    return;
                }
                let Some(cpus) = self.resolve("affinity", cpus) else { return };
                if !self.tasks.iter().any(|t| t.cgroup == *cgroup && t.payload.is_none()) {
                    self.err(format!("cgroup {} has no workers to pin", q(cgroup)));
                }
                if let Some(eff) = effective_cpus(&self.cgroups, cgroup) {
                    if !cpus.iter().any(|c| eff.contains(c)) {
                        self.err(format!(
                            "affinity \"{}\" has no CPU in the cpuset of {} (\"{}\")",
                            format_cpulist(&cpus),
                            q(cgroup),
                            format_cpulist(&eff)
                        ));
                    }
                }
            }
            Op::Capture { cgroup, tag } => {
                self.known(cgroup);
                if tag.trim().is_empty() {
                    self.err("the capture tag must not be empty");
                } else if !self.capture_tags.insert(tag.clone()) {
                    self.err(format!("duplicate capture tag {} in this step", q(tag)));
                }
            }
        }
    }

    fn remove(&mut self, name: &str) {
        if !self.known(name) {
            return;
        }
        let child_prefix = format!("{name}/");
        if let Some(child) = self.cgroups.keys().find(|k| k.starts_with(&child_prefix)).cloned() {
            return self.err(format!(
                "cgroup {} still has the child cgroup {}",
                q(name),
                q(&child)
            ));
        }
        if self.tasks.iter().any(|t| t.cgroup == name) {
            return self.err(format!(
                "cgroup {} still holds workers or payloads; move them out or \
                stop its payloads first",
                q(name)
            ));
        }
        self.cgroups.remove(name);
        self.step_cgroups.retain(|c| c != name);
    }

    fn hold(&mut self, hold: &Hold) {
        match *hold {
            Hold::Secs(s) if !(s > 0.0 && s <= MAX_HOLD_SECS) => {
                self.err(format!("secs must be in (0, {MAX_HOLD_SECS}], not {s}"))
            }
            Hold::Ms(ms) if ms == 0 || ms as f64 > MAX_HOLD_SECS * 1000.0 => {
                self.err(format!("ms must be in [1, {}], not {ms}", MAX_HOLD_SECS * 1000.0))
            }
            Hold::Fraction(f) if !(f > 0.0 && f <= 1.0) => {
                self.err(format!("fraction must be in (0, 1], not {f}"))
            }
            Hold::Payloads
                if !self.tasks.iter().any(|t| t.owner == Owner::Step && t.payload.is_some()) =>
            {
                self.err("hold = \"payloads\" but no payload of this step is still running")
            }
            _ => {}
        }
    }

    /// The step's tasks end and its cgroups go, children first.
    fn end_step(&mut self) {
        self.tasks.retain(|t| t.owner == Owner::Scenario);
        for cg in std::mem::take(&mut self.step_cgroups).into_iter().rev() {
            let child_prefix = format!("{cg}/");
            if let Some(child) = self.cgroups.keys().find(|k| k.starts_with(&child_prefix)).cloned()
            {
                self.err(format!(
                    "cgroup {} is removed when the step ends but still has the \
                    child cgroup {}, which add_cgroup made to outlive the step",
                    q(&cg),
                    q(&child)
                ));
            }
            if self.tasks.iter().any(|t| t.cgroup == cg) {
                self.err(format!(
                    "cgroup {} is removed when the step ends but still holds \
                    backdrop tasks moved there; move them out first",
                    q(&cg)
                ));
            }
            self.cgroups.remove(&cg);
        }
    }
}
