//! `ktstr run --scenario`: cgroups, workers and payloads declared as data,
//! run in a real VM on the cached kernel.

use std::path::{Path, PathBuf};

use ktstr_tests::{
    build_out_of_tree, ktstr, plugin_dir_with, stdout_json, vm_tests_enabled, workspace_root,
};
use serde_json::Value;

/// `ktstr [pre..] run --scenario FILE|NAME args.. --json -` → (exit code,
/// result); on 1n2l2c1t and for 4 s unless `args` gives a `--topology` or a
/// `--duration`.
fn run_scenario(pre: &[&str], scenario: &str, args: &[&str]) -> (i32, Value, String) {
    run_scenario_on(pre, scenario, Some("1n2l2c1t"), args)
}

/// Like [`run_scenario`]; `topology` `None` lets ktstr pick the smallest fit.
fn run_scenario_on(
    pre: &[&str],
    scenario: &str,
    topology: Option<&str>,
    args: &[&str],
) -> (i32, Value, String) {
    let mut all: Vec<&str> = pre.to_vec();
    all.extend(["run", "--scenario", scenario]);
    if let Some(t) = topology {
        all.extend(["--topology", t]);
    }
    if !args.contains(&"--duration") {
        all.extend(["--duration", "4"]);
    }
    all.extend_from_slice(args);
    all.extend(["--json", "-"]);
    let out = ktstr(&all);
    (
        out.status.code().unwrap_or(-1),
        stdout_json(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn step<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["scenario"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {doc:#}"))
}

/// The checks of a result whose name starts with `prefix`, all of which must pass.
fn passed_checks(doc: &Value, prefix: &str) -> usize {
    let checks: Vec<&Value> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"].as_str().unwrap().starts_with(prefix))
        .collect();
    for c in &checks {
        assert_eq!(c["passed"], true, "{c:#}");
    }
    checks.len()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const PROBE: &str = r#"
name = "probe"
[[steps]]
name = "place"
hold = "payloads"
cgroups = [{ name = "outer" }, { name = "outer/inner" }]
[[steps.ops]]
op = "spawn"
cgroup = "outer/inner"
count = 2
work = "sleep_wake"
comm = "napper"
[[steps.ops]]
op = "capture"
cgroup = "outer/inner"
tag = "nappers"
[[steps.ops]]
op = "run_payload"
name = "probe"
plugin = "cgroup-probe"
cgroup = "outer/inner"
"#;

#[test]
fn capture_sees_exactly_the_spawned_workers_and_a_payload_starts_in_its_cgroup() {
    if !vm_tests_enabled("scenario capture and placement") {
        return;
    }
    let so = build_out_of_tree(&workspace_root().join("tests/fixtures/plugins/cgroup-probe"));
    let plugins = plugin_dir_with(&so, &["libcgroup_probe_plugin.so"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "probe.toml", PROBE);
    let (code, doc, stderr) = run_scenario(
        &["--plugin-dir", plugins.path().to_str().unwrap()],
        file.to_str().unwrap(),
        &[],
    );
    assert_eq!(code, 0, "{doc:#}\n{stderr}");
    let place = step(&doc, "place");
    let captures = place["captures"].as_array().unwrap();
    assert_eq!(captures.len(), 1, "{place:#}");
    assert_eq!(captures[0]["tag"], "nappers");
    assert_eq!(captures[0]["cgroup"], "outer/inner");
    let pids: Vec<u64> =
        captures[0]["pids"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()).collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.iter().all(|&p| p > 0));
    // `cat /proc/self/cgroup`: the payload's first action sees its cgroup.
    let probe = &place["payloads"][0];
    assert_eq!(probe["exit_code"], 0, "{probe:#}");
    assert_eq!(probe["stdout_tail"], "0::/ktstr/scenario/outer/inner\n");
}

#[test]
fn two_equal_cgroups_are_fair_under_eevdf_and_scx_simple() {
    if !vm_tests_enabled("two equal cgroups") {
        return;
    }
    for sched in ["eevdf", "scx_simple"] {
        let (code, doc, stderr) = run_scenario(&[], "two-equal-cgroups", &["--scheduler", sched]);
        assert_eq!(code, 0, "{sched}: {doc:#}\n{stderr}");
        assert_eq!(
            passed_checks(&doc, "fairness["),
            1,
            "{sched}: one fairness comparison: {:#}",
            doc["checks"]
        );
        assert!(passed_checks(&doc, "starvation[") >= 2, "{sched}");
        // The run-queue monitor watches scenarios too, and saw no stall.
        assert!(doc["monitor"]["samples"].as_u64().unwrap() > 0, "{sched}: {:#}", doc["monitor"]);
        assert!(doc["monitor"]["stall"].is_null(), "{sched}: {:#}", doc["monitor"]);
        if sched == "scx_simple" {
            assert_eq!(doc["scheduler"]["during_payload"]["ops"], "simple");
        }
    }
}

#[test]
fn every_canned_scenario_runs_and_the_llc_split_stays_isolated() {
    if !vm_tests_enabled("canned scenarios") {
        return;
    }
    let list = stdout_json(&ktstr(&["list-scenarios", "--json"]));
    let names: Vec<String> =
        list.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    for name in &names {
        // The LLC split needs two LLCs: without --topology ktstr picks them.
        let topology = if name == "cpuset-split-per-llc" { None } else { Some("1n2l2c1t") };
        let (code, doc, stderr) = run_scenario_on(&[], name, topology, &[]);
        assert_eq!(code, 0, "{name}: {doc:#}\n{stderr}");
        assert_eq!(doc["verdict"], "PASS", "{name}");
        assert!(doc["scenario"]["error"].is_null(), "{name}: {:#}", doc["scenario"]);
        if name == "cpuset-split-per-llc" {
            assert_eq!(doc["topology"]["requested"], "1n2l2c1t", "the smallest that fits");
            // Both cgroups in both steps: confined to their LLC.
            assert_eq!(passed_checks(&doc, "isolation["), 4, "{:#}", doc["checks"]);
            let cpus: Vec<&Value> = doc["scenario"]["steps"][0]["cgroups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| &c["cpus"])
                .collect();
            assert_eq!(cpus, [&serde_json::json!([0, 1]), &serde_json::json!([2, 3])]);
        }
    }
}

#[test]
fn bad_scenarios_are_rejected_before_boot_with_the_step_and_op() {
    let dir = tempfile::tempdir().unwrap();
    let spawn = |cgroup: &str, comm: &str| {
        format!(
            r#"name = "bad"
[[steps]]
name = "s"
hold = {{ secs = 1 }}
cgroups = [{{ name = "a" }}]
[[steps.ops]]
op = "spawn"
cgroup = "{cgroup}"
work = "spin"
comm = "{comm}"
"#
        )
    };
    let cases = [
        (spawn("nope", "w"), "step \"s\" op 1 (spawn): unknown cgroup \"nope\""),
        (
            spawn("a", "a-name-longer-than-15"),
            "step \"s\" op 1 (spawn): comm \"a-name-longer-than-15\" is 21 bytes; \
             the kernel keeps at most 15",
        ),
        (spawn("../a", "w"), "\"..\""),
        (spawn("a\\u0000b", "w"), "contains a NUL byte"),
        (spawn("", "w"), "step \"s\" op 1 (spawn)"),
        (
            r#"name = "bad"
[[steps]]
name = "s"
hold = { secs = 1 }
cgroups = [{ name = "a", cpuset = "0-7" }]
"#
            .to_string(),
            "step \"s\" cgroup 1: cpuset \"0-7\": \
             CPU 4 is outside the topology 1n2l2c1t (CPUs 0-3)",
        ),
        (
            r#"name = "bad"
[[steps]]
name = "s"
hold = { secs = 1 }
cgroups = [{ name = "a", cpuset = { llc = 2 } }]
"#
            .to_string(),
            "LLC 2 is outside the topology 1n2l2c1t (2 LLCs)",
        ),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let file = write(dir.path(), &format!("bad{i}.toml"), text);
        let out = ktstr(&["run", "--scenario", file.to_str().unwrap(), "--topology", "1n2l2c1t"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {i}: {err}");
        assert!(err.contains(needle), "case {i}: expected `{needle}` in: {err}");
        assert!(!err.contains("booting"), "case {i}: rejected before boot: {err}");
    }
    let out = ktstr(&["run", "--scenario", "no-such-scenario"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("no canned scenario of that name (canned: two-equal-cgroups"));
}

#[test]
fn a_scheduler_that_dies_during_a_scenario_ends_it_with_the_scheduler_failure_verdict() {
    if !vm_tests_enabled("scenario scheduler failure") {
        return;
    }
    // scx_qmap -e N aborts after N enqueues, while the scenario's workers run
    // (about 300 a second here: the 2 ms sleepers; the run would last 30 s).
    let (code, doc, stderr) = run_scenario(
        &[],
        "nested-cgroups",
        &["--scheduler", "scx_qmap", "--sched-arg=-e", "--sched-arg=1500", "--duration", "30"],
    );
    assert_eq!(code, 3, "{doc:#}\n{stderr}");
    assert_eq!(doc["verdict"], "SCHEDULER_FAILED");
    assert!(
        !doc["scheduler"]["failure"]["reason"].as_str().unwrap().is_empty(),
        "{:#}",
        doc["scheduler"]
    );
    // The scenario was torn down and still reported what it had.
    assert!(
        doc["scenario"]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{:#}",
        doc["scenario"]
    );
}
