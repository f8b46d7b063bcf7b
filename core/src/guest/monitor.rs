//! The run-queue monitor: while the payload runs, every `interval_ms` (the
//! payload loop's ~100 ms tick bounds it), a snapshot of every thread in the
//! guest from `/proc/*/task/*/{stat,schedstat}`: which are runnable, on
//! which CPU, how much CPU time each got and how often it was switched in.
//! From those:
//! - a time series (one JSON line per sample, streamed to the host as
//!   `monitor.jsonl`): runnable threads per CPU, context switches and
//!   migrations since the last sample, sched_ext's state, the longest wait;
//! - a stall: a thread runnable for `stall_ms` without running. The init,
//!   which samples, is SCHED_FIFO, so the scheduler under test cannot starve
//!   the monitor; a gap between its samples means the guest itself was not
//!   running (a loaded host), and no wait counts across one.
//!
//! The test kernel has no CONFIG_SCHEDSTATS, so per-CPU counters come from
//! the threads' own: a thread's switches count on the CPU it was seen on,
//! and a thread seen on another CPU than at the last sample migrated (more
//! moves between two samples count once).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::plan::MonitorPlan;
use crate::protocol::{MonitorSummary, Stall};

/// One thread as read at one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadView {
    pub tid: u32,
    pub comm: String,
    pub runnable: bool,
    pub cpu: usize,
    /// Nanoseconds of CPU time so far.
    pub runtime_ns: u64,
    /// Times it was switched in so far.
    pub switches: u64,
}

struct Track {
    runtime_ns: u64,
    switches: u64,
    cpu: usize,
    /// Since when it has been runnable without getting CPU time, and the
    /// total CPU time of every thread then.
    waiting: Option<(Instant, u64)>,
}

/// The monitor takes at most 1/COST_SHARE of one CPU: after a sample that
/// took `c`, the next waits at least `COST_SHARE × c` (under emulation it
/// samples less often than asked, and the summary says how often it did).
const COST_SHARE: u32 = 10;

pub struct Monitor {
    plan: MonitorPlan,
    started: Instant,
    last: Option<Instant>,
    last_cost: Duration,
    tracks: HashMap<u32, Track>,
    pub summary: MonitorSummary,
}

impl Monitor {
    pub fn new(plan: MonitorPlan, now: Instant) -> Monitor {
        let summary = MonitorSummary {
            interval_ms: plan.interval_ms,
            stall_ms: plan.stall_ms,
            ..Default::default()
        };
        let last_cost = Duration::ZERO;
        Monitor { plan, started: now, last: None, last_cost, tracks: HashMap::new(), summary }
    }

    /// Whether a sample is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        let gap = Duration::from_millis(self.plan.interval_ms).max(self.last_cost * COST_SHARE);
        self.last.is_none_or(|t| now.duration_since(t) >= gap)
    }

    /// What the sample just taken cost (reading /proc, encoding).
    pub fn spent(&mut self, cost: Duration) {
        self.last_cost = cost;
        self.summary.cost_us += cost.as_micros() as u64;
        let span = self.last.map_or(0, |t| t.duration_since(self.started).as_millis() as u64);
        self.summary.mean_interval_ms = span / self.summary.samples.saturating_sub(1).max(1);
    }

    /// Takes one sample of `threads` (read at `now`); returns its JSON line.
    /// The first stall found is kept in the summary.
    pub fn observe(&mut self, now: Instant, threads: &[ThreadView], sched_ext: &str) -> String {
        // The monitor runs above the scheduler under test (the init is
        // SCHED_FIFO): a long gap since its last sample means the whole guest
        // was not running (a loaded host), so no wait counts across it.
        let pause = (10 * self.plan.interval_ms).max(1000);
        if self.last.is_some_and(|t| now.duration_since(t).as_millis() as u64 > pause) {
            self.summary.pauses += 1;
            for track in self.tracks.values_mut() {
                track.waiting = track.waiting.map(|(_, total)| (now, total));
            }
        }
        self.last = Some(now);
        self.summary.samples += 1;
        let total_ns: u64 = threads.iter().map(|t| t.runtime_ns).sum();
        let cpus = threads.iter().map(|t| t.cpu + 1).max().unwrap_or(0);
        let mut runnable = vec![0u32; cpus];
        let (mut switches, mut migrations) = (vec![0u64; cpus], 0u64);
        let mut longest: Option<(u64, &ThreadView)> = None;
        let mut tracks = HashMap::with_capacity(threads.len());
        for t in threads {
            let old = self.tracks.remove(&t.tid);
            // A thread seen for the first time starts its wait if runnable.
            let got_cpu = old.as_ref().is_some_and(|o| t.runtime_ns > o.runtime_ns);
            if let Some(o) = &old {
                switches[t.cpu] += t.switches.saturating_sub(o.switches);
                migrations += u64::from(o.cpu != t.cpu);
            }
            let waiting = match (t.runnable && !got_cpu, old.and_then(|o| o.waiting)) {
                (true, Some(w)) => Some(w),
                (true, None) => Some((now, total_ns)),
                (false, _) => None,
            };
            if t.runnable {
                runnable[t.cpu] += 1;
            }
            if let Some((since, total_then)) = waiting {
                let waited = now.duration_since(since).as_millis() as u64;
                if longest.is_none_or(|(w, _)| waited > w) {
                    longest = Some((waited, t));
                }
                if waited >= self.plan.stall_ms && self.summary.stall.is_none() {
                    let others_ms = total_ns.saturating_sub(total_then) / 1_000_000;
                    let (tid, comm, cpu) = (t.tid, t.comm.clone(), t.cpu);
                    self.summary.stall =
                        Some(Stall { tid, comm, cpu, waited_ms: waited, others_ms });
                }
            }
            let (runtime_ns, switches, cpu) = (t.runtime_ns, t.switches, t.cpu);
            tracks.insert(t.tid, Track { runtime_ns, switches, cpu, waiting });
        }
        self.tracks = tracks;
        let max = &mut self.summary.max_runnable_per_cpu;
        max.resize(max.len().max(cpus), 0);
        for (m, r) in max.iter_mut().zip(&runnable) {
            *m = (*m).max(*r);
        }
        if let Some((waited, t)) = longest {
            if waited > self.summary.max_wait_ms {
                self.summary.max_wait_ms = waited;
                self.summary.max_wait_thread =
                    Some(format!("{} ({}) on CPU {}", t.comm, t.tid, t.cpu));
            }
        }
        serde_json::json!({
            "t_ms": now.duration_since(self.started).as_millis() as u64,
            "sched_ext": sched_ext,
            "runnable_per_cpu": runnable,
            "switches_per_cpu": switches,
            "migrations": migrations,
            "longest_wait": longest.map(|(w, t)| serde_json::json!({
                "ms": w, "tid": t.tid, "comm": t.comm, "cpu": t.cpu,
            })),
        })
        .to_string()
    }
}

/// Every thread of every process, from /proc (threads that end while being
/// read are skipped). A single-threaded process (most, and every kernel
/// thread) is read from its own files, without listing its `task/`.
pub fn read_threads() -> Vec<ThreadView> {
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let dir = std::path::PathBuf::from(format!("/proc/{pid}"));
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else { continue };
        if num_threads(&stat) == Some(1) {
            out.extend(read_thread(&dir, Some(stat)));
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(dir.join("task")) else { continue };
        out.extend(tasks.flatten().filter_map(|t| read_thread(&t.path(), None)));
    }
    out
}

fn read_thread(dir: &std::path::Path, stat: Option<String>) -> Option<ThreadView> {
    let stat = match stat {
        Some(s) => s,
        None => std::fs::read_to_string(dir.join("stat")).ok()?,
    };
    parse_thread(&stat, &std::fs::read_to_string(dir.join("schedstat")).ok()?)
}

/// Field 20 of a `stat` line.
fn num_threads(stat: &str) -> Option<u32> {
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(17)?.parse().ok()
}

/// A thread from its `stat` line and its `schedstat` (CONFIG_SCHED_INFO:
/// CPU time in ns, run-queue wait in ns, times switched in).
pub fn parse_thread(stat: &str, schedstat: &str) -> Option<ThreadView> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let tid = stat[..open].trim().parse().ok()?;
    let comm = stat[open + 1..close].to_string();
    // After the comm: field 3 (state) is first; field 39 (processor) is 37th.
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let runnable = *rest.first()? == "R";
    let cpu = rest.get(36)?.parse().ok()?;
    let mut nums = schedstat.split_whitespace().map(|n| n.parse::<u64>().ok());
    let runtime_ns = nums.next()??;
    let switches = nums.nth(1)??;
    Some(ThreadView { tid, comm, runnable, cpu, runtime_ns, switches })
}

#[cfg(test)]
mod tests;
