//! The one verdict of a run, built once from the record and how the VM
//! ended; the summary, the JSON and the exit code all come from it.

use serde::Serialize;

use super::console_watch::Class;
use super::record::Record;
use super::scheduler_end;
use crate::exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Pass,
    CheckFailed,
    SchedulerFailed,
    /// The payload ran past its time limit and was killed.
    PayloadTimeout,
    /// The watchdog ended a guest that never finished.
    Timeout,
    /// The guest died (panic, triple fault) or powered off without finishing.
    GuestCrash,
    /// The guest init could not do its job (bad plan, missing plugin…).
    InitError,
    /// The user pressed Ctrl-C.
    Interrupted,
}

/// How the VM's life ended, as seen by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmEnd {
    PoweredOff,
    WatchdogKilled,
    Interrupted,
    /// The guest did not finish within the grace after a console stall report.
    Stalled,
    /// The guest spoke another protocol version and was stopped.
    Refused,
}

impl VmEnd {
    /// Who ended the VM, for the JSON's `ended_by`.
    pub fn as_str(self) -> &'static str {
        match self {
            VmEnd::PoweredOff => "guest",
            VmEnd::WatchdogKilled => "watchdog",
            VmEnd::Interrupted => "interrupt",
            VmEnd::Stalled => "console_report",
            VmEnd::Refused => "protocol_mismatch",
        }
    }
}

impl Verdict {
    /// `console`: the class of the console's reports, if it made any.
    pub fn decide(record: &Record, end: VmEnd, console: Option<Class>) -> Verdict {
        match end {
            VmEnd::Interrupted => return Verdict::Interrupted,
            VmEnd::Refused => return Verdict::InitError,
            _ => {}
        }
        if record.scheduler_failure.is_some() {
            return Verdict::SchedulerFailed;
        }
        if end == VmEnd::Stalled {
            let blamed = console.is_some_and(Class::blames_scheduler);
            return if blamed { Verdict::SchedulerFailed } else { Verdict::Timeout };
        }
        match &record.finished {
            None if end == VmEnd::WatchdogKilled => Verdict::Timeout,
            None => Verdict::GuestCrash,
            Some(Some(_)) => Verdict::InitError,
            Some(None) if record.payload_end.as_ref().is_some_and(|e| e.timed_out) => {
                Verdict::PayloadTimeout
            }
            Some(None) if record.checks.is_empty() => Verdict::InitError,
            Some(None) if record.checks.iter().all(|c| c.passed) => Verdict::Pass,
            Some(None) => Verdict::CheckFailed,
        }
    }

    /// The class this verdict shows: the guest's stuck-disabling report, else
    /// the console's, where it explains a failure.
    pub fn class(self, record: &Record, console: Option<Class>) -> Option<Class> {
        let says = |prefix: &str| {
            record.scheduler_failure.as_ref().is_some_and(|f| f.reason.starts_with(prefix))
        };
        let stuck = says(ktstr_core::protocol::STUCK_DISABLING);
        let monitor_stall = says(ktstr_core::protocol::MONITOR_STALL);
        match self {
            Verdict::SchedulerFailed if stuck => Some(Class::StuckDisabling),
            Verdict::SchedulerFailed if monitor_stall => Some(Class::Stall),
            // The kernel's words first; else what the scheduler's end says.
            Verdict::SchedulerFailed => console.filter(|c| c.blames_scheduler()).or_else(|| {
                let f = record.scheduler_failure.as_ref()?;
                let log = String::from_utf8_lossy(&record.scheduler_log);
                scheduler_end::classify(f, record.scheduler_ready.is_some(), &log)
            }),
            Verdict::Timeout | Verdict::GuestCrash => console,
            _ => None,
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => exit::PASS,
            Verdict::CheckFailed => exit::CHECK_FAILED,
            Verdict::SchedulerFailed => exit::SCHEDULER_FAILED,
            Verdict::PayloadTimeout | Verdict::Timeout | Verdict::GuestCrash => {
                exit::TIMEOUT_OR_CRASH
            }
            Verdict::InitError => exit::INFRA_ERROR,
            Verdict::Interrupted => exit::INTERRUPTED,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::CheckFailed => "CHECK_FAILED",
            Verdict::SchedulerFailed => "SCHEDULER_FAILED",
            Verdict::PayloadTimeout => "PAYLOAD_TIMEOUT",
            Verdict::Timeout => "TIMEOUT",
            Verdict::GuestCrash => "GUEST_CRASH",
            Verdict::InitError => "INIT_ERROR",
            Verdict::Interrupted => "INTERRUPTED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ktstr_core::check::CheckResult;
    use ktstr_core::protocol::SchedulerFailure;

    fn check(passed: bool) -> CheckResult {
        CheckResult { check: "x>=1".into(), passed, value: Some(1.0), detail: String::new() }
    }

    #[test]
    fn decides_every_outcome() {
        let mut r = Record::default();
        let decide = |r: &Record, end| Verdict::decide(r, end, None);
        assert_eq!(decide(&r, VmEnd::WatchdogKilled), Verdict::Timeout);
        assert_eq!(decide(&r, VmEnd::PoweredOff), Verdict::GuestCrash);
        assert_eq!(decide(&r, VmEnd::Interrupted), Verdict::Interrupted);
        assert_eq!(decide(&r, VmEnd::Refused), Verdict::InitError);
        let stalled = |c| Verdict::decide(&r, VmEnd::Stalled, Some(c));
        assert_eq!(stalled(Class::StuckDisabling), Verdict::SchedulerFailed);
        assert_eq!(stalled(Class::Stall), Verdict::SchedulerFailed);
        assert_eq!(stalled(Class::KernelStall), Verdict::Timeout);
        let class = Verdict::Timeout.class(&r, Some(Class::KernelStall));
        assert_eq!(class, Some(Class::KernelStall));
        assert_eq!(Verdict::Pass.class(&r, Some(Class::KernelStall)), None);
        r.finished = Some(Some("no plan".into()));
        assert_eq!(decide(&r, VmEnd::PoweredOff), Verdict::InitError);
        r.finished = Some(None);
        r.checks = vec![check(true)];
        assert_eq!(decide(&r, VmEnd::PoweredOff), Verdict::Pass);
        r.checks.push(check(false));
        assert_eq!(decide(&r, VmEnd::PoweredOff), Verdict::CheckFailed);
        r.scheduler_failure = Some(SchedulerFailure {
            reason: "exited".into(),
            output_tail: String::new(),
            kernel_log: vec![],
        });
        assert_eq!(decide(&r, VmEnd::PoweredOff), Verdict::SchedulerFailed);
        assert_eq!(Verdict::SchedulerFailed.exit_code(), 3);
        let class = Verdict::SchedulerFailed.class(&r, Some(Class::KernelStall));
        assert_eq!(class, None, "a kernel stall does not explain a scheduler failure");
        r.scheduler_failure.as_mut().unwrap().reason =
            "scheduler process exited (exit status: 1)".into();
        r.scheduler_log =
            b"libbpf: prog 'p': BPF program load failed: Permission denied\n".to_vec();
        let class = Verdict::SchedulerFailed.class(&r, Some(Class::KernelStall));
        assert_eq!(class, Some(Class::DidNotLoad), "the scheduler's own end explains it");
        let class = Verdict::SchedulerFailed.class(&r, Some(Class::Stall));
        assert_eq!(class, Some(Class::Stall), "the kernel's report comes first");
        r.scheduler_failure.as_mut().unwrap().reason =
            format!("{} for 5 s", ktstr_core::protocol::STUCK_DISABLING);
        let class = Verdict::SchedulerFailed.class(&r, None);
        assert_eq!(class, Some(Class::StuckDisabling));
        r.scheduler_failure.as_mut().unwrap().reason =
            format!("{}: `worker` (tid 40) was runnable…", ktstr_core::protocol::MONITOR_STALL);
        let class = Verdict::SchedulerFailed.class(&r, Some(Class::SchedulerError));
        assert_eq!(class, Some(Class::Stall), "the monitor saw it first");
    }
}
