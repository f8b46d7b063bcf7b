//! What watches a payload or a scenario while it runs, on the run loop's
//! ~100 ms tick: the streamed logs are forwarded, the scheduler is checked,
//! and the run-queue monitor samples. The first failure stops the run.

use std::time::Instant;

use super::monitor::{self, Monitor};
use super::scheduler::Scheduler;
use super::stream::Streams;
use super::{sched_ext, Channel};
use crate::plan::MonitorPlan;
use crate::protocol::{Message, OutputSource, SchedulerFailure, MONITOR_STALL};

pub struct Overseer<'a> {
    pub ch: &'a mut Channel,
    streams: &'a mut Streams,
    sched: &'a mut Scheduler,
    failure: Option<SchedulerFailure>,
    monitor: Option<Monitor>,
}

impl<'a> Overseer<'a> {
    pub fn new(
        ch: &'a mut Channel,
        streams: &'a mut Streams,
        sched: &'a mut Scheduler,
        monitor: Option<MonitorPlan>,
    ) -> Overseer<'a> {
        let monitor = monitor.map(|p| Monitor::new(p, Instant::now()));
        Overseer { ch, streams, sched, failure: None, monitor }
    }

    /// One tick; false (the failure kept) once the run must stop.
    pub fn keep_going(&mut self) -> bool {
        self.streams.poll(self.ch);
        let found = self.sched.check().err().or_else(|| self.sample());
        self.failure = self.failure.take().or(found);
        self.failure.is_none()
    }

    /// The failure found so far, if any.
    pub fn failure(&self) -> Option<&SchedulerFailure> {
        self.failure.as_ref()
    }

    /// The failure that stopped the run, if any; the monitor's summary is
    /// sent on the way out.
    pub fn finish(self) -> Option<SchedulerFailure> {
        if let Some(m) = self.monitor {
            self.ch.send(&Message::Monitor(m.summary));
        }
        self.failure
    }

    /// One monitor sample when due; the failure once it found a stall.
    fn sample(&mut self) -> Option<SchedulerFailure> {
        let m = self.monitor.as_mut()?;
        let now = Instant::now();
        if !m.due(now) {
            return None;
        }
        let threads = monitor::read_threads();
        let mut line = m.observe(now, &threads, &sched_ext::state());
        line.push('\n');
        m.spent(now.elapsed());
        self.ch.send(&Message::Output { source: OutputSource::Monitor, data: line.into_bytes() });
        let s = m.summary.stall.clone()?;
        let stall_ms = m.summary.stall_ms;
        Some(self.sched.failure(format!(
            "{MONITOR_STALL}: `{}` (tid {}) was runnable on CPU {} for {} ms without running, \
             while the other threads got {} ms of CPU (threshold {stall_ms} ms)",
            s.comm, s.tid, s.cpu, s.waited_ms, s.others_ms
        )))
    }
}
