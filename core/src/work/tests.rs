use std::time::Duration;

use super::*;

fn spec(kind: WorkKind) -> WorkerSpec {
    WorkerSpec::new(Work::new(kind), None)
}

#[test]
fn every_kind_makes_progress_and_reports() {
    let mut handles = Vec::new();
    for kind in WorkKind::ALL {
        let mut work = Work::new(kind);
        if kind == WorkKind::CacheThrash {
            work.working_set_kib = Some(256);
        }
        handles.push(spawn_worker(&WorkerSpec::new(work, None), None).unwrap());
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(handles.iter().any(|h| h.work_units() > 0), "live progress is visible to the parent");
    let pids: Vec<u32> = handles.iter().map(WorkerHandle::pid).collect();
    let reports = stop_and_collect(handles);
    for (kind, (r, pid)) in WorkKind::ALL.iter().zip(reports.iter().zip(pids)) {
        assert_eq!(r.error, None, "{kind:?}");
        assert_eq!(r.pid, pid, "{kind:?}");
        assert!(r.work_units > 0, "{kind:?} did no work: {r:?}");
        assert!(!r.cpus.is_empty(), "{kind:?} saw no CPU: {r:?}");
        assert!(r.elapsed_ns > 0 && r.rate() > 0.0, "{kind:?}");
        assert_eq!(r.comm, format!("ktstr-{}", kind.short()));
        if kind.wakes() {
            let w =
                r.wake.as_ref().unwrap_or_else(|| panic!("{kind:?} measured no wake-ups: {r:?}"));
            assert!(
                w.samples > 0 && w.max_us >= w.p99_us && w.p99_us >= w.p50_us,
                "{kind:?}: {w:?}"
            );
        } else {
            assert_eq!(r.wake, None, "{kind:?}");
        }
        assert_eq!(r.off_cpu_ns, r.runqueue_wait_ns.unwrap_or(0) + r.sleep_ns);
    }
    // Every worker was reaped: no child of ours is left.
    for pid in reports.iter().map(|r| r.pid as i32) {
        assert_eq!(unsafe { libc::kill(pid, 0) }, -1, "worker {pid} still exists");
    }
}

#[test]
fn worker_is_placed_before_it_runs_and_named() {
    let cg = tempfile::tempdir().unwrap();
    let h = spawn_worker(
        &WorkerSpec::new(Work::new(WorkKind::Yield), Some("my-worker")),
        Some(cg.path()),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(cg.path().join("cgroup.procs")).unwrap(),
        h.pid().to_string()
    );
    // The child names itself before the gate; give it a moment to get there.
    let comm = || std::fs::read_to_string(format!("/proc/{}/comm", h.pid())).unwrap();
    for _ in 0..200 {
        if comm().trim() == "my-worker" {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(comm().trim(), "my-worker");
    let r = stop_and_collect(vec![h]);
    assert_eq!(r[0].comm, "my-worker");
}

#[test]
fn unplaceable_worker_is_killed_and_reported() {
    let err =
        spawn_worker(&spec(WorkKind::Spin), Some(std::path::Path::new("/nonexistent/cgroup")))
            .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("/nonexistent/cgroup") && msg.contains("ktstr-spin"), "{msg}");
}

#[test]
fn bad_specs_are_refused_before_forking() {
    let long = WorkerSpec::new(Work::new(WorkKind::Spin), Some("a-very-long-name"));
    assert!(spawn_worker(&long, None).unwrap_err().to_string().contains("1 to 15 bytes"));
    let mut w = Work::new(WorkKind::Spin);
    w.duty = Some(0.5);
    assert!(spawn_worker(&WorkerSpec::new(w, None), None)
        .unwrap_err()
        .to_string()
        .contains("`duty` applies only to sleep_wake"));
}

#[test]
fn a_worker_killed_from_outside_still_gets_a_report() {
    let h = spawn_worker(&spec(WorkKind::Spin), None).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    unsafe { libc::kill(h.pid() as i32, libc::SIGKILL) };
    let r = stop_and_collect(vec![h]).remove(0);
    assert_eq!(r.error.as_deref(), Some("the worker exited without a report"));
    assert_eq!(r.work, "spin");
}

#[test]
fn sigterm_stops_a_worker_cleanly() {
    let h = spawn_worker(&spec(WorkKind::SleepWake), None).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    unsafe { libc::kill(h.pid() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(100));
    let r = stop_and_collect(vec![h]).remove(0);
    assert_eq!(r.error, None);
}

#[test]
fn work_reads_both_toml_forms_and_checks_parameters() {
    #[derive(serde::Deserialize)]
    struct W {
        work: Work,
    }
    let w: W = toml::from_str("work = \"fork_exit\"").unwrap();
    assert_eq!(w.work, Work::new(WorkKind::ForkExit));
    let w: W =
        toml::from_str("work = { kind = \"sleep_wake\", duty = 1, period_us = 500 }").unwrap();
    assert_eq!((w.work.duty(), w.work.period_us()), (1.0, 500));
    assert_eq!(w.work.describe(), "sleep_wake(duty=1, period_us=500)");
    let err = toml::from_str::<W>("work = \"dance\"").err().unwrap().to_string();
    assert!(err.contains("unknown variant `dance`"), "{err}");
    let err =
        toml::from_str::<W>("work = { kind = \"spin\", speed = 3 }").err().unwrap().to_string();
    assert!(err.contains("unknown field `speed`"), "{err}");
    let json = serde_json::to_string(&Work::new(WorkKind::CacheThrash)).unwrap();
    assert_eq!(serde_json::from_str::<Work>(&json).unwrap(), Work::new(WorkKind::CacheThrash));

    let bad = |kind, f: fn(&mut Work)| {
        let mut w = Work::new(kind);
        f(&mut w);
        w.check().unwrap_err()
    };
    assert_eq!(bad(WorkKind::SleepWake, |w| w.duty = Some(1.5)), "duty 1.5 must be in [0, 1]");
    assert_eq!(
        bad(WorkKind::SleepWake, |w| w.period_us = Some(5)),
        "period_us 5 must be in [100, 1000000]"
    );
    assert_eq!(
        bad(WorkKind::CacheThrash, |w| w.working_set_kib = Some(0)),
        "working_set_kib 0 must be in [4, 1048576]"
    );
    assert_eq!(
        bad(WorkKind::Pipe, |w| w.working_set_kib = Some(8)),
        "`working_set_kib` applies only to cache_thrash work, not pipe"
    );
    for kind in WorkKind::ALL {
        assert!(format!("ktstr-{}", kind.short()).len() <= 15);
    }
}

#[test]
fn reports_survive_postcard() {
    let r = WorkerReport {
        pid: 7,
        wake: Some(WakeStats { samples: 3, ..WakeStats::default() }),
        cpus: vec![0, 3],
        ..WorkerReport::default()
    };
    let bytes = postcard::to_allocvec(&r).unwrap();
    assert_eq!(postcard::from_bytes::<WorkerReport>(&bytes).unwrap(), r);
}

#[test]
fn work_maps_to_its_loop_and_summaries_to_microseconds() {
    assert_eq!(
        Work::new(WorkKind::SleepWake).to_loop(),
        Loop::SleepWake { duty: 0.5, period_ns: 2_000_000 }
    );
    assert_eq!(Work::new(WorkKind::CacheThrash).to_loop(), Loop::CacheThrash { bytes: 4 << 20 });
    let wakers: Vec<_> = WorkKind::ALL.into_iter().filter(|k| k.wakes()).collect();
    assert_eq!(wakers, [WorkKind::Futex, WorkKind::SleepWake, WorkKind::Pipe]);
    let s = LatencySummary {
        samples: 4,
        p50_ns: 1500,
        p99_ns: 20_000,
        max_ns: 30_001,
        ..Default::default()
    };
    let w = WakeStats::from(s);
    assert_eq!((w.samples, w.p50_us, w.p90_us, w.p99_us, w.max_us), (4, 1.5, 0.0, 20.0, 30.001));
}
