//! The scenario model's tests: parsing (`parse`), validation on a
//! topology (`validate`), and CPU selections resolved on one.

use super::*;

mod parse;
mod validate;

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
fn cpu_selections_resolve_on_the_topology() {
    let t = topo("2n2l2c1t");
    assert_eq!(CpuSel::Llc(3).resolve(&t).unwrap(), [6, 7]);
    assert_eq!(CpuSel::Node(1).resolve(&t).unwrap(), [4, 5, 6, 7]);
    assert_eq!(CpuSel::List("0,6-7".into()).resolve(&t).unwrap(), [0, 6, 7]);
    assert_eq!(CpuSel::List("".into()).resolve(&t).unwrap_err(), "cpulist \"\" selects no CPU");
}
