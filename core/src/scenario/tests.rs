use super::*;

fn topo(s: &str) -> Topology {
    s.parse().unwrap()
}

/// A one-step scenario around `ops` (TOML array-of-tables text), with
/// cgroups a and b set up.
fn with_ops(ops: &str) -> String {
    format!(
        r#"name = "t"
[[steps]]
name = "split"
hold = {{ secs = 1 }}
cgroups = [{{ name = "a" }}, {{ name = "b" }}]
{ops}"#
    )
}

/// The validation errors of `text` on a 1n2l2c1t machine (4 CPUs, 2 LLCs).
fn errors(text: &str) -> Vec<String> {
    let s = Scenario::from_toml(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    match s.validate(&topo("1n2l2c1t")) {
        Ok(()) => Vec::new(),
        Err(ScenarioError::Invalid(v)) => v,
        Err(e) => panic!("{e}"),
    }
}

fn one_error(text: &str) -> String {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap()
}

fn spawn(cgroup: &str) -> String {
    format!("[[steps.ops]]\nop = \"spawn\"\ncgroup = \"{cgroup}\"\nwork = \"spin\"\n")
}

#[test]
fn parses_every_op_and_form() {
    let text = r#"
name = "all"
description = "every op"
[checks]
fairness_max_spread = 0.5
isolation = false
[backdrop]
cgroups = [{ name = "bg", cpuset = "0-1" }]
[[backdrop.ops]]
op = "spawn"
cgroup = "bg"
count = 2
work = { kind = "cache_thrash", working_set_kib = 64 }
comm = "bg"
[[steps]]
name = "s1"
hold = { ms = 250 }
cgroups = [{ name = "a", cpuset = { llc = 1 } }, { name = "a/b", cpuset = { node = 0 } }]
[[steps.ops]]
op = "add_cgroup"
cgroup = "c"
cpuset = { cpus = "3" }
[[steps.ops]]
op = "set_cpuset"
cgroup = "c"
cpus = "2-3"
[[steps.ops]]
op = "clear_cpuset"
cgroup = "c"
[[steps.ops]]
op = "spawn"
cgroup = "a/b"
work = { kind = "sleep_wake", duty = 0.25, period_us = 1000 }
[[steps.ops]]
op = "set_affinity"
cgroup = "a/b"
cpus = "2"
[[steps.ops]]
op = "run_payload"
name = "p"
plugin = "workers"
cgroup = "a"
[[steps.ops]]
op = "move_tasks"
from = "a"
to = "c"
[[steps.ops]]
op = "capture"
cgroup = "c"
tag = "moved"
[[steps.ops]]
op = "kill_payload"
name = "p"
[[steps.ops]]
op = "remove_cgroup"
cgroup = "c"
[[steps]]
name = "s2"
hold = "payloads"
[[steps.ops]]
op = "run_payload"
name = "q"
plugin = "fio"
args = []
cgroup = "bg"
[[steps]]
name = "s3"
hold = { fraction = 0.5 }
[[steps.ops]]
op = "spawn"
cgroup = "bg"
work = "pipe"
"#;
    let s = Scenario::from_toml(text).unwrap();
    assert_eq!(
        s.checks,
        ChecksConfig { fairness_max_spread: 0.5, isolation: false, ..ChecksConfig::default() }
    );
    assert_eq!(s.steps[0].hold, Hold::Ms(250));
    assert_eq!(s.steps[1].hold, Hold::Payloads);
    assert_eq!(s.steps[2].hold, Hold::Fraction(0.5));
    assert_eq!(s.steps[0].cgroups[0].cpuset, Some(CpuSel::Llc(1)));
    assert_eq!(s.steps[0].ops.len(), 10);
    assert!(matches!(&s.steps[0].ops[5], Op::RunPayload { args: None, .. }));
    assert!(matches!(&s.steps[1].ops[0], Op::RunPayload { args: Some(a), .. } if a.is_empty()));
    assert!(matches!(&s.backdrop.ops[0], Op::Spawn { count: 2, .. }));
    let kinds: Vec<&str> = s.steps[0].ops.iter().map(Op::kind).collect();
    assert_eq!(kinds[..3], ["add_cgroup", "set_cpuset", "clear_cpuset"]);
    s.validate(&topo("1n2l2c1t")).unwrap();
    assert_eq!(s.payload_plugins().into_iter().collect::<Vec<_>>(), ["fio", "workers"]);
    // The scenario travels to the guest as JSON inside the run plan.
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<Scenario>(&json).unwrap(), s);
}

#[test]
fn parse_errors_say_what_is_accepted() {
    let bad_hold = "name = \"t\"\n[[steps]]\nname = \"s\"\nhold = \"forever\"\n";
    let e = Scenario::from_toml(bad_hold).unwrap_err().to_string();
    assert!(
        e.starts_with("bad scenario: ")
            && e.contains("unknown hold \"forever\"; expected \"payloads\", { secs = N }"),
        "{e}"
    );
    let e = Scenario::from_toml(&with_ops("[[steps.ops]]\nop = \"teleport\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown variant `teleport`"), "{e}");
    let e = Scenario::from_toml(&with_ops(
        "[[steps.ops]]\nop = \"capture\"\ncgroup = \"a\"\ntag = \"t\"\ncolour = 1\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown field `colour`"), "{e}");
    let two = "name = \"t\"\n[[steps]]\nname = \"s\"\nhold = { secs = 1, ms = 2 }\n";
    let e = Scenario::from_toml(two).unwrap_err().to_string();
    assert!(e.contains("unexpected second key"), "{e}");
    let sel = with_ops("[[steps.ops]]\nop = \"set_cpuset\"\ncgroup = \"a\"\ncpus = { core = 1 }\n");
    assert!(Scenario::from_toml(&sel)
        .unwrap_err()
        .to_string()
        .contains("unknown CPU selection key `core`"));
    assert!(Scenario::from_toml("name = \"t\"\n")
        .unwrap_err()
        .to_string()
        .contains("missing field `steps`"));
}

#[test]
fn valid_one_step_scenario_passes() {
    assert_eq!(errors(&with_ops(&spawn("a"))), Vec::<String>::new());
}

#[test]
fn unknown_and_malformed_cgroups() {
    let e = one_error(&with_ops(&format!("{}{}", spawn("a"), spawn("c"))));
    assert_eq!(e, "step \"split\" op 2 (spawn): unknown cgroup \"c\"");
    for (name, why) in [
        ("", "empty cgroup name"),
        ("/a", "cgroup name \"/a\" must be relative to the scenario root (no leading \"/\")"),
        ("a/../b", "cgroup name \"a/../b\" has a \"..\" component"),
        ("./a", "cgroup name \"./a\" has a \".\" component"),
        ("a//b", "cgroup name \"a//b\" has an empty component"),
        ("a\\u0000b", "cgroup name \"a\\0b\" contains a NUL byte"),
        (
            "a b",
            "cgroup name \"a b\" has \"a b\" \
             (only letters, digits, '.', '_' and '-' are allowed)",
        ),
        (
            "cgroup.procs",
            "cgroup name \"cgroup.procs\" has \"cgroup.procs\" \
             (clashes with cgroup interface files)",
        ),
    ] {
        let text = format!(
            r#"name = "t"
[[steps]]
name = "split"
hold = {{ secs = 1 }}
cgroups = [{{ name = "{name}" }}]
"#
        );
        assert_eq!(one_error(&text), format!("step \"split\" cgroup 1: {why}"), "{name:?}");
    }
    // A malformed name in an op is reported as malformed, not unknown.
    let e = one_error(&with_ops(&spawn("../etc")));
    assert_eq!(e, "step \"split\" op 1 (spawn): cgroup name \"../etc\" has a \"..\" component");
}

#[test]
fn nesting_and_duplicates() {
    let text = r#"name = "t"
[[steps]]
name = "s"
hold = { secs = 1 }
cgroups = [{ name = "p/c" }, { name = "x" }, { name = "x" }]
"#;
    assert_eq!(
        errors(text),
        [
            "step \"s\" cgroup 1: parent \"p\" of cgroup \"p/c\" does not exist",
            "step \"s\" cgroup 3: cgroup \"x\" already exists"
        ]
    );
    let ok = r#"name = "t"
[[steps]]
name = "s"
hold = { secs = 1 }
cgroups = [{ name = "p" }, { name = "p/c" }]
"#;
    assert!(errors(ok).is_empty());
}

#[test]
fn comm_and_work_and_count() {
    let op = |extra: &str| {
        with_ops(&format!(
            "[[steps.ops]]\nop = \"spawn\"\ncgroup = \"a\"\nwork = \"spin\"\n{extra}\n"
        ))
    };
    assert_eq!(
        one_error(&op("comm = \"sixteen-bytes-xx\"")),
        "step \"split\" op 1 (spawn): comm \"sixteen-bytes-xx\" is 16 bytes; \
         the kernel keeps at most 15"
    );
    assert_eq!(
        one_error(&op("comm = \"\"")),
        "step \"split\" op 1 (spawn): comm must not be empty"
    );
    assert_eq!(
        one_error(&op("count = 0")),
        "step \"split\" op 1 (spawn): count 0 must be in [1, 1024]"
    );
    let duty = with_ops(
        "[[steps.ops]]\nop = \"spawn\"\ncgroup = \"a\"\nwork = { kind = \"spin\", duty = 0.5 }\n",
    );
    assert_eq!(
        one_error(&duty),
        "step \"split\" op 1 (spawn): work: `duty` applies only to sleep_wake work, not spin"
    );
    let many: String = (0..5)
        .map(|_| "[[steps.ops]]\nop = \"spawn\"\ncgroup = \"a\"\nwork = \"spin\"\ncount = 1000\n")
        .collect();
    assert_eq!(
        errors(&with_ops(&many))[0],
        "step \"split\" op 5 (spawn): 5000 workers would be alive at once; at most 4096"
    );
}

#[test]
fn cpu_selections_outside_the_topology() {
    let set = |sel: &str| {
        with_ops(&format!("[[steps.ops]]\nop = \"set_cpuset\"\ncgroup = \"a\"\ncpus = {sel}\n"))
    };
    assert_eq!(
        one_error(&set("\"0-4\"")),
        "step \"split\" op 1 (set_cpuset): cpuset \"0-4\": \
         CPU 4 is outside the topology 1n2l2c1t (CPUs 0-3)"
    );
    assert_eq!(
        one_error(&set("{ llc = 2 }")),
        "step \"split\" op 1 (set_cpuset): cpuset { llc = 2 }: \
         LLC 2 is outside the topology 1n2l2c1t (2 LLCs)"
    );
    assert_eq!(
        one_error(&set("{ node = 1 }")),
        "step \"split\" op 1 (set_cpuset): cpuset { node = 1 }: \
         node 1 is outside the topology 1n2l2c1t (1 nodes)"
    );
    assert!(one_error(&set("\"3-1\""))
        .starts_with("step \"split\" op 1 (set_cpuset): cpuset \"3-1\": bad cpulist"));
    let pin = |sel: &str| {
        with_ops(&format!(
            "{}[[steps.ops]]\nop = \"set_affinity\"\ncgroup = \"a\"\ncpus = {sel}\n",
            spawn("a")
        ))
    };
    assert_eq!(
        one_error(&pin("\"7\"")),
        "step \"split\" op 2 (set_affinity): affinity \"7\": \
         CPU 7 is outside the topology 1n2l2c1t (CPUs 0-3)"
    );
    assert!(errors(&pin("{ llc = 1 }")).is_empty());
    // Pinning outside the cgroup's cpuset cannot work: the kernel refuses it.
    let disjoint = format!(
        r#"{}[[steps.ops]]
op = "set_cpuset"
cgroup = "a"
cpus = {{ llc = 0 }}
[[steps.ops]]
op = "set_affinity"
cgroup = "a"
cpus = "2-3"
"#,
        spawn("a")
    );
    assert_eq!(
        one_error(&with_ops(&disjoint)),
        "step \"split\" op 3 (set_affinity): \
         affinity \"2-3\" has no CPU in the cpuset of \"a\" (\"0-1\")"
    );
    let idle = with_ops("[[steps.ops]]\nop = \"set_affinity\"\ncgroup = \"b\"\ncpus = \"1\"\n");
    assert_eq!(
        one_error(&idle),
        "step \"split\" op 1 (set_affinity): cgroup \"b\" has no workers to pin"
    );
}

#[test]
fn payload_names() {
    let run = |name: &str| {
        format!(
            r#"[[steps.ops]]
op = "run_payload"
name = "{name}"
plugin = "workers"
cgroup = "a"
"#
        )
    };
    let e = one_error(&with_ops(&format!("{}{}", run("p"), run("p"))));
    assert_eq!(e, "step \"split\" op 2 (run_payload): duplicate payload name \"p\"");
    let e = one_error(&with_ops("[[steps.ops]]\nop = \"wait_payload\"\nname = \"ghost\"\n"));
    assert_eq!(e, "step \"split\" op 1 (wait_payload): unknown payload \"ghost\"");
    let twice = format!(
        r#"{}[[steps.ops]]
op = "kill_payload"
name = "p"
[[steps.ops]]
op = "wait_payload"
name = "p"
"#,
        run("p")
    );
    assert_eq!(
        one_error(&with_ops(&twice)),
        "step \"split\" op 3 (wait_payload): payload \"p\" is no longer running \
         (already waited for or killed, or its step ended)"
    );
    // A later step cannot wait for a payload its own step already ended.
    let later = format!(
        r#"{}[[steps]]
name = "next"
hold = {{ secs = 1 }}
[[steps.ops]]
op = "kill_payload"
name = "p"
"#,
        with_ops(&run("p"))
    );
    assert!(one_error(&later)
        .starts_with("step \"next\" op 1 (kill_payload): payload \"p\" is no longer running"));
    let hold = "name = \"t\"\n[[steps]]\nname = \"s\"\nhold = \"payloads\"\n";
    assert_eq!(
        one_error(hold),
        "step \"s\" (hold): hold = \"payloads\" but no payload of this step is still running"
    );
}

#[test]
fn removing_cgroups_in_use() {
    let rm = |c: &str| format!("[[steps.ops]]\nop = \"remove_cgroup\"\ncgroup = \"{c}\"\n");
    let e = one_error(&with_ops(&format!("{}{}", spawn("a"), rm("a"))));
    assert_eq!(
        e,
        "step \"split\" op 2 (remove_cgroup): cgroup \"a\" still holds workers or payloads; \
         move them out or stop its payloads first"
    );
    let nested = r#"name = "t"
[[steps]]
name = "s"
hold = { secs = 1 }
cgroups = [{ name = "p" }, { name = "p/c" }]
[[steps.ops]]
op = "remove_cgroup"
cgroup = "p"
"#;
    assert_eq!(
        one_error(nested),
        "step \"s\" op 1 (remove_cgroup): cgroup \"p\" still has the child cgroup \"p/c\""
    );
    assert!(errors(&with_ops(&rm("b"))).is_empty(), "an empty cgroup can go");
    let moved_then_removed = format!(
        "{}[[steps.ops]]\nop = \"move_tasks\"\nfrom = \"a\"\nto = \"b\"\n{}",
        spawn("a"),
        rm("a")
    );
    assert!(
        errors(&with_ops(&moved_then_removed)).is_empty(),
        "moving the tasks out frees the cgroup"
    );
    assert_eq!(
        one_error(&with_ops("[[steps.ops]]\nop = \"move_tasks\"\nfrom = \"a\"\nto = \"a\"\n")),
        "step \"split\" op 1 (move_tasks): moves tasks from \"a\" to itself"
    );
}

#[test]
fn step_cgroups_end_with_their_step() {
    let backdrop = r#"name = "t"
[backdrop]
cgroups = [{ name = "home" }]
[[backdrop.ops]]
op = "spawn"
cgroup = "home"
work = "spin"
"#;
    // Backdrop workers left in a step's own cgroup would block its removal.
    let stranded = format!(
        r#"{backdrop}[[steps]]
name = "s"
hold = {{ secs = 1 }}
cgroups = [{{ name = "tmp" }}]
[[steps.ops]]
op = "move_tasks"
from = "home"
to = "tmp"
"#
    );
    assert_eq!(
        one_error(&stranded),
        "step \"s\" (end): cgroup \"tmp\" is removed when the step ends \
         but still holds backdrop tasks moved there; move them out first"
    );
    // add_cgroup outlives the step, so the same move is fine there.
    let added = format!(
        r#"{backdrop}[[steps]]
name = "s"
hold = {{ secs = 1 }}
[[steps.ops]]
op = "add_cgroup"
cgroup = "tmp"
[[steps.ops]]
op = "move_tasks"
from = "home"
to = "tmp"
"#
    );
    assert!(errors(&added).is_empty());
    let gone = format!(
        "{}[[steps]]\nname = \"later\"\nhold = {{ secs = 1 }}\n{}",
        with_ops(""),
        spawn("a")
    );
    assert_eq!(one_error(&gone), "step \"later\" op 1 (spawn): unknown cgroup \"a\"");
    let capture_twice = r#"[[steps.ops]]
op = "capture"
cgroup = "a"
tag = "t"
[[steps.ops]]
op = "capture"
cgroup = "b"
tag = "t"
"#;
    assert_eq!(
        one_error(&with_ops(capture_twice)),
        "step \"split\" op 2 (capture): duplicate capture tag \"t\" in this step"
    );
}

#[test]
fn backdrop_and_scenario_level_errors() {
    let e = errors(
        r#"name = ""
steps = []
[backdrop]
[[backdrop.ops]]
op = "spawn"
cgroup = "nope"
work = "spin"
"#,
    );
    assert_eq!(
        e,
        [
            "scenario: the name must not be empty",
            "scenario: no steps; a scenario needs at least one",
            "backdrop op 1 (spawn): unknown cgroup \"nope\""
        ]
    );
    let steps = r#"name = "t"
[[steps]]
name = "x"
hold = { secs = 0 }
[[steps]]
name = "x"
hold = { fraction = 1.5 }
[[steps]]
name = "backdrop"
hold = { ms = 0 }
"#;
    assert_eq!(
        errors(steps),
        [
            "scenario: duplicate step name \"x\"",
            "scenario: step 3 may not be named \"backdrop\" (reserved)",
            "step \"x\" (hold): secs must be in (0, 86400], not 0",
            "step \"x\" (hold): fraction must be in (0, 1], not 1.5",
            "step \"backdrop\" (hold): ms must be in [1, 86400000], not 0",
        ]
    );
    let checks = r#"name = "t"
[checks]
fairness_max_spread = -1
[[steps]]
name = "s"
hold = { secs = 1 }
"#;
    assert_eq!(
        one_error(checks),
        "checks: fairness_max_spread must be a finite number >= 0, not -1"
    );
}

#[test]
fn several_errors_render_as_one_message() {
    let e = Scenario::from_toml(&with_ops(&format!("{}{}", spawn("x"), spawn("y"))))
        .unwrap()
        .validate(&topo("1n2l2c1t"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "2 problems in the scenario:\
         \n  step \"split\" op 1 (spawn): unknown cgroup \"x\"\
         \n  step \"split\" op 2 (spawn): unknown cgroup \"y\""
    );
}

#[test]
fn cpu_selections_resolve_on_the_topology() {
    let t = topo("2n2l2c1t");
    assert_eq!(CpuSel::Llc(3).resolve(&t).unwrap(), [6, 7]);
    assert_eq!(CpuSel::Node(1).resolve(&t).unwrap(), [4, 5, 6, 7]);
    assert_eq!(CpuSel::List("0,6-7".into()).resolve(&t).unwrap(), [0, 6, 7]);
    assert_eq!(CpuSel::List("".into()).resolve(&t).unwrap_err(), "cpulist \"\" selects no CPU");
}
