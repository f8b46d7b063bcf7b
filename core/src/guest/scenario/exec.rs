//! Applying ops, holding, and tearing down, with the bookkeeping the
//! results need: which worker is where, what it may run on, what each step
//! spawned and disturbed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::cgroups::CgroupTree;
use super::payloads::{kill_where, pump_all, LivePayload};
use super::{Life, Reporter, ScenarioRun};
use crate::check::CheckResult;
use crate::scenario::{
    effective_cpus, evaluate_cgroup_checks, payload_check, q, CaptureResult, CgroupDef,
    CgroupResult, CpuSel, Hold, Op, Progress, SpawnRecord, StepResult, StopReason, WorkerResult,
};
use crate::work::{spawn_worker, stop_and_collect, WorkerHandle, WorkerSpec};

/// What one step (or the backdrop) did, for its results.
pub(super) struct Track {
    name: String,
    pub duration: Duration,
    /// Spawns per cgroup, in first-spawn order.
    spawns: Vec<(String, Vec<SpawnRecord>)>,
    hold_cpus: BTreeMap<String, Option<Vec<u32>>>,
    disturbed: BTreeSet<String>,
    captures: Vec<CaptureResult>,
    errors: Vec<String>,
}

impl Track {
    pub(super) fn new(name: &str) -> Track {
        Track {
            name: name.into(),
            duration: Duration::ZERO,
            spawns: Vec::new(),
            hold_cpus: BTreeMap::new(),
            disturbed: BTreeSet::new(),
            captures: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn add_spawn(&mut self, cgroup: &str, record: SpawnRecord) {
        match self.spawns.iter_mut().find(|(c, _)| c == cgroup) {
            Some((_, records)) => records.push(record),
            None => self.spawns.push((cgroup.to_string(), vec![record])),
        }
    }
}

struct LiveWorker {
    handle: WorkerHandle,
    life: Life,
    spawned_in: String,
    now_in: String,
    affinity: Option<Vec<u32>>,
}

enum Waited {
    Done,
    Deadline,
    Aborted,
}

pub(super) struct Exec<'a, 'b> {
    input: &'a ScenarioRun<'b>,
    tree: CgroupTree,
    pub reporter: &'a mut dyn Reporter,
    /// Existing cgroups and their configured CPUs (`None`: inherited).
    cpusets: BTreeMap<String, Option<Vec<u32>>>,
    /// Cgroups in creation order, with how long they live.
    created: Vec<(String, Life)>,
    workers: Vec<LiveWorker>,
    payloads: Vec<LivePayload>,
    /// Cgroups a step disturbed: the backdrop's are then not compared for fairness.
    scenario_disturbed: BTreeSet<String>,
    in_step: bool,
    aborted: bool,
    failed: Option<String>,
    step: String,
    step_started: Instant,
    last_keep_going: Instant,
    last_progress: Instant,
}

impl<'a, 'b> Exec<'a, 'b> {
    pub(super) fn new(
        input: &'a ScenarioRun<'b>,
        tree: CgroupTree,
        reporter: &'a mut dyn Reporter,
    ) -> Self {
        let now = Instant::now();
        Exec {
            input,
            tree,
            reporter,
            cpusets: BTreeMap::new(),
            created: Vec::new(),
            workers: Vec::new(),
            payloads: Vec::new(),
            scenario_disturbed: BTreeSet::new(),
            in_step: false,
            aborted: false,
            failed: None,
            step: String::new(),
            step_started: now,
            last_keep_going: now,
            last_progress: now,
        }
    }

    /// Why the scenario stopped early.
    pub(super) fn stop_reason(&self) -> String {
        match (&self.failed, self.aborted) {
            (Some(f), _) => f.clone(),
            (None, true) => "aborted: the run loop asked to stop".into(),
            (None, false) => "stopped early".into(),
        }
    }

    /// Creates the cgroups, then applies the ops; false when one failed or
    /// the run was aborted (the caller then tears down and stops).
    pub(super) fn phase(
        &mut self,
        life: Life,
        cgroups: &[CgroupDef],
        ops: &[Op],
        track: &mut Track,
    ) -> bool {
        self.in_step = life == Life::Step;
        self.step = track.name.clone();
        self.step_started = Instant::now();
        let label =
            if self.in_step { format!("step {}", q(&track.name)) } else { track.name.clone() };
        for (i, def) in cgroups.iter().enumerate() {
            if let Err(e) = self.add_cgroup(&def.name, def.cpuset.as_ref(), life) {
                return self.fail(track, format!("{label} cgroup {}: {e:#}", i + 1));
            }
        }
        for (i, op) in ops.iter().enumerate() {
            if let Err(e) = self.apply(op, life, track) {
                return self.fail(track, format!("{label} op {} ({}): {e:#}", i + 1, op.kind()));
            }
            if self.aborted {
                return false;
            }
        }
        true
    }

    fn fail(&mut self, track: &mut Track, msg: String) -> bool {
        self.reporter.log(format!("scenario: {msg}"));
        track.errors.push(msg.clone());
        self.failed = Some(msg);
        false
    }

    fn resolve(&self, sel: &CpuSel) -> anyhow::Result<Vec<u32>> {
        sel.resolve(self.input.topology).map_err(|e| anyhow::anyhow!("{sel}: {e}"))
    }

    fn add_cgroup(
        &mut self,
        name: &str,
        cpuset: Option<&CpuSel>,
        life: Life,
    ) -> anyhow::Result<()> {
        self.tree.create(name)?;
        self.created.push((name.to_string(), life));
        let cpus = cpuset.map(|sel| self.resolve(sel)).transpose()?;
        if let Some(cpus) = &cpus {
            self.tree.set_cpus(name, cpus)?;
        }
        self.cpusets.insert(name.to_string(), cpus);
        Ok(())
    }

    /// Marks a cgroup as not comparable for fairness in this step, and for
    /// the backdrop when a step did it.
    fn disturb(&mut self, cgroup: &str, track: &mut Track) {
        track.disturbed.insert(cgroup.to_string());
        if self.in_step {
            self.scenario_disturbed.insert(cgroup.to_string());
        }
    }

    /// The CPUs a worker may use now: its cgroup's, narrowed by its affinity.
    fn allowed(&self, w: &LiveWorker) -> Option<Vec<u32>> {
        let cpuset = effective_cpus(&self.cpusets, &w.now_in);
        match (cpuset, &w.affinity) {
            (c, None) => c,
            (None, Some(a)) => Some(a.clone()),
            (Some(c), Some(a)) => {
                let both: Vec<u32> = a.iter().copied().filter(|x| c.contains(x)).collect();
                Some(if both.is_empty() { c } else { both })
            }
        }
    }

    /// A cpuset change under `cgroup` changes what its workers may use.
    fn cpuset_changed(&mut self, cgroup: &str) {
        let under = format!("{cgroup}/");
        for w in self.workers.iter().filter(|w| w.now_in == cgroup || w.now_in.starts_with(&under))
        {
            w.handle.restriction_changed();
        }
        if self.in_step {
            let touched: Vec<String> = self
                .cpusets
                .keys()
                .filter(|k| *k == cgroup || k.starts_with(&under))
                .cloned()
                .collect();
            self.scenario_disturbed.extend(touched);
        }
    }

    fn apply(&mut self, op: &Op, life: Life, track: &mut Track) -> anyhow::Result<()> {
        match op {
            Op::AddCgroup { cgroup, cpuset } => {
                self.add_cgroup(cgroup, cpuset.as_ref(), Life::Scenario)?
            }
            Op::RemoveCgroup { cgroup } => {
                self.tree.remove(cgroup)?;
                self.cpusets.remove(cgroup);
                self.created.retain(|(c, _)| c != cgroup);
            }
            Op::SetCpuset { cgroup, cpus } => {
                let cpus = self.resolve(cpus)?;
                self.tree.set_cpus(cgroup, &cpus)?;
                self.cpusets.insert(cgroup.clone(), Some(cpus));
                self.cpuset_changed(cgroup);
            }
            Op::ClearCpuset { cgroup } => {
                self.tree.clear_cpus(cgroup)?;
                self.cpusets.insert(cgroup.clone(), None);
                self.cpuset_changed(cgroup);
            }
            Op::Spawn { cgroup, count, work, comm } => {
                let spec = WorkerSpec::new(work.clone(), comm.as_deref());
                let dir = self.tree.path(cgroup);
                // Recorded first: a partial spawn still shows what was asked.
                track.add_spawn(cgroup, SpawnRecord { count: *count, work: work.describe() });
                for _ in 0..*count {
                    let handle = spawn_worker(&spec, Some(&dir))?;
                    self.workers.push(LiveWorker {
                        handle,
                        life,
                        spawned_in: cgroup.clone(),
                        now_in: cgroup.clone(),
                        affinity: None,
                    });
                }
            }
            Op::RunPayload { name, plugin, args, cgroup } => {
                let dir = self.tree.path(cgroup).to_string_lossy().into_owned();
                let p = LivePayload::start(
                    name,
                    plugin,
                    args.as_deref(),
                    cgroup,
                    &dir,
                    life,
                    self.input.payloads.get(plugin),
                );
                match (p.pid(), &p.outcome) {
                    (Some(pid), _) => self.reporter.payload_started(name, pid, cgroup),
                    (None, Some(o)) => self.reporter.log(format!(
                        "scenario: payload {name}: {}",
                        o.error.as_deref().unwrap_or("did not start")
                    )),
                    (None, None) => {}
                }
                self.payloads.push(p);
                self.disturb(cgroup, track);
            }
            Op::WaitPayload { name } => {
                let deadline = Instant::now() + self.input.payload_limit;
                let done = |ex: &Self| {
                    ex.payloads.iter().filter(|p| p.name == *name).all(LivePayload::done)
                };
                if let Waited::Deadline = self.wait(deadline, &done) {
                    kill_where(
                        &mut self.payloads,
                        |p| p.name == *name,
                        StopReason::TimedOut,
                        &mut *self.reporter,
                    );
                }
            }
            Op::KillPayload { name } => kill_where(
                &mut self.payloads,
                |p| p.name == *name,
                StopReason::Killed,
                &mut *self.reporter,
            ),
            Op::MoveTasks { from, to } => {
                for pid in self.tree.procs(from)? {
                    self.tree.move_pid(pid, to)?;
                }
                for w in self.workers.iter_mut().filter(|w| w.now_in == *from) {
                    w.now_in.clone_from(to);
                    w.handle.restriction_changed();
                }
                self.disturb(from, track);
                self.disturb(to, track);
            }
            Op::SetAffinity { cgroup, cpus } => {
                let cpus = self.resolve(cpus)?;
                for w in self.workers.iter_mut().filter(|w| w.now_in == *cgroup) {
                    pin(w.handle.pid(), &cpus)?;
                    w.affinity = Some(cpus.clone());
                    w.handle.restriction_changed();
                }
                self.disturb(cgroup, track);
            }
            Op::Capture { cgroup, tag } => {
                let pids = self.tree.procs(cgroup)?;
                track.captures.push(CaptureResult {
                    tag: tag.clone(),
                    cgroup: cgroup.clone(),
                    pids,
                });
            }
        }
        Ok(())
    }

    /// Notes each spawned-into cgroup's CPUs as the hold begins.
    pub(super) fn note_hold_cpus(&self, track: &mut Track) {
        for (cgroup, _) in &track.spawns {
            track.hold_cpus.insert(cgroup.clone(), effective_cpus(&self.cpusets, cgroup));
        }
    }

    /// Holds the step; false when the run was aborted meanwhile.
    pub(super) fn hold(&mut self, hold: &Hold) -> bool {
        let now = Instant::now();
        let waited = match *hold {
            Hold::Secs(s) => self.wait(now + Duration::from_secs_f64(s), &|_| false),
            Hold::Ms(ms) => self.wait(now + Duration::from_millis(ms), &|_| false),
            Hold::Fraction(f) => self.wait(now + self.input.duration.mul_f64(f), &|_| false),
            Hold::Payloads => {
                let done = |ex: &Self| {
                    ex.payloads.iter().filter(|p| p.life == Life::Step).all(LivePayload::done)
                };
                let waited = self.wait(now + self.input.payload_limit, &done);
                if let Waited::Deadline = waited {
                    kill_where(
                        &mut self.payloads,
                        |p| p.life == Life::Step,
                        StopReason::TimedOut,
                        &mut *self.reporter,
                    );
                }
                waited
            }
        };
        !matches!(waited, Waited::Aborted)
    }

    /// Pumps payloads and watches the run loop until `until` holds or the
    /// deadline passes.
    fn wait(&mut self, deadline: Instant, until: &dyn Fn(&Self) -> bool) -> Waited {
        loop {
            if until(self) {
                return Waited::Done;
            }
            let now = Instant::now();
            if now >= deadline {
                return Waited::Deadline;
            }
            let slice = (deadline - now).min(Duration::from_millis(20));
            pump_all(&mut self.payloads, slice.as_millis().max(1) as i32, &mut *self.reporter);
            if self.last_keep_going.elapsed() >= Duration::from_millis(100) {
                self.last_keep_going = Instant::now();
                if !self.reporter.keep_going() {
                    self.aborted = true;
                    return Waited::Aborted;
                }
            }
            if self.last_progress.elapsed() >= Duration::from_secs(1) {
                self.last_progress = Instant::now();
                let p = Progress {
                    step: self.step.clone(),
                    elapsed_ms: self.step_started.elapsed().as_millis() as u64,
                    workers: self.workers.len() as u32,
                    work_units: self.workers.iter().map(|w| w.handle.work_units()).sum(),
                    payloads_running: self.payloads.iter().filter(|p| !p.done()).count() as u32,
                };
                self.reporter.progress(&p);
            }
        }
    }

    /// Ends what lives as long as `life`: stops its workers (collecting their
    /// reports), kills its payloads, removes its cgroups, and evaluates checks.
    pub(super) fn teardown(&mut self, life: Life, mut track: Track) -> StepResult {
        let mine = take_where(&mut self.workers, |w| w.life == life);
        let allowed: Vec<Option<Vec<u32>>> = mine.iter().map(|w| self.allowed(w)).collect();
        let places: Vec<String> = mine.iter().map(|w| w.spawned_in.clone()).collect();
        let reports = stop_and_collect(mine.into_iter().map(|w| w.handle).collect());

        let why = if self.aborted { StopReason::Aborted } else { StopReason::StepEnded };
        kill_where(&mut self.payloads, |p| p.life == life, why, &mut *self.reporter);
        let payloads: Vec<_> = take_where(&mut self.payloads, |p| p.life == life)
            .into_iter()
            .filter_map(|p| p.outcome)
            .collect();

        let gone = take_where(&mut self.created, |(_, l)| *l == life);
        for (cgroup, _) in gone.iter().rev() {
            if let Err(e) = self.tree.remove(cgroup) {
                track.errors.push(format!("{} (end): {e:#}", track.name));
            }
            self.cpusets.remove(cgroup);
        }

        let disturbed =
            if life == Life::Scenario { &self.scenario_disturbed } else { &track.disturbed };
        let mut workers: Vec<(String, WorkerResult)> = places
            .into_iter()
            .zip(reports.into_iter().zip(allowed))
            .map(|(c, (report, allowed_cpus))| (c, WorkerResult { report, allowed_cpus }))
            .collect();
        let cgroups: Vec<CgroupResult> = track
            .spawns
            .iter()
            .map(|(cgroup, spawns)| CgroupResult {
                cgroup: cgroup.clone(),
                spawns: spawns.clone(),
                cpus: track.hold_cpus.get(cgroup).cloned().flatten(),
                comparable: !disturbed.contains(cgroup) && !track.disturbed.contains(cgroup),
                workers: take_where(&mut workers, |(c, _)| c == cgroup)
                    .into_iter()
                    .map(|(_, w)| w)
                    .collect(),
            })
            .collect();

        let mut checks = evaluate_cgroup_checks(&track.name, &cgroups, &self.input.scenario.checks);
        checks.extend(payloads.iter().map(|p| payload_check(&track.name, p)));
        if !track.errors.is_empty() {
            checks.push(CheckResult {
                check: format!("ops[{}]", track.name),
                passed: false,
                value: None,
                detail: track.errors.join("\n"),
            });
        }
        StepResult {
            name: track.name,
            duration_ms: track.duration.as_millis() as u64,
            cgroups,
            captures: track.captures,
            payloads,
            checks,
            errors: track.errors,
        }
    }
}

fn take_where<T>(v: &mut Vec<T>, pred: impl Fn(&T) -> bool) -> Vec<T> {
    let (taken, rest) = std::mem::take(v).into_iter().partition(pred);
    *v = rest;
    taken
}

/// Pins every thread of `pid` to `cpus`; threads that exited are skipped.
fn pin(pid: u32, cpus: &[u32]) -> anyhow::Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET stays in bounds
    // for ids below CPU_SETSIZE, which the topology guarantees (<= 64).
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        unsafe { libc::CPU_SET(c as usize, &mut set) };
    }
    let tids: Vec<i32> = match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(dir) => dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => vec![pid as i32],
    };
    for tid in tids {
        // SAFETY: sched_setaffinity on a thread id with a valid cpu_set_t.
        if unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) }
            != 0
        {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                anyhow::bail!(
                    "pin thread {tid} of worker {pid} to \"{}\": {e}",
                    crate::topology::format_cpulist(cpus)
                );
            }
        }
    }
    Ok(())
}
