//! Starting, watching and stopping the scheduler under test.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{kmsg, sched_ext};
use crate::plan::SchedulerPlan;
use crate::plugin::StopSignal;
use crate::protocol::{SchedulerFailure, STUCK_DISABLING};

/// Where the scheduler's stdout and stderr go (one file, interleaved).
pub const LOG_PATH: &str = "/tmp/scheduler.log";
const TAIL: usize = 4096;
/// The kernel leaves `disabling` within a second or so; longer is a wedge.
const DISABLING_GRACE: Duration = Duration::from_secs(3);

pub struct Scheduler {
    pub name: String,
    child: Option<Child>,
    sched_ext: bool,
    ops_prefix: Option<String>,
    stop_signal: StopSignal,
    ready_timeout: Duration,
    stop_timeout: Duration,
    /// When sched_ext was first seen `disabling` (cleared when it leaves it).
    disabling_since: Option<Instant>,
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
            disabling_since: None,
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
                    "not ready after {:?}: sched_ext state `{state}`, ops `{ops}` (waiting for \
                        `enabled` with ops starting `{want}`)",
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
        let state = sched_ext::state();
        if state != "disabling" {
            self.disabling_since = None;
        }
        let since = (state == "disabling")
            .then(|| *self.disabling_since.get_or_insert_with(Instant::now))
            .map(|t| t.elapsed());
        judge(&state, since).map_err(|reason| self.failure(reason))
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
        // A task stuck in the kernel (a wedged sched_ext disable) survives
        // SIGKILL: never wait for it without end, the results must go out.
        let deadline = Instant::now() + KILL_WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "ktstr-init: scheduler pid {} did not exit {} s after SIGKILL (stuck in the \
                kernel?); going on without it",
            child.id(),
            KILL_WAIT.as_secs()
        );
    }
}

/// How long a killed scheduler gets to be reaped before the init moves on.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// sched_ext's state while the scheduler runs: `enabled` is fine, and so is
/// `disabling` for a moment (the kernel is ending it; `disabled` follows
/// with its reason). Anything else, or `disabling` for long, is a failure.
fn judge(state: &str, disabling_for: Option<Duration>) -> Result<(), String> {
    match (state, disabling_for) {
        ("enabled", _) => Ok(()),
        ("disabling", Some(t)) if t <= DISABLING_GRACE => Ok(()),
        ("disabling", t) => Err(format!(
            "{STUCK_DISABLING} for {:.1} s: the kernel began disabling the scheduler and never \
                finished",
            t.unwrap_or_default().as_secs_f64()
        )),
        (other, _) => Err(format!(
            "sched_ext left `enabled` (state now `{other}`) while the scheduler process still runs"
        )),
    }
}

fn log_tail() -> String {
    let b = std::fs::read(LOG_PATH).unwrap_or_default();
    String::from_utf8_lossy(&b[b.len().saturating_sub(TAIL)..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabling_is_a_failure_only_when_it_lasts() {
        assert_eq!(judge("enabled", None), Ok(()));
        assert_eq!(judge("disabling", Some(Duration::from_secs(1))), Ok(()));
        let stuck = judge("disabling", Some(Duration::from_secs(4))).unwrap_err();
        assert!(stuck.starts_with(STUCK_DISABLING) && stuck.contains("4.0 s"), "{stuck}");
        assert!(judge("disabled", None).unwrap_err().contains("state now `disabled`"));
    }
}
