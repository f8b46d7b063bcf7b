use std::time::{Duration, Instant};

use super::*;

const SCHEDSTAT: &str = "1523250001 8000000 112\n";

fn stat(tid: u32, comm: &str, state: &str, cpu: usize) -> String {
    // 52 fields, as 6.12 prints them; only 1-3 and 39 matter here.
    let mut f: Vec<String> = (4..=52).map(|_| "0".to_string()).collect();
    f[39 - 4] = cpu.to_string();
    format!("{tid} ({comm}) {state} {}\n", f.join(" "))
}

fn thread(tid: u32, runnable: bool, cpu: usize, runtime_ms: u64) -> ThreadView {
    ThreadView {
        tid,
        comm: format!("t{tid}"),
        runnable,
        cpu,
        runtime_ns: runtime_ms * 1_000_000,
        switches: runtime_ms,
    }
}

#[test]
fn a_thread_is_read_from_its_stat_and_schedstat() {
    let t = parse_thread(&stat(42, "my (odd) worker", "R", 3), SCHEDSTAT).unwrap();
    assert_eq!((t.tid, t.comm.as_str(), t.runnable, t.cpu), (42, "my (odd) worker", true, 3));
    assert_eq!((t.runtime_ns, t.switches), (1_523_250_001, 112));
    assert_eq!(num_threads(&stat(42, "w", "R", 0)), Some(0), "field 20 of the sample line");
    let sleeping = parse_thread(&stat(7, "s", "S", 0), SCHEDSTAT).unwrap();
    assert!(!sleeping.runnable);
    assert_eq!(parse_thread("garbage", SCHEDSTAT), None);
    assert_eq!(parse_thread(&stat(1, "x", "R", 0), "no table"), None);
}

#[test]
fn a_runnable_thread_that_gets_no_cpu_while_others_do_is_a_stall() {
    let plan = MonitorPlan { interval_ms: 100, stall_ms: 1000 };
    let t0 = Instant::now();
    let mut m = Monitor::new(plan, t0);
    // Thread 1 spins on CPU 0; thread 2 waits runnable on CPU 1, never run.
    for i in 0..=12u64 {
        let now = t0 + Duration::from_millis(100 * i);
        let line = m.observe(now, &[thread(1, true, 0, 100 * i), thread(2, true, 1, 5)], "enabled");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["runnable_per_cpu"], serde_json::json!([1, 1]));
        if i < 10 {
            assert!(m.summary.stall.is_none(), "not yet at {i}");
        }
    }
    let stall = m.summary.stall.clone().expect("a stall");
    assert_eq!((stall.tid, stall.cpu, stall.waited_ms), (2, 1, 1000));
    assert_eq!(stall.others_ms, 1000, "{stall:?}");
    assert_eq!(m.summary.max_wait_thread.as_deref(), Some("t2 (2) on CPU 1"));
    assert_eq!(m.summary.max_runnable_per_cpu, [1, 1]);
    assert_eq!(m.summary.samples, 13);
}

#[test]
fn a_guest_that_was_not_running_at_all_is_no_stall() {
    let plan = MonitorPlan { interval_ms: 100, stall_ms: 1000 };
    let t0 = Instant::now();
    let mut m = Monitor::new(plan, t0);
    // No sample for 5 s: the host did not run the guest.
    for i in [0u64, 50] {
        let now = t0 + Duration::from_millis(100 * i);
        m.observe(now, &[thread(1, true, 0, 10), thread(2, true, 1, 10)], "enabled");
    }
    assert!(m.summary.stall.is_none());
    assert_eq!((m.summary.pauses, m.summary.max_wait_ms), (1, 0), "no wait across the pause");
}

#[test]
fn running_resets_the_wait_and_counters_are_deltas_per_cpu() {
    let plan = MonitorPlan { interval_ms: 100, stall_ms: 1000 };
    let t0 = Instant::now();
    let mut m = Monitor::new(plan, t0);
    m.observe(t0, &[thread(1, true, 0, 10)], "disabled");
    let ms = |n| t0 + Duration::from_millis(n);
    m.observe(ms(800), &[thread(1, true, 0, 10), thread(3, true, 0, 900)], "disabled");
    // Thread 1 ran (its runtime grew): its wait starts again.
    let line = m.observe(ms(1600), &[thread(1, true, 0, 20), thread(3, true, 0, 1700)], "x");
    assert!(m.summary.stall.is_none());
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["switches_per_cpu"], serde_json::json!([10 + 800]));
    let line = m.observe(ms(1700), &[thread(1, true, 1, 20), thread(3, true, 0, 1800)], "x");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["migrations"], 1, "thread 1 moved to CPU 1");
    assert_eq!(v["t_ms"], 1700);
    assert!(m.due(ms(1800)) && !m.due(ms(1750)));
}

#[test]
fn the_monitor_spaces_samples_out_to_bound_its_cost() {
    let plan = MonitorPlan { interval_ms: 100, stall_ms: 1000 };
    let t0 = Instant::now();
    let mut m = Monitor::new(plan, t0);
    m.observe(t0, &[], "x");
    m.spent(Duration::from_millis(30));
    let ms = |n| t0 + Duration::from_millis(n);
    assert!(!m.due(ms(200)), "a 30 ms sample waits 300 ms for the next");
    assert!(m.due(ms(300)));
    m.observe(ms(300), &[], "x");
    m.spent(Duration::from_millis(1));
    assert!(m.due(ms(400)));
    assert_eq!((m.summary.cost_us, m.summary.mean_interval_ms), (31_000, 300));
}
