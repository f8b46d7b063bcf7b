//! Whether L1 still lives, judged from its console. L1's init prints a
//! heartbeat line every [`HEARTBEAT_EVERY`]; its userspace is alive while
//! they come. Other console output proves nothing: a wedged L1 kernel goes
//! on printing its RCU stall reports every minute (seen under nested TCG,
//! its userspace dead from its fifth second) and must not pass for alive.

use std::time::{Duration, Instant};

use super::l1::is_kernel_line;

/// L1's init prints this line every `HEARTBEAT_EVERY` (see `archive.rs`);
/// when they stop, L1 hung, where it would otherwise hold the run until
/// the 900 s watchdog.
pub const HEARTBEAT: &str = "KTSTR-L1-ALIVE";
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// No heartbeat for this long: L1 hung.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(90);
/// No heartbeat for this long (two missed and some): time to look whether
/// L1 waits on an interrupt its emulator lost, and to nudge it (see `l1.rs`).
pub const NUDGE_AFTER: Duration = Duration::from_secs(25);
/// After L1's kernel reports a stall, how long a heartbeat may take to show
/// that L1 got over it: two heartbeats and some.
pub const STALL_GRACE: Duration = Duration::from_secs(25);

/// What L1's kernel prints when a CPU or task stops making progress.
/// Soft lockups are not here: L1 boots with `softlockup_panic=1`.
const STALL_REPORTS: [&str; 4] = [
    "detected stalls on CPUs/tasks",
    "detected expedited stalls",
    "kthread starved for",
    "blocked for more than",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hang {
    /// No heartbeat for [`SILENCE_LIMIT`].
    Silent,
    /// L1's kernel reported this stall and no heartbeat followed within [`STALL_GRACE`].
    Stalled(String),
}

pub struct Liveness {
    started: Instant,
    last_heartbeat: Option<Instant>,
    /// The first stall report since the last heartbeat, and when it came.
    stall: Option<(String, Instant)>,
    /// Whether this silence (since the last heartbeat) was looked into.
    looked: bool,
}

impl Liveness {
    pub fn new(started: Instant) -> Liveness {
        Liveness { started, last_heartbeat: None, stall: None, looked: false }
    }

    /// Takes one whole console line, seen at `now`.
    pub fn line(&mut self, text: &str, now: Instant) {
        let text = text.trim();
        if text.starts_with(HEARTBEAT) {
            self.last_heartbeat = Some(now);
            self.stall = None;
            self.looked = false;
        } else if self.stall.is_none() && stall_report(text) {
            self.stall = Some((text.to_string(), now));
        }
    }

    /// True once a silence, when it has lasted [`NUDGE_AFTER`].
    pub fn look_due(&mut self, now: Instant) -> bool {
        let alive_at = self.last_heartbeat.unwrap_or(self.started);
        let due = !self.looked && now.duration_since(alive_at) > NUDGE_AFTER;
        self.looked |= due;
        due
    }

    pub fn hung(&self, now: Instant) -> Option<Hang> {
        if let Some((line, at)) = &self.stall {
            if now.duration_since(*at) > STALL_GRACE {
                return Some(Hang::Stalled(line.clone()));
            }
        }
        let alive_at = self.last_heartbeat.unwrap_or(self.started);
        (now.duration_since(alive_at) > SILENCE_LIMIT).then_some(Hang::Silent)
    }
}

/// Whether `line` is L1's own kernel reporting a stall (not an inner
/// console quoting one: those lines start with `L1-inner:` or `[ktstr]`).
fn stall_report(line: &str) -> bool {
    is_kernel_line(line) && STALL_REPORTS.iter().any(|r| line.contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RCU: &str = "[   26.331305] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:";

    #[test]
    fn kernel_chatter_without_heartbeats_is_a_hang() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        l.line("[    5.29] kvm: kvm [56]: vcpu0, guest rIP: 0xffffffff81002f8c", t0);
        assert_eq!(l.hung(t0 + SILENCE_LIMIT), None);
        assert_eq!(l.hung(t0 + SILENCE_LIMIT + Duration::from_secs(1)), Some(Hang::Silent));
    }

    #[test]
    fn heartbeats_keep_it_alive() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        for i in 1..20 {
            l.line(&format!("{HEARTBEAT} {}.0", i * 10), t0 + HEARTBEAT_EVERY * i);
        }
        assert_eq!(l.hung(t0 + HEARTBEAT_EVERY * 20), None);
    }

    #[test]
    fn a_silence_is_looked_into_once_until_the_next_heartbeat() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        let after = |s| t0 + Duration::from_secs(s);
        assert!(!l.look_due(after(20)));
        assert!(l.look_due(after(26)));
        assert!(!l.look_due(after(40)), "once a silence");
        l.line(&format!("{HEARTBEAT} 41.0"), after(41));
        assert!(!l.look_due(after(60)));
        assert!(l.look_due(after(67)), "a new silence");
    }

    #[test]
    fn a_stall_report_ends_it_unless_a_heartbeat_follows() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        l.line(&format!("{HEARTBEAT} 12.49"), t0);
        l.line(RCU, t0 + Duration::from_secs(1));
        l.line("[   89.351408] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:", t0);
        assert_eq!(l.hung(t0 + STALL_GRACE), None);
        let late = t0 + STALL_GRACE + Duration::from_secs(2);
        assert_eq!(l.hung(late), Some(Hang::Stalled(RCU.into())));
        // A heartbeat after the report: L1 got over it.
        l.line(&format!("{HEARTBEAT} 22.50"), t0 + Duration::from_secs(10));
        assert_eq!(l.hung(late), None);
    }

    #[test]
    fn only_l1s_own_kernel_reports_count() {
        assert!(stall_report(RCU));
        assert!(stall_report("[  593.517167] rcu: rcu_sched kthread starved for 147047 jiffies!"));
        assert!(stall_report(
            "[  240.1] INFO: task kworker/0:1:12 blocked for more than 120 seconds."
        ));
        // An inner run's console quoted by ktstr inside L1 is the L2 guest's business.
        assert!(!stall_report(&format!("L1-inner: {RCU}")));
        assert!(!stall_report(
            "[ktstr] console: rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"
        ));
        assert!(!stall_report("[    1.0] rcu: Hierarchical RCU implementation."));
    }
}
