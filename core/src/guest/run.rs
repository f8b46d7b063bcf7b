//! One run, in order: plan → plugins → scheduler → payload (watched) →
//! extraction → checks. Every step reports over the channel as it goes.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::payload::{self, Interrupt, Program};
use super::scheduler::{self, Scheduler};
use super::{mounts, sched_ext, Channel};
use crate::check::evaluate;
use crate::extract::{extract_metrics, Captured};
use crate::plan::{RunPlan, PAYLOAD_CGROUP, PLAN_PATH};
use crate::plugin::load;
use crate::protocol::{Message, OutputSource, SchedulerFailure, PROTOCOL_VERSION};

/// Output is forwarded in chunks no bigger than this.
const CHUNK: usize = 32 << 10;

pub fn run(ch: &mut Channel) -> anyhow::Result<()> {
    ch.send(&Message::Hello {
        protocol: PROTOCOL_VERSION,
        init_version: env!("CARGO_PKG_VERSION").into(),
        kernel_release: read_trim("/proc/sys/kernel/osrelease"),
        cpus_online: read_trim("/sys/devices/system/cpu/online"),
    });
    ch.log(format!("data channel: {}", ch.description));
    let plan = RunPlan::from_json(&std::fs::read_to_string(PLAN_PATH).with_context(|| format!("read {PLAN_PATH}"))?)?;
    match crate::topology::GuestTopology::read_from_sysfs(Path::new("/")) {
        Ok(seen) => ch.send(&Message::Topology { json: serde_json::to_string(&seen).expect("topology serialises") }),
        Err(e) => ch.log(format!("could not read the topology from sysfs: {e:#}")),
    }

    let load_plugin = |p: &str| load(Path::new(p)).map_err(|e| anyhow::anyhow!("{e}"));
    let launcher = load_plugin(&plan.scheduler.plugin)?;
    let extractor = load_plugin(&plan.payload.extractor)?;
    let inline = match plan.payload.binary {
        None => Some(load_plugin(&plan.payload.plugin)?),
        Some(_) => None,
    };

    let mut sched = Scheduler::start(&plan.scheduler, &launcher)?;
    match sched.wait_ready() {
        Ok(ready) => ch.send(&Message::SchedulerStarted {
            name: sched.name.clone(),
            pid: ready.pid,
            sched_ext_state: ready.state,
            ops: ready.ops,
            ready_ms: ready.waited.as_millis() as u64,
        }),
        Err(failure) => {
            send_scheduler_log(ch);
            ch.send(&Message::SchedulerFailed(failure));
            sched.stop();
            return Ok(());
        }
    }

    let cgroup_dir = mounts::make_cgroup(PAYLOAD_CGROUP)?;
    let program = match (&plan.payload.binary, &inline) {
        (Some(path), _) => Program::Exec { path, args: &plan.payload.args },
        (None, Some(plugin)) => Program::Inline { plugin, args: &plan.payload.args },
        (None, None) => unreachable!("inline plugin loaded above"),
    };
    let mut watch = Watcher { ch, sched: &mut sched, failure: None, name: &plan.payload.name };
    let timeout = plan.payload.timeout_ms.map(Duration::from_millis);
    let outcome = payload::run(&program, &cgroup_dir, plan.payload.own_process_group, timeout, &mut watch)?;
    let failure = watch.failure.take();
    drop(watch);

    ch.send(&Message::SchedExtDuringPayload { state: sched_ext::state(), ops: sched_ext::ops() });
    ch.send(&Message::PayloadEnded {
        exit_code: outcome.exit_code,
        signal: outcome.signal,
        timed_out: matches!(outcome.interrupted, Some(Interrupt::TimedOut)),
        duration_ms: outcome.duration.as_millis() as u64,
        stdout_truncated: outcome.stdout.truncated,
        stderr_truncated: outcome.stderr.truncated,
    });
    if let Some(failure) = failure {
        send_scheduler_log(ch);
        ch.send(&Message::SchedulerFailed(failure));
        sched.stop();
        return Ok(());
    }
    sched.stop();
    send_scheduler_log(ch);

    let captured = Captured { stdout: &outcome.stdout.data, stderr: &outcome.stderr.data };
    let (metrics, error) = match extract_metrics(&extractor, &captured) {
        Ok(m) => (m, None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    let results = evaluate(&plan.checks, &metrics, outcome.exit_code, &outcome.stderr.data);
    ch.send(&Message::Metrics { metrics, extractor: extractor.info.name.clone(), error });
    ch.send(&Message::Checks { results });
    Ok(())
}

/// Forwards output and watches the scheduler while the payload runs.
struct Watcher<'a> {
    ch: &'a mut Channel,
    sched: &'a mut Scheduler,
    failure: Option<SchedulerFailure>,
    name: &'a str,
}

impl payload::Watch for Watcher<'_> {
    fn started(&mut self, pid: u32) {
        self.ch.send(&Message::PayloadStarted { name: self.name.to_string(), pid, cgroup: format!("/{PAYLOAD_CGROUP}") });
    }

    fn output(&mut self, stdout: bool, chunk: &[u8]) {
        let source = if stdout { OutputSource::PayloadStdout } else { OutputSource::PayloadStderr };
        for part in chunk.chunks(CHUNK) {
            self.ch.send(&Message::Output { source, data: part.to_vec() });
        }
    }

    fn keep_going(&mut self) -> bool {
        match self.sched.check() {
            Ok(()) => true,
            Err(f) => {
                self.failure = Some(f);
                false
            }
        }
    }
}

fn send_scheduler_log(ch: &mut Channel) {
    for part in scheduler::log_bytes().chunks(CHUNK) {
        ch.send(&Message::Output { source: OutputSource::Scheduler, data: part.to_vec() });
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}
