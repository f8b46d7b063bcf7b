//! Payloads inside a scenario: several at once, each started like the
//! single-payload run does it (placed in its cgroup before exec, in its own
//! process group, output captured), pumped while the executor waits.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::{Life, PayloadSource, Reporter, ScenarioPayload};
use crate::guest::payload::{self, Interrupt, Program, Running};
use crate::scenario::{PayloadOutcome, StopReason, TAIL};

/// Longest a killed payload gets to be reaped and drained.
const KILL_WAIT: Duration = Duration::from_secs(5);

pub(super) struct LivePayload {
    pub name: String,
    pub life: Life,
    running: Option<Running>,
    stopped: Option<StopReason>,
    /// Filled once it has ended.
    pub outcome: Option<PayloadOutcome>,
    plugin: String,
    cgroup: String,
}

impl LivePayload {
    /// Starts `plugin` in the cgroup directory `dir`; a failure to start is
    /// recorded as the outcome rather than returned.
    pub(super) fn start(
        name: &str,
        plugin: &str,
        args: Option<&[String]>,
        cgroup: &str,
        dir: &str,
        life: Life,
        known: Option<&ScenarioPayload>,
    ) -> LivePayload {
        let mut p = LivePayload {
            name: name.into(),
            life,
            running: None,
            stopped: None,
            outcome: None,
            plugin: plugin.into(),
            cgroup: cgroup.into(),
        };
        let started = match known {
            None => Err(anyhow::anyhow!("payload plugin \"{plugin}\" was not packed for this run")),
            Some(sp) => {
                let args = args.unwrap_or(&sp.default_args);
                let program = match &sp.source {
                    PayloadSource::Binary(path) => Program::Exec { path, args, env: &sp.env },
                    PayloadSource::Inline { plugin, context } => {
                        Program::Inline { plugin, context: context.clone(), args, env: &sp.env }
                    }
                };
                payload::start(&program, dir, true, None)
            }
        };
        match started {
            Ok(r) => p.running = Some(r),
            Err(e) => {
                p.outcome = Some(PayloadOutcome { error: Some(format!("{e:#}")), ..p.base() })
            }
        }
        p
    }

    fn base(&self) -> PayloadOutcome {
        PayloadOutcome {
            name: self.name.clone(),
            plugin: self.plugin.clone(),
            cgroup: self.cgroup.clone(),
            ..PayloadOutcome::default()
        }
    }

    pub(super) fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(Running::pid)
    }

    pub(super) fn done(&self) -> bool {
        self.outcome.is_some()
    }

    fn fds(&self) -> Vec<RawFd> {
        self.running.as_ref().map(Running::fds).unwrap_or_default()
    }

    /// Reads ready output without waiting; records the outcome once it ended.
    fn pump(&mut self, reporter: &mut dyn Reporter) {
        let Some(r) = self.running.as_mut() else { return };
        let name = &self.name;
        if r.pump(0, &mut |stdout, chunk| reporter.payload_output(name, stdout, chunk)) {
            let Some(r) = self.running.take() else { return };
            let o = r.finish();
            let tail =
                |d: &[u8]| String::from_utf8_lossy(&d[d.len().saturating_sub(TAIL)..]).into_owned();
            self.outcome = Some(PayloadOutcome {
                pid: Some(o.pid),
                exit_code: o.exit_code,
                signal: o.signal,
                stopped: self.stopped,
                duration_ms: o.duration.as_millis() as u64,
                stdout_tail: tail(&o.stdout.data),
                stderr_tail: tail(&o.stderr.data),
                stdout_truncated: o.stdout.truncated,
                stderr_truncated: o.stderr.truncated,
                ..self.base()
            });
        }
    }

    /// Kills its process group (if it still runs) and notes why.
    fn kill(&mut self, why: StopReason) {
        if let Some(r) = self.running.as_mut() {
            if !r.exited() {
                self.stopped.get_or_insert(why);
                r.interrupt(Interrupt::Watcher);
            }
        }
    }
}

/// Pumps every running payload, then waits up to `wait_ms` for more output.
pub(super) fn pump_all(payloads: &mut [LivePayload], wait_ms: i32, reporter: &mut dyn Reporter) {
    for p in payloads.iter_mut() {
        p.pump(reporter);
    }
    let mut fds: Vec<libc::pollfd> = payloads
        .iter()
        .flat_map(LivePayload::fds)
        .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
        .collect();
    if fds.is_empty() {
        std::thread::sleep(Duration::from_millis(wait_ms.max(0) as u64));
    } else {
        // SAFETY: fds is a valid array of pollfd.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
    }
    // A payload that exited without output left nothing to poll for.
    for p in payloads.iter_mut() {
        p.pump(reporter);
    }
}

/// Kills the payloads `which` selects and waits (bounded) until they are reaped.
pub(super) fn kill_where(
    payloads: &mut [LivePayload],
    which: impl Fn(&LivePayload) -> bool,
    why: StopReason,
    reporter: &mut dyn Reporter,
) {
    for p in payloads.iter_mut().filter(|p| which(p)) {
        p.kill(why);
    }
    let deadline = Instant::now() + KILL_WAIT;
    while payloads.iter().any(|p| which(p) && !p.done()) && Instant::now() < deadline {
        pump_all(payloads, 20, reporter);
    }
    // Give up on reaping: record what is known.
    for p in payloads.iter_mut().filter(|p| which(p) && !p.done()) {
        p.running = None;
        p.outcome = Some(PayloadOutcome {
            stopped: Some(why),
            error: Some("not reaped after SIGKILL".into()),
            ..p.base()
        });
    }
}
