//! Every op and form parses; parse errors say what is accepted.

use super::*;

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
