//! Starting, watching and stopping the scheduler under test.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{kmsg, sched_ext};
use crate::plan::SchedulerPlan;
use crate::plugin::StopSignal;
use crate::protocol::SchedulerFailure;

/// Where the scheduler's stdout and stderr go (one file, interleaved).
pub const LOG_PATH: &str = "/tmp/scheduler.log";
const TAIL: usize = 4096;

pub struct Scheduler {
    pub name: String,
    child: Option<Child>,
    sched_ext: bool,
    ops_prefix: Option<String>,
    stop_signal: StopSignal,
    ready_timeout: Duration,
    stop_timeout: Duration,
}

/// A started scheduler that became ready.
pub struct Ready {
    pub pid: Option<u32>,
    pub state: String,
    pub ops: String,
    pub waited: Duration,
}

impl Scheduler {
    /// Starts what the launcher said to run (nothing for EEVDF).
    pub fn start(plan: &SchedulerPlan) -> anyhow::Result<Scheduler> {
        let spec = &plan.launch;
        let mut sched = Scheduler {
            name: plan.requested.clone(),
            child: None,
            sched_ext: spec.sched_ext,
            ops_prefix: spec.ops_prefix.clone(),
            stop_signal: spec.stop_signal,
            ready_timeout: Duration::from_millis(spec.ready_timeout_ms.into()),
            stop_timeout: Duration::from_millis(spec.stop_timeout_ms.into()),
        };
        if spec.binary.is_none() {
            return Ok(sched);
        }
        let binary = plan
            .binary
            .as_deref()
            .context("the launcher names a binary but the host packed none")?;
        let log = File::create(LOG_PATH).context("create the scheduler log")?;
        let args = spec.args.iter().cloned().chain(plan.extra_args.iter().cloned());
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start scheduler {binary}"))?;
        sched.child = Some(child);
        Ok(sched)
    }

    /// Waits until sched_ext is enabled with the expected ops, or fails with
    /// the evidence when the scheduler exits or the wait runs out; `tick`
    /// runs between checks (it streams the logs).
    pub fn wait_ready(&mut self, tick: &mut dyn FnMut()) -> Result<Ready, SchedulerFailure> {
        let start = Instant::now();
        let pid = self.child.as_ref().map(Child::id);
        if !self.sched_ext {
            return Ok(Ready {
                pid,
                state: sched_ext::state(),
                ops: sched_ext::ops(),
                waited: Duration::ZERO,
            });
        }
        loop {
            if let Some(failure) = self.exited() {
                return Err(failure);
            }
            let (state, ops) = (sched_ext::state(), sched_ext::ops());
            if state == "missing" {
                return Err(self.failure(
                    "this kernel has no sched_ext (/sys/kernel/sched_ext/state is missing)".into(),
                ));
            }
            let ops_ok = self.ops_prefix.as_deref().is_none_or(|p| ops.starts_with(p));
            if state == "enabled" && ops_ok {
                return Ok(Ready { pid, state, ops, waited: start.elapsed() });
            }
            if start.elapsed() > self.ready_timeout {
                let want = self.ops_prefix.as_deref().unwrap_or("any");
                return Err(self.failure(format!(
                    "not ready after {:?}: sched_ext state `{state}`, ops `{ops}` (waiting for `enabled` with ops starting `{want}`)",
                    self.ready_timeout
                )));
            }
            tick();
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Checks the running scheduler: its process and sched_ext's state.
    pub fn check(&mut self) -> Result<(), SchedulerFailure> {
        if !self.sched_ext {
            return Ok(());
        }
        if let Some(failure) = self.exited() {
            return Err(failure);
        }
        match sched_ext::state().as_str() {
            "enabled" => Ok(()),
            other => Err(self.failure(format!("sched_ext left `enabled` (state now `{other}`) while the scheduler process still runs"))),
        }
    }

    fn exited(&mut self) -> Option<SchedulerFailure> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(self.failure(format!("scheduler process exited ({status})")))
    }

    /// A failure with the scheduler's output tail and the kernel's lines.
    pub fn failure(&self, reason: String) -> SchedulerFailure {
        SchedulerFailure { reason, output_tail: log_tail(), kernel_log: kmsg::sched_ext_lines() }
    }

    /// Stops the scheduler: its stop signal, then SIGKILL after the timeout.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let sig = match self.stop_signal {
            StopSignal::Interrupt => libc::SIGINT,
            _ => libc::SIGTERM,
        };
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(child.id() as i32, sig) };
        let deadline = Instant::now() + self.stop_timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn log_tail() -> String {
    let b = std::fs::read(LOG_PATH).unwrap_or_default();
    String::from_utf8_lossy(&b[b.len().saturating_sub(TAIL)..]).into_owned()
}
