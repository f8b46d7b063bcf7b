//! What the host learned from the guest, collected from decoded messages in
//! arrival order. Pure: fed by the session, read by the verdict.

use ktstr_core::check::CheckResult;
use ktstr_core::metrics::Metric;
use std::collections::BTreeMap;

use ktstr_core::protocol::{
    DecodeEvent, Message, MonitorSummary, OutputSource, SchedulerFailure, PROTOCOL_VERSION,
};
use ktstr_core::scenario::StepResult;

#[derive(Debug, Default)]
pub struct Record {
    /// Copy the payload's output to our stdout and stderr as it arrives.
    pub tee_payload: bool,
    pub hello: Option<(String, String)>,
    /// Set when the guest init speaks another protocol version: the run is refused.
    pub protocol_mismatch: Option<String>,
    /// Messages the guest had to cut down or drop to fit a frame: (kind, note).
    pub truncated: Vec<(String, String)>,
    pub logs: Vec<String>,
    pub topology_json: Option<String>,
    pub scheduler_ready: Option<SchedulerReady>,
    pub payload_pid: Option<u32>,
    pub payload_end: Option<PayloadEnd>,
    pub sched_ext_during_payload: Option<(String, String)>,
    pub metrics: Vec<Metric>,
    pub extractor: Option<String>,
    pub extract_error: Option<String>,
    /// What the extractor said about its metrics.
    pub notes: Vec<String>,
    /// Files payloads left in their `out_dir`, by `payload/relative/path`.
    pub out_files: BTreeMap<String, Vec<u8>>,
    /// Files of an `out_dir` the guest did not send: (path, why).
    pub out_skipped: Vec<(String, String)>,
    pub checks: Vec<CheckResult>,
    pub scheduler_failure: Option<SchedulerFailure>,
    /// `Some` once the guest said its last word; the inner error is the init's own.
    pub finished: Option<Option<String>>,
    pub payload_stdout: Vec<u8>,
    pub payload_stderr: Vec<u8>,
    pub scheduler_log: Vec<u8>,
    /// The guest's kernel log, `[secs] text` lines.
    pub kernel_log: Vec<u8>,
    /// The kernel's sched_ext dump (the `sched_ext_dump` tracepoint's lines).
    pub sched_ext_dump: Vec<u8>,
    /// The run-queue monitor's samples (JSON lines) and its summary.
    pub monitor_log: Vec<u8>,
    pub monitor: Option<MonitorSummary>,
    /// The disks as the guest found and set them up.
    pub disks: Vec<ktstr_core::disk::DiskReport>,
    /// Output bytes past a stream's cap, dropped (the guest caps them too).
    pub dropped_bytes: usize,
    pub skipped_bytes: usize,
    /// Scenario runs: each step's results as it ended (the backdrop last).
    pub scenario_steps: Vec<StepResult>,
    /// Scenario runs: (name, why it stopped early) once it ended.
    pub scenario_done: Option<(String, Option<String>)>,
    /// Scenario payloads' output by instance name: (stdout, stderr).
    pub scenario_outputs: BTreeMap<String, (Vec<u8>, Vec<u8>)>,
}

#[derive(Debug, Clone)]
pub struct SchedulerReady {
    pub pid: Option<u32>,
    pub state: String,
    pub ops: String,
    pub ready_ms: u64,
}

/// The payload's output, on to ours (`ktstr shell --exec`); a closed pipe
/// on our side loses only the copy.
fn tee(source: OutputSource, data: &[u8]) {
    use std::io::Write;
    let _ = match source {
        OutputSource::PayloadStdout => {
            std::io::stdout().write_all(data).and_then(|()| std::io::stdout().flush())
        }
        OutputSource::PayloadStderr => std::io::stderr().write_all(data),
        _ => Ok(()),
    };
}

#[derive(Debug, Clone)]
pub struct PayloadEnd {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
}

impl Record {
    /// Applies one decoder event; returns a progress line worth showing.
    pub fn apply(&mut self, event: DecodeEvent) -> Option<String> {
        let msg = match event {
            DecodeEvent::Message(m) => m,
            DecodeEvent::Skipped { bytes, reason } => {
                self.skipped_bytes += bytes;
                return Some(format!("data channel: skipped {bytes} bytes ({reason})"));
            }
        };
        match msg {
            Message::Hello { protocol, init_version, kernel_release, cpus_online } => {
                if protocol != PROTOCOL_VERSION {
                    let e = format!(
                        "the guest init (ktstr-init {init_version}) speaks protocol \
                        {protocol}, this ktstr speaks {PROTOCOL_VERSION}: use the ktstr-init \
                        built with this ktstr"
                    );
                    self.protocol_mismatch = Some(e.clone());
                    return Some(e);
                }
                self.hello = Some((kernel_release.clone(), cpus_online.clone()));
                return Some(format!(
                    "guest up: kernel {kernel_release}, cpus {cpus_online}, init \
                    {init_version}, protocol {protocol}"
                ));
            }
            Message::Log { text } => {
                self.logs.push(text.clone());
                return Some(text);
            }
            Message::Topology { json } => self.topology_json = Some(json),
            Message::SchedulerStarted { name, pid, sched_ext_state, ops, ready_ms } => {
                let line = format!(
                    "scheduler {name} ready after {ready_ms} ms (sched_ext \
                    {sched_ext_state}, ops `{ops}`)"
                );
                self.scheduler_ready =
                    Some(SchedulerReady { pid, state: sched_ext_state, ops, ready_ms });
                return Some(line);
            }
            Message::PayloadStarted { name, pid, cgroup } => {
                self.payload_pid = Some(pid);
                return Some(format!("payload {name} started (pid {pid}, cgroup {cgroup})"));
            }
            Message::Output { source, data } => {
                if self.tee_payload {
                    tee(source, &data);
                }
                let buf = match source {
                    OutputSource::PayloadStdout => &mut self.payload_stdout,
                    OutputSource::PayloadStderr => &mut self.payload_stderr,
                    OutputSource::Scheduler => &mut self.scheduler_log,
                    OutputSource::Kernel => &mut self.kernel_log,
                    OutputSource::SchedExtDump => &mut self.sched_ext_dump,
                    OutputSource::Monitor => &mut self.monitor_log,
                };
                let dropped = append_capped(buf, &data, source.cap());
                if dropped > 0 && self.dropped_bytes == 0 {
                    self.dropped_bytes += dropped;
                    return Some(format!(
                        "{} is over its cap; the rest is dropped",
                        source.file_name()
                    ));
                }
                self.dropped_bytes += dropped;
            }
            Message::PayloadEnded {
                exit_code,
                signal,
                timed_out,
                duration_ms,
                stdout_truncated,
                stderr_truncated,
            } => {
                self.payload_end = Some(PayloadEnd {
                    exit_code,
                    signal,
                    timed_out,
                    duration_ms,
                    stdout_truncated,
                    stderr_truncated,
                });
                let how = match (exit_code, signal) {
                    (Some(c), _) => format!("exit code {c}"),
                    (None, Some(s)) => format!("signal {s}"),
                    _ => "unknown status".into(),
                };
                return Some(format!(
                    "payload ended after {duration_ms} ms: {how}{}",
                    if timed_out { " (timed out)" } else { "" }
                ));
            }
            Message::SchedExtDuringPayload { state, ops } => {
                self.sched_ext_during_payload = Some((state, ops))
            }
            // A message over the frame limit comes in parts: append them.
            Message::Metrics { metrics, notes, extractor, error } => {
                self.metrics.extend(metrics);
                self.notes.extend(notes);
                self.extractor = Some(extractor);
                self.extract_error = error.or(self.extract_error.take());
            }
            Message::Checks { results } => self.checks.extend(results),
            Message::SchedulerFailed(f) => {
                // An interactive shell's guest tells it at once, then again at the end.
                if self.scheduler_failure.as_ref() == Some(&f) {
                    return None;
                }
                let line = format!("scheduler failed: {}", f.reason);
                self.scheduler_failure = Some(f);
                return Some(line);
            }
            Message::Finish(f) => self.finished = Some(f.init_error),
            Message::ScenarioStep(step) => {
                let failed = step.checks.iter().filter(|c| !c.passed).count();
                let line = format!(
                    "scenario step `{}` ended after {} ms: {} checks, {failed} failed",
                    step.name,
                    step.duration_ms,
                    step.checks.len()
                );
                self.scenario_steps.push(step);
                return Some(line);
            }
            Message::ScenarioProgress(p) => {
                return Some(format!(
                    "  {} +{:.1}s: {} workers, {} work units, {} payloads running",
                    p.step,
                    p.elapsed_ms as f64 / 1000.0,
                    p.workers,
                    p.work_units,
                    p.payloads_running
                ));
            }
            Message::ScenarioOutput { name, stdout, data } => {
                let (out, err) = self.scenario_outputs.entry(name).or_default();
                if stdout { out } else { err }.extend(data);
            }
            Message::OutFile { path, data } => {
                self.out_files.entry(path).or_default().extend(data);
            }
            Message::OutFileSkipped { path, reason } => {
                let line = format!("{path} not brought back: {reason}");
                self.out_skipped.push((path, reason));
                return Some(line);
            }
            Message::Truncated { what, note } => {
                let line = format!("the guest cut a {what} message: {note}");
                self.truncated.push((what, note));
                return Some(line);
            }
            Message::Monitor(summary) => self.monitor = Some(summary),
            Message::Disk(d) => {
                let line = format!("disk {}: {}", d.name, d.describe());
                self.disks.push(d);
                return Some(line);
            }
            Message::ScenarioDone { name, error } => {
                let line = match &error {
                    None => format!("scenario {name} done"),
                    Some(e) => format!("scenario {name} stopped early: {e}"),
                };
                self.scenario_done = Some((name, error));
                return Some(line);
            }
        }
        None
    }
}

/// Appends what fits under `cap`; returns how many bytes did not.
fn append_capped(buf: &mut Vec<u8>, data: &[u8], cap: usize) -> usize {
    let room = cap.saturating_sub(buf.len()).min(data.len());
    buf.extend_from_slice(&data[..room]);
    data.len() - room
}

#[cfg(test)]
mod tests {
    use super::*;
    use ktstr_core::metrics::Stream;

    fn apply(r: &mut Record, m: Message) -> Option<String> {
        r.apply(DecodeEvent::Message(m))
    }

    #[test]
    fn another_protocol_is_refused_by_name() {
        let mut r = Record::default();
        let hello = Message::Hello {
            protocol: PROTOCOL_VERSION + 1,
            init_version: "9.9.9".into(),
            kernel_release: "6.12".into(),
            cpus_online: "0-1".into(),
        };
        let line = apply(&mut r, hello).unwrap();
        assert!(line.contains(&format!("speaks protocol {}", PROTOCOL_VERSION + 1)), "{line}");
        assert_eq!(r.protocol_mismatch.as_deref(), Some(line.as_str()));
        assert!(r.hello.is_none());
    }

    #[test]
    fn metrics_in_parts_are_appended() {
        let mut r = Record::default();
        let m = |n: &str| Metric {
            name: n.into(),
            value: 1.0,
            unit: String::new(),
            stream: Stream::Stdout,
        };
        let part = |metrics, notes: Vec<String>, error: Option<String>| Message::Metrics {
            metrics,
            notes,
            extractor: "json".into(),
            error,
        };
        apply(&mut r, part(vec![m("a")], vec!["n".into()], Some("e".into())));
        apply(&mut r, part(vec![m("b")], vec![], None));
        let names: Vec<&str> = r.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!((r.notes.len(), r.extract_error.as_deref()), (1, Some("e")));
    }

    fn output(source: OutputSource, data: &[u8]) -> DecodeEvent {
        DecodeEvent::Message(Message::Output { source, data: data.to_vec() })
    }

    #[test]
    fn streams_are_kept_apart_and_capped() {
        let mut r = Record::default();
        r.apply(output(OutputSource::Kernel, b"[ 0.1] booted\n"));
        r.apply(output(OutputSource::Scheduler, b"stats\n"));
        r.apply(output(OutputSource::Monitor, b"{\"t_ms\":0}\n"));
        let summary = MonitorSummary { samples: 1, ..Default::default() };
        r.apply(DecodeEvent::Message(Message::Monitor(summary.clone())));
        assert_eq!(
            (r.monitor_log.as_slice(), r.monitor.as_ref()),
            (&b"{\"t_ms\":0}\n"[..], Some(&summary))
        );
        let cap = OutputSource::SchedExtDump.cap();
        assert!(r.apply(output(OutputSource::SchedExtDump, &vec![b'x'; cap - 1])).is_none());
        let line = r.apply(output(OutputSource::SchedExtDump, b"yz")).unwrap();
        assert!(line.contains("sched_ext_dump.txt"), "{line}");
        assert_eq!(r.kernel_log, b"[ 0.1] booted\n");
        assert_eq!(r.scheduler_log, b"stats\n");
        assert_eq!(r.sched_ext_dump.len(), cap);
        assert_eq!(r.dropped_bytes, 1);
    }
}
