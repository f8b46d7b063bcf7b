//! The `--json` document (also `result.json` in the artifacts): every field
//! a machine reads, section by section, from the same [`Outcome`] the
//! human summary reads.

use serde_json::{json, Value};

use super::{better, text_tail, Class, EngineInfo, Outcome, LOG_TAIL_LINES};

impl Outcome<'_> {
    pub fn to_json(&self) -> Value {
        let r = self.record;
        let console = self.console;
        json!({
            "verdict": self.verdict,
            "exit_code": self.verdict.exit_code(),
            "reason": self.reason(),
            "class": self.class.map(Class::as_str),
            "ended_by": self.vm_end.as_str(),
            "console_reports": {
                "seen": console.seen,
                "sched_ext": console.sched_ext,
                "reports": console.reports(),
            },
            "truncated": r.truncated.iter()
                .map(|(what, note)| json!({"what": what, "note": note}))
                .collect::<Vec<_>>(),
            "engine": self.engine.to_json(),
            "kernel": self.kernel,
            "topology": self.topology_json(),
            "scheduler": self.scheduler_json(),
            "kernel_log_tail": text_tail(&r.kernel_log, LOG_TAIL_LINES),
            "monitor": r.monitor,
            "disks": self.disks,
            "payload": self.payload_json(),
            "extractor": r.extractor,
            "extract_error": r.extract_error,
            "scenario": r.scenario_done.as_ref().map(|(name, error)| {
                json!({ "name": name, "error": error, "steps": r.scenario_steps })
            }),
            "extractor_notes": r.notes,
            "metrics": self.metrics_json(),
            "checks": r.checks,
            "out_files": r.out_files.iter()
                .map(|(p, d)| json!({"path": format!("out/{p}"), "bytes": d.len()}))
                .collect::<Vec<_>>(),
            "out_skipped": r.out_skipped.iter()
                .map(|(p, why)| json!({"path": p, "reason": why}))
                .collect::<Vec<_>>(),
            "guest_log": r.logs,
            "console_tail": self.console_tail,
            "kernel_panic": self.kernel_panic,
            "kernel_warnings": {
                "seen": self.kernel_warnings.1,
                "kept": self.kernel_warnings.0,
            },
            "artifacts": self.artifacts,
            "wall_ms": self.wall_ms,
            "timeline": self.timeline.to_json(),
        })
    }

    fn topology_json(&self) -> Value {
        let seen = self.record.topology_json.as_deref();
        json!({
            "requested": self.topology,
            "mismatches": self.topology_mismatches,
            "from": self.topology_from.map(|s| &s.source),
            "approximated": self.topology_from.map(|s| &s.notes),
            "seen": seen.and_then(|j| serde_json::from_str::<Value>(j).ok()),
        })
    }

    fn scheduler_json(&self) -> Value {
        let r = self.record;
        let ready = r.scheduler_ready.as_ref().map(|s| {
            json!({
                "pid": s.pid,
                "sched_ext_state": s.state,
                "ops": s.ops,
                "ready_ms": s.ready_ms,
            })
        });
        let during = r.sched_ext_during_payload.as_ref();
        let dump =
            (!r.sched_ext_dump.is_empty()).then(|| String::from_utf8_lossy(&r.sched_ext_dump));
        json!({
            "requested": self.scheduler,
            "ready": ready,
            "during_payload": during.map(|(s, o)| json!({"sched_ext_state": s, "ops": o})),
            "failure": r.scheduler_failure,
            "load_error": self.load_error(),
            "log_tail": text_tail(&r.scheduler_log, LOG_TAIL_LINES),
            "sched_ext_dump": dump,
        })
    }

    fn payload_json(&self) -> Value {
        let r = self.record;
        let end = r.payload_end.as_ref().map(|e| {
            json!({
                "exit_code": e.exit_code,
                "signal": e.signal,
                "timed_out": e.timed_out,
                "duration_ms": e.duration_ms,
                "stdout_truncated": e.stdout_truncated,
                "stderr_truncated": e.stderr_truncated,
            })
        });
        json!({ "command": self.payload, "pid": r.payload_pid, "end": end })
    }

    /// Each metric as the guest sent it, with `better` where a hint says.
    fn metrics_json(&self) -> Vec<Value> {
        let metrics = self.record.metrics.iter();
        metrics
            .map(|m| {
                let mut v = serde_json::to_value(m).expect("metrics serialise");
                if let Some(h) = self.hint(&m.name) {
                    v["better"] = json!(better(h.polarity));
                }
                v
            })
            .collect()
    }
}

impl EngineInfo {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "peak_rss_kib": self.peak_rss_kib,
            "end": self.end_detail,
            "stop_ms": self.stop_ms,
            "vcpus_at_stop": self.vcpus_at_stop,
        })
    }
}
