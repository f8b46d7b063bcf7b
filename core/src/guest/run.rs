//! One run, in order: plan → scheduler → payload or scenario (watched) →
//! metrics → checks. Every step reports over the channel as it goes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::overseer::Overseer;
use super::payload::{self, Interrupt, Program};
use super::scenario::{
    self as scenario_exec, PayloadSource, ScenarioPayload, ScenarioRun, SCENARIO_CGROUP,
};
use super::scheduler::Scheduler;
use super::stream::{Streams, CHUNK};
use super::{mounts, out_files, sched_ext, Channel};
use crate::check::{evaluate, evaluate_with, CheckResult, Evidence};
use crate::extract::{extract_metrics, Captured, Extracted};
use crate::metrics::Metric;
use crate::plan::{PayloadPlan, RunPlan, ScenarioPlan, PAYLOAD_CGROUP, PLAN_PATH};
use crate::protocol::{Message, OutputSource, SchedulerFailure, PROTOCOL_VERSION};
use crate::scenario::{metrics as scenario_metrics, Progress, StepResult};
use crate::topology::Topology;

/// `started`: when the init began, in seconds since the kernel's start.
pub fn run(ch: &mut Channel, started: f64) -> anyhow::Result<()> {
    ch.send(&Message::Hello {
        protocol: PROTOCOL_VERSION,
        init_version: env!("CARGO_PKG_VERSION").into(),
        kernel_release: read_trim("/proc/sys/kernel/osrelease"),
        cpus_online: read_trim("/sys/devices/system/cpu/online"),
    });
    // Where the guest's boot time goes: kernel, then the init's own start.
    ch.log(format!(
        "the kernel started the init {started:.2} s after boot; it is ready {:.2} s after boot",
        super::since_boot()
    ));
    // Streamed from the start, so an early hang or crash leaves the boot's log.
    let mut streams = Streams::open(ch);
    streams.poll(ch);
    let result = run_streamed(ch, &mut streams);
    streams.finish(ch);
    result
}

fn run_streamed(ch: &mut Channel, streams: &mut Streams) -> anyhow::Result<()> {
    ch.log(format!("data channel: {}", ch.description));
    let plan = RunPlan::from_json(
        &std::fs::read_to_string(PLAN_PATH).with_context(|| format!("read {PLAN_PATH}"))?,
    )?;
    match crate::topology::GuestTopology::read_from_sysfs(Path::new("/")) {
        Ok(seen) => ch.send(&Message::Topology {
            json: serde_json::to_string(&seen).expect("topology serialises"),
        }),
        Err(e) => ch.log(format!("could not read the topology from sysfs: {e:#}")),
    }

    super::disks::prepare(&plan.disks, ch)?;
    if plan.setup_only {
        return Ok(());
    }
    if plan.scheduler.launch.sched_ext {
        streams.arm_sched_ext_dump(ch);
    }
    let mut sched = Scheduler::start(&plan.scheduler)?;
    let ready = sched.wait_ready(&mut || {
        streams.poll(ch);
    });
    match ready {
        Ok(ready) => ch.send(&Message::SchedulerStarted {
            name: sched.name.clone(),
            pid: ready.pid,
            sched_ext_state: ready.state,
            ops: ready.ops,
            ready_ms: ready.waited.as_millis() as u64,
        }),
        Err(failure) => {
            sched.stop();
            streams.finish(ch);
            ch.send(&Message::SchedulerFailed(failure));
            return Ok(());
        }
    }
    let outcome = match (&plan.payload, &plan.scenario) {
        (Some(payload), _) => run_payload(ch, streams, &plan, payload, &mut sched),
        (None, Some(scenario)) => run_scenario(ch, streams, &plan, scenario, &mut sched),
        (None, None) => Err(anyhow::anyhow!("the run plan names neither a payload nor a scenario")),
    };
    // Whatever happened, the scheduler stops and its log reaches the host.
    let (metrics, notes, results, extractor, error) = match outcome {
        Ok(Finished::Measured { metrics, notes, results, extractor, error }) => {
            (metrics, notes, results, extractor, error)
        }
        Ok(Finished::SchedulerFailed(failure)) => {
            sched.stop();
            streams.finish(ch);
            ch.send(&Message::SchedulerFailed(failure));
            return Ok(());
        }
        Err(e) => {
            sched.stop();
            streams.finish(ch);
            return Err(e);
        }
    };
    sched.stop();
    streams.finish(ch);
    ch.send(&Message::Metrics { metrics, notes, extractor, error });
    ch.send(&Message::Checks { results });
    Ok(())
}

/// How a payload or scenario ended, before its checks are sent.
enum Finished {
    Measured {
        metrics: Vec<Metric>,
        /// The extractor's notes on its metrics.
        notes: Vec<String>,
        results: Vec<CheckResult>,
        extractor: String,
        error: Option<String>,
    },
    SchedulerFailed(SchedulerFailure),
}

fn run_payload(
    ch: &mut Channel,
    streams: &mut Streams,
    plan: &RunPlan,
    payload: &PayloadPlan,
    sched: &mut Scheduler,
) -> anyhow::Result<Finished> {
    let cgroup_dir = mounts::make_cgroup(PAYLOAD_CGROUP)?;
    let timeout = payload.timeout_ms.map(Duration::from_millis);
    let out_dir = &payload.context.out_dir;
    std::fs::create_dir_all(out_dir).with_context(|| format!("create {out_dir}"))?;
    let (args, env) = (&payload.args, &payload.env);
    let program = match &payload.binary {
        Some(path) => Program::Exec { path, args, env },
        None => {
            let context = payload.context.clone();
            Program::Inline { plugin: &payload.plugin, context, args, env }
        }
    };
    let terminal = payload.terminal.then(payload::Terminal::open).transpose()?;
    let overseer = Overseer::new(ch, streams, sched, plan.monitor);
    let mut watch = Watcher {
        o: overseer,
        name: &payload.name,
        outlive_failure: payload.terminal,
        told: false,
    };
    let own_group = payload.own_process_group;
    let outcome = payload::run(&program, &cgroup_dir, own_group, timeout, terminal, &mut watch)?;
    let failure = watch.o.finish();

    ch.send(&Message::SchedExtDuringPayload { state: sched_ext::state(), ops: sched_ext::ops() });
    ch.send(&Message::PayloadEnded {
        exit_code: outcome.exit_code,
        signal: outcome.signal,
        timed_out: matches!(outcome.interrupted, Some(Interrupt::TimedOut)),
        duration_ms: outcome.duration.as_millis() as u64,
        stdout_truncated: outcome.stdout.truncated,
        stderr_truncated: outcome.stderr.truncated,
    });
    out_files::send(ch, Path::new(out_dir), &payload.name);
    if let Some(failure) = failure {
        return Ok(Finished::SchedulerFailed(failure));
    }
    let captured = Captured { stdout: &outcome.stdout.data, stderr: &outcome.stderr.data };
    let (found, error) = match extract_metrics(&payload.extractor, payload.metric_stream, &captured)
    {
        Ok(found) => (found, None),
        Err(e) => (Extracted::default(), Some(format!("{e:#}"))),
    };
    let evidence = Evidence { stderr: &outcome.stderr.data, notes: &found.notes };
    let mut results = evaluate_with(&plan.checks, &found.metrics, outcome.exit_code, &evidence);
    // An extractor that failed is a failed run, whatever else was checked.
    if let Some(e) = &error {
        let detail = e.clone();
        results.push(CheckResult { check: "extract".into(), passed: false, value: None, detail });
    }
    Ok(Finished::Measured {
        metrics: found.metrics,
        notes: found.notes,
        results,
        extractor: payload.extractor.name.clone(),
        error,
    })
}

fn run_scenario(
    ch: &mut Channel,
    streams: &mut Streams,
    plan: &RunPlan,
    sp: &ScenarioPlan,
    sched: &mut Scheduler,
) -> anyhow::Result<Finished> {
    let topology: Topology = plan.topology.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut payloads = BTreeMap::new();
    for p in &sp.payloads {
        let source = match &p.binary {
            Some(b) => PayloadSource::Binary(b.clone()),
            None => PayloadSource::Inline { plugin: p.plugin.clone(), context: p.context.clone() },
        };
        std::fs::create_dir_all(&p.context.out_dir)
            .with_context(|| format!("create {}", p.context.out_dir))?;
        let (default_args, env) = (p.default_args.clone(), p.env.clone());
        payloads.insert(p.name.clone(), ScenarioPayload { source, default_args, env });
    }
    let duration = Duration::from_millis(sp.duration_ms);
    let input = ScenarioRun {
        scenario: &sp.scenario,
        topology: &topology,
        duration,
        cgroup_mount: mounts::CGROUP_ROOT.into(),
        root: SCENARIO_CGROUP.into(),
        payloads,
        payload_limit: duration,
    };
    let mut reporter = ScenarioReporter(Overseer::new(ch, streams, sched, plan.monitor));
    let result = scenario_exec::run(&input, &mut reporter)?;
    let failure = reporter.0.finish();
    for p in &sp.payloads {
        out_files::send(ch, Path::new(&p.context.out_dir), &p.name);
    }
    ch.send(&Message::SchedExtDuringPayload { state: sched_ext::state(), ops: sched_ext::ops() });
    ch.send(&Message::ScenarioDone { name: result.name.clone(), error: result.error.clone() });
    if let Some(failure) = failure {
        return Ok(Finished::SchedulerFailed(failure));
    }
    let metrics = scenario_metrics(&result);
    let mut results: Vec<CheckResult> = result.checks().cloned().collect();
    if let Some(e) = &result.error {
        results.push(CheckResult {
            check: "scenario completed".into(),
            passed: false,
            value: None,
            detail: e.clone(),
        });
    }
    // A scenario has no exit code of its own: `exit==N` checks fail saying so.
    results.extend(evaluate(&plan.checks, &metrics, None, &[]));
    let notes = Vec::new();
    Ok(Finished::Measured { metrics, notes, results, extractor: "scenario".into(), error: None })
}

/// Forwards a scenario's progress; its overseer watches the scheduler.
struct ScenarioReporter<'a>(Overseer<'a>);

impl scenario_exec::Reporter for ScenarioReporter<'_> {
    fn step_started(&mut self, step: &str) {
        self.0.ch.log(format!("scenario step `{step}`"));
    }

    fn log(&mut self, text: String) {
        self.0.ch.log(text);
    }

    fn payload_started(&mut self, name: &str, pid: u32, cgroup: &str) {
        self.0.ch.send(&Message::PayloadStarted {
            name: name.to_string(),
            pid,
            cgroup: cgroup.to_string(),
        });
    }

    fn payload_output(&mut self, name: &str, stdout: bool, chunk: &[u8]) {
        for part in chunk.chunks(CHUNK) {
            self.0.ch.send(&Message::ScenarioOutput {
                name: name.to_string(),
                stdout,
                data: part.to_vec(),
            });
        }
    }

    fn progress(&mut self, progress: &Progress) {
        self.0.ch.send(&Message::ScenarioProgress(progress.clone()));
    }

    fn step_finished(&mut self, result: &StepResult) {
        self.0.ch.send(&Message::ScenarioStep(result.clone()));
    }

    fn keep_going(&mut self) -> bool {
        self.0.keep_going()
    }
}

/// Forwards output while the payload runs; its overseer watches the scheduler.
struct Watcher<'a> {
    o: Overseer<'a>,
    name: &'a str,
    /// An interactive shell goes on when the scheduler fails (its user
    /// wants to look around); the failure is told at once instead.
    outlive_failure: bool,
    told: bool,
}

impl payload::Watch for Watcher<'_> {
    fn started(&mut self, pid: u32) {
        self.o.ch.send(&Message::PayloadStarted {
            name: self.name.to_string(),
            pid,
            cgroup: format!("/{PAYLOAD_CGROUP}"),
        });
    }

    fn output(&mut self, stdout: bool, chunk: &[u8]) {
        let source = if stdout { OutputSource::PayloadStdout } else { OutputSource::PayloadStderr };
        for part in chunk.chunks(CHUNK) {
            self.o.ch.send(&Message::Output { source, data: part.to_vec() });
        }
    }

    fn keep_going(&mut self) -> bool {
        let ok = self.o.keep_going();
        if ok || !self.outlive_failure {
            return ok;
        }
        if !std::mem::replace(&mut self.told, true) {
            if let Some(f) = self.o.failure().cloned() {
                self.o.ch.send(&Message::SchedulerFailed(f));
            }
        }
        true
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}
