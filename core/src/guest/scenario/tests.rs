//! The executor against a plain directory standing in for cgroupfs (file
//! writes), and against the host's real cgroup2 mount when it is writable
//! (placement, captures, moves; skipped with a note otherwise).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::scenario::{canned, StopReason};

#[derive(Default)]
struct Recorder {
    steps: Vec<String>,
    finished: Vec<String>,
    started: Vec<(String, u32)>,
    output: Vec<u8>,
    logs: Vec<String>,
    stop_after_calls: Option<u32>,
    calls: u32,
}

impl Reporter for Recorder {
    fn step_started(&mut self, step: &str) {
        self.steps.push(step.into());
    }
    fn log(&mut self, text: String) {
        self.logs.push(text);
    }
    fn payload_started(&mut self, name: &str, pid: u32, _cgroup: &str) {
        self.started.push((name.into(), pid));
    }
    fn payload_output(&mut self, _name: &str, stdout: bool, chunk: &[u8]) {
        if stdout {
            self.output.extend_from_slice(chunk);
        }
    }
    fn step_finished(&mut self, result: &StepResult) {
        self.finished.push(result.name.clone());
    }
    fn keep_going(&mut self) -> bool {
        self.calls += 1;
        self.stop_after_calls.is_none_or(|n| self.calls < n)
    }
}

fn topo() -> Topology {
    "1n2l2c1t".parse().unwrap()
}

fn input<'a>(s: &'a Scenario, t: &'a Topology, mount: &Path, root: &str) -> ScenarioRun<'a> {
    ScenarioRun {
        scenario: s,
        topology: t,
        duration: Duration::from_millis(800),
        cgroup_mount: mount.to_path_buf(),
        root: root.into(),
        payloads: BTreeMap::new(),
        payload_limit: Duration::from_secs(5),
    }
}

fn sh(script: &str) -> ScenarioPayload {
    ScenarioPayload {
        source: PayloadSource::Binary("/bin/sh".into()),
        default_args: vec!["-c".into(), script.into()],
        env: vec![("KTSTR_TEST".into(), "1".into())],
    }
}

fn check<'r>(r: &'r ScenarioResult, name: &str) -> &'r crate::check::CheckResult {
    r.checks()
        .find(|c| c.check == name)
        .unwrap_or_else(|| panic!("no check {name}: {:#?}", r.checks().collect::<Vec<_>>()))
}

const FAKE: &str = r#"
name = "fake"
[checks]
isolation = false
[backdrop]
cgroups = [{ name = "bg" }]
[[backdrop.ops]]
op = "spawn"
cgroup = "bg"
work = "yield"
[[steps]]
name = "s"
hold = { ms = 200 }
cgroups = [{ name = "a", cpuset = { llc = 1 } }, { name = "a/inner" }, { name = "b" }]
[[steps.ops]]
op = "spawn"
cgroup = "a/inner"
work = "spin"
comm = "inner-spin"
[[steps.ops]]
op = "set_cpuset"
cgroup = "b"
cpus = "1,3"
[[steps.ops]]
op = "clear_cpuset"
cgroup = "b"
[[steps.ops]]
op = "capture"
cgroup = "a/inner"
tag = "inner"
"#;

#[test]
fn writes_cgroup_files_and_reports_per_step() {
    let mount = tempfile::tempdir().unwrap();
    let s = Scenario::from_toml(FAKE).unwrap();
    let t = topo();
    let mut rec = Recorder::default();
    // Watch the files while the step holds, before teardown removes them.
    struct Peek<'a> {
        rec: &'a mut Recorder,
        root: PathBuf,
        seen: Option<(String, String, String)>,
    }
    impl Reporter for Peek<'_> {
        fn step_started(&mut self, step: &str) {
            self.rec.step_started(step);
        }
        fn step_finished(&mut self, result: &StepResult) {
            self.rec.step_finished(result);
        }
        fn keep_going(&mut self) -> bool {
            let read = |p: &str| std::fs::read_to_string(self.root.join(p)).unwrap_or_default();
            self.seen.get_or_insert_with(|| {
                (read("a/cpuset.cpus"), read("b/cpuset.cpus"), read("a/cgroup.subtree_control"))
            });
            true
        }
    }
    let root = mount.path().join("ktstr/scenario");
    let mut peek = Peek { rec: &mut rec, root: root.clone(), seen: None };
    let r = run(&input(&s, &t, mount.path(), "ktstr/scenario"), &mut peek).unwrap();
    let (a_cpus, b_cpus, control) = peek.seen.clone().unwrap();
    assert_eq!(a_cpus, "2-3", "{{ llc = 1 }} on 1n2l2c1t");
    assert_eq!(b_cpus, "\n", "cleared back to the parent's");
    assert_eq!(control, "+cpu +cpuset");
    assert_eq!(
        std::fs::read_to_string(mount.path().join("ktstr/cgroup.subtree_control")).unwrap(),
        "+cpu +cpuset"
    );

    assert_eq!(r.error, None, "{r:#?}");
    assert_eq!(rec.steps, ["s"]);
    assert_eq!(rec.finished, ["s", BACKDROP]);
    let step = &r.steps[0];
    assert_eq!(step.cgroups.len(), 1);
    let inner = &step.cgroups[0];
    assert_eq!(inner.cgroup, "a/inner");
    assert_eq!(inner.cpus, Some(vec![2, 3]), "inherited from a");
    assert_eq!(inner.workers.len(), 1);
    assert_eq!(inner.workers[0].report.comm, "inner-spin");
    assert!(inner.workers[0].report.work_units > 0);
    assert_eq!(inner.workers[0].allowed_cpus, Some(vec![2, 3]));
    // The stand-in cgroup.procs keeps the last pid written: the worker's.
    assert_eq!(step.captures[0].pids, [inner.workers[0].report.pid]);
    assert!(check(&r, "starvation[s/a/inner]").passed);
    assert!(!r.checks().any(|c| c.check.starts_with("isolation")), "disabled in [checks]");
    let bg = &r.steps[1];
    assert_eq!((bg.name.as_str(), bg.cgroups[0].cgroup.as_str()), (BACKDROP, "bg"));
    assert!(
        bg.cgroups[0].workers[0].report.work_units > 0,
        "backdrop workers ran through the step"
    );
    assert!(check(&r, "starvation[backdrop/bg]").passed);
    assert!(r.passed());
    assert!(!root.exists(), "the scenario root is removed at the end");
}

const PAYLOADS: &str = r#"
name = "payloads"
[[steps]]
name = "one"
hold = "payloads"
cgroups = [{ name = "p" }]
[[steps.ops]]
op = "run_payload"
name = "hello"
plugin = "say"
cgroup = "p"
[[steps.ops]]
op = "run_payload"
name = "loud"
plugin = "say"
args = ["-c", "echo bad >&2; exit 3"]
cgroup = "p"
[[steps]]
name = "two"
hold = { ms = 50 }
cgroups = [{ name = "q" }]
[[steps.ops]]
op = "run_payload"
name = "sleeper"
plugin = "sleep"
cgroup = "q"
[[steps.ops]]
op = "run_payload"
name = "killed"
plugin = "sleep"
cgroup = "q"
[[steps.ops]]
op = "kill_payload"
name = "killed"
[[steps.ops]]
op = "run_payload"
name = "ghost"
plugin = "missing"
cgroup = "q"
[[steps]]
name = "three"
hold = "payloads"
cgroups = [{ name = "r" }]
[[steps.ops]]
op = "run_payload"
name = "slow"
plugin = "sleep"
cgroup = "r"
"#;

#[test]
fn payloads_are_captured_killed_and_timed_out() {
    let mount = tempfile::tempdir().unwrap();
    let s = Scenario::from_toml(PAYLOADS).unwrap();
    let t = topo();
    let mut inp = input(&s, &t, mount.path(), "sc");
    inp.payloads.insert("say".into(), sh("echo hello"));
    inp.payloads.insert("sleep".into(), sh("sleep 30"));
    inp.payload_limit = Duration::from_millis(300);
    let mut rec = Recorder::default();
    let r = run(&inp, &mut rec).unwrap();
    assert_eq!(r.error, None);
    let one = &r.steps[0];
    let hello = one.payloads.iter().find(|p| p.name == "hello").unwrap();
    assert_eq!(
        (hello.exit_code, hello.stdout_tail.as_str(), hello.stopped),
        (Some(0), "hello\n", None)
    );
    assert!(
        String::from_utf8_lossy(&rec.output).contains("hello"),
        "output is streamed to the reporter"
    );
    assert!(rec.started.iter().any(|(n, pid)| n == "hello" && *pid == hello.pid.unwrap()));
    assert!(check(&r, "payload[one/hello]").passed);
    let loud = check(&r, "payload[one/loud]");
    assert!(
        !loud.passed && loud.detail.contains("exited with code 3") && loud.detail.contains("bad"),
        "{loud:?}"
    );

    let two = &r.steps[1];
    let by = |n: &str| two.payloads.iter().find(|p| p.name == n).unwrap();
    assert_eq!(by("killed").stopped, Some(StopReason::Killed));
    assert_eq!(by("sleeper").stopped, Some(StopReason::StepEnded));
    assert_eq!(by("sleeper").signal, Some(libc::SIGKILL));
    assert!(by("ghost")
        .error
        .as_deref()
        .unwrap()
        .contains("payload plugin \"missing\" was not packed"));
    assert!(check(&r, "payload[two/killed]").passed && check(&r, "payload[two/sleeper]").passed);
    assert!(!check(&r, "payload[two/ghost]").passed);

    let slow = &r.steps[2].payloads[0];
    assert_eq!(slow.stopped, Some(StopReason::TimedOut));
    assert!(!check(&r, "payload[three/slow]").passed);
    assert!(r.steps[2].duration_ms < 5000, "the payload limit bounds the hold");
}

#[test]
fn an_op_failure_stops_the_scenario_and_is_reported() {
    let mount = tempfile::tempdir().unwrap();
    let root = mount.path().join("sc");
    std::fs::create_dir_all(&root).unwrap();
    // A file where the cgroup should go makes its creation fail.
    std::fs::write(root.join("b"), "in the way").unwrap();
    let text = r#"name = "f"
[[steps]]
name = "s"
hold = { secs = 30 }
cgroups = [{ name = "a" }]
[[steps.ops]]
op = "spawn"
cgroup = "a"
work = "spin"
[[steps.ops]]
op = "add_cgroup"
cgroup = "b"
[[steps]]
name = "never"
hold = { secs = 30 }
"#;
    let s = Scenario::from_toml(text).unwrap();
    let t = topo();
    let mut rec = Recorder::default();
    let started = Instant::now();
    let r = run(&input(&s, &t, mount.path(), "sc"), &mut rec).unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "no hold after a failed op");
    let err = r.error.clone().unwrap();
    assert!(
        err.starts_with("step \"s\" op 2 (add_cgroup): create cgroup ")
            && err.contains("File exists"),
        "{err}"
    );
    assert_eq!(rec.steps, ["s"], "later steps do not run");
    let ops = check(&r, "ops[s]");
    assert!(!ops.passed && ops.detail == err);
    assert_eq!(r.steps[0].cgroups[0].workers.len(), 1, "the spawned worker is still reported");
    assert!(!r.passed());
}

#[test]
fn the_run_loop_can_abort_a_hold() {
    let mount = tempfile::tempdir().unwrap();
    let text = r#"name = "a"
[[steps]]
name = "long"
hold = { secs = 60 }
cgroups = [{ name = "a" }]
[[steps.ops]]
op = "spawn"
cgroup = "a"
work = "sleep_wake"
"#;
    let s = Scenario::from_toml(text).unwrap();
    let t = topo();
    let mut rec = Recorder { stop_after_calls: Some(3), ..Recorder::default() };
    let started = Instant::now();
    let r = run(&input(&s, &t, mount.path(), "sc"), &mut rec).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.error.as_deref(), Some("aborted: the run loop asked to stop"));
    assert_eq!(r.steps.len(), 2, "the step and the backdrop still report");
    assert!(r.steps[0].cgroups[0].workers[0].report.error.is_none(), "workers stopped cleanly");
}

#[test]
fn invalid_scenarios_do_not_start() {
    let mount = tempfile::tempdir().unwrap();
    let s = Scenario::from_toml(
        r#"name = "x"
[[steps]]
name = "s"
hold = { secs = 1 }
cgroups = [{ name = "../up" }]
"#,
    )
    .unwrap();
    let t = topo();
    let err = run(&input(&s, &t, mount.path(), "sc"), &mut Recorder::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("step \"s\" cgroup 1: cgroup name \"../up\" has a \"..\" component"),
        "{err}"
    );
    assert!(!mount.path().join("sc").exists(), "nothing was created");
}

/// A fresh scenario root on the host's cgroup2 mount, if it is writable.
fn real_cgroup_root() -> Option<(PathBuf, String)> {
    static N: AtomicU32 = AtomicU32::new(0);
    let mount = cgroup2_mount()?;
    let name = format!("ktstr-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    match std::fs::create_dir(mount.join(&name)) {
        Ok(()) => {
            std::fs::remove_dir(mount.join(&name)).ok();
            Some((mount, name))
        }
        Err(e) => {
            eprintln!("skipping: cgroup2 at {} is not writable here ({e})", mount.display());
            None
        }
    }
}

#[test]
fn real_cgroups_place_and_capture_workers() {
    let Some((mount, root)) = real_cgroup_root() else { return };
    let text = r#"name = "real"
[checks]
isolation = false
[[steps]]
name = "s"
hold = { ms = 150 }
cgroups = [{ name = "a" }, { name = "b" }]
[[steps.ops]]
op = "spawn"
cgroup = "a"
count = 2
work = "pipe"
[[steps.ops]]
op = "capture"
cgroup = "a"
tag = "two"
[[steps.ops]]
op = "move_tasks"
from = "a"
to = "b"
[[steps.ops]]
op = "capture"
cgroup = "b"
tag = "moved"
[[steps.ops]]
op = "capture"
cgroup = "a"
tag = "empty"
"#;
    let s = Scenario::from_toml(text).unwrap();
    let t = topo();
    let r = run(&input(&s, &t, &mount, &root), &mut Recorder::default()).unwrap();
    assert_eq!(r.error, None, "{r:#?}");
    let step = &r.steps[0];
    let mut workers: Vec<u32> = step.cgroups[0].workers.iter().map(|w| w.report.pid).collect();
    workers.sort_unstable();
    let pids = |tag: &str| {
        let mut p = step.captures.iter().find(|c| c.tag == tag).unwrap().pids.clone();
        p.sort_unstable();
        p
    };
    // Threads of the pipe pairs are not processes: exactly the two workers.
    assert_eq!(pids("two").len(), 2);
    assert!(pids("two").iter().all(|&p| p > 0));
    assert_eq!(pids("two"), workers);
    assert_eq!(pids("moved"), workers);
    assert!(pids("empty").is_empty());
    assert!(!step.cgroups[0].comparable, "moved tasks are not compared for fairness");
    assert!(check(&r, "starvation[s/a]").passed);
    assert!(!mount.join(&root).exists(), "everything was removed");
}

#[test]
fn real_cgroups_run_the_canned_churn() {
    let Some((mount, root)) = real_cgroup_root() else { return };
    let s = Scenario::from_toml(canned("cgroup-churn").unwrap()).unwrap();
    let t = topo();
    let r = run(&input(&s, &t, &mount, &root), &mut Recorder::default()).unwrap();
    assert_eq!(r.error, None, "{r:#?}");
    assert_eq!(
        r.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["out", "back", "nested", "home", BACKDROP]
    );
    let backdrop_pids: Vec<u32> = {
        let mut p: Vec<u32> = r.steps[4].cgroups[0].workers.iter().map(|w| w.report.pid).collect();
        p.sort_unstable();
        p
    };
    assert_eq!(backdrop_pids.len(), 3);
    for (step, tag) in [(0, "moved-out"), (2, "nested"), (3, "home-again")] {
        let mut pids = r.steps[step].captures.iter().find(|c| c.tag == tag).unwrap().pids.clone();
        pids.sort_unstable();
        assert_eq!(pids, backdrop_pids, "{tag}");
    }
    assert!(r.steps.iter().all(|s| s.errors.is_empty()));
    assert!(!r.steps[4].cgroups[0].comparable, "the backdrop's home was churned");
    assert!(!mount.join(&root).exists());
}
