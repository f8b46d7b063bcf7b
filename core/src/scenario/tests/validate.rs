//! Validation on a 1n2l2c1t machine: each error named, several as one message.

use super::*;

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
