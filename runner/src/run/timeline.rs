//! When each stage of a run was first seen, in ms since `ktstr run` started:
//! where the time went, for a person (one summary line) and for `--json`
//! and `ktstr bench` (per-stage figures to compare engines and changes).

use std::time::Instant;

use super::record::Record;

/// The stages, in the order a run passes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Plugins found, the job validated, the initramfs packed.
    Prepared,
    /// The engine returned from boot: the VM exists and runs.
    Booted,
    /// The guest init's first message.
    GuestUp,
    SchedulerReady,
    PayloadStarted,
    PayloadEnded,
    /// The guest's last message (results sent).
    Finished,
    /// The VM is gone.
    VmEnded,
}

impl Mark {
    const ALL: [Mark; 8] = [
        Mark::Prepared,
        Mark::Booted,
        Mark::GuestUp,
        Mark::SchedulerReady,
        Mark::PayloadStarted,
        Mark::PayloadEnded,
        Mark::Finished,
        Mark::VmEnded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mark::Prepared => "prepared",
            Mark::Booted => "booted",
            Mark::GuestUp => "guest_up",
            Mark::SchedulerReady => "scheduler_ready",
            Mark::PayloadStarted => "payload_started",
            Mark::PayloadEnded => "payload_ended",
            Mark::Finished => "finished",
            Mark::VmEnded => "vm_ended",
        }
    }
}

#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    marks: Vec<(Mark, u64)>,
}

impl Timeline {
    pub fn new(start: Instant) -> Timeline {
        Timeline { start, marks: Vec::new() }
    }

    /// Records `m` now, unless it was recorded already.
    pub fn mark(&mut self, m: Mark) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.mark_at(m, ms);
    }

    fn mark_at(&mut self, m: Mark, ms: u64) {
        if self.get(m).is_none() {
            self.marks.push((m, ms));
        }
    }

    /// Marks the guest-side stages the record shows for the first time.
    pub fn observe(&mut self, r: &Record) {
        let seen = [
            (Mark::GuestUp, r.hello.is_some()),
            (Mark::SchedulerReady, r.scheduler_ready.is_some()),
            (Mark::PayloadStarted, r.payload_pid.is_some()),
            (Mark::PayloadEnded, r.payload_end.is_some()),
            (Mark::Finished, r.finished.is_some()),
        ];
        for (m, yes) in seen {
            if yes {
                self.mark(m);
            }
        }
    }

    pub fn get(&self, m: Mark) -> Option<u64> {
        self.marks.iter().find(|(k, _)| *k == m).map(|(_, ms)| *ms)
    }

    /// `{"prepared_ms": 812, "booted_ms": 830, …}`: the stages reached.
    pub fn to_json(&self) -> serde_json::Value {
        let map = Mark::ALL
            .iter()
            .filter_map(|&m| Some((format!("{}_ms", m.name()), self.get(m)?.into())))
            .collect::<serde_json::Map<_, _>>();
        serde_json::Value::Object(map)
    }

    /// `prepared 0.8 s · booted 0.8 s · guest up 4.1 s · …`, in stage order.
    pub fn line(&self) -> String {
        let parts: Vec<String> = Mark::ALL
            .iter()
            .filter_map(|&m| {
                let ms = self.get(m)?;
                Some(format!("{} {:.1} s", m.name().replace('_', " "), ms as f64 / 1000.0))
            })
            .collect();
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_keeps_its_first_time_and_prints_in_stage_order() {
        let mut t = Timeline::new(Instant::now());
        t.mark_at(Mark::Booted, 900);
        t.mark_at(Mark::Prepared, 850);
        t.mark_at(Mark::Booted, 5000);
        t.mark_at(Mark::VmEnded, 7250);
        assert_eq!(t.get(Mark::Booted), Some(900));
        assert_eq!(t.line(), "prepared 0.8 s · booted 0.9 s · vm ended 7.2 s");
        assert_eq!(
            t.to_json(),
            serde_json::json!({"prepared_ms": 850, "booted_ms": 900, "vm_ended_ms": 7250})
        );
    }

    #[test]
    fn guest_stages_come_from_the_record() {
        let mut t = Timeline::new(Instant::now());
        let mut r = Record::default();
        t.observe(&r);
        assert_eq!(t.to_json(), serde_json::json!({}));
        r.hello = Some(("6.12".into(), "0-1".into()));
        r.payload_pid = Some(7);
        t.observe(&r);
        assert!(t.get(Mark::GuestUp).is_some() && t.get(Mark::PayloadStarted).is_some());
        assert_eq!(t.get(Mark::Finished), None);
    }
}
