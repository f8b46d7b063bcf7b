//! The differences between the topology asked for and the one the guest sees.

use crate::cpulist::format_cpulist;
use crate::model::Topology;
use crate::sysfs::GuestTopology;

/// Differences between the topology asked for and the one the guest sees,
/// one line each; empty when they match.
pub fn compare(expected: &Topology, seen: &GuestTopology) -> Vec<String> {
    let mut out = Vec::new();
    let all: Vec<u32> = (0..expected.cpus()).collect();
    if seen.online != all {
        out.push(format!(
            "online CPUs are \"{}\", expected \"{}\"",
            format_cpulist(&seen.online),
            format_cpulist(&all)
        ));
    }
    let present: Vec<u32> = seen.cpus.iter().map(|c| c.cpu).collect();
    if present != all {
        out.push(format!(
            "the guest has CPUs \"{}\", expected \"{}\"",
            format_cpulist(&present),
            format_cpulist(&all)
        ));
    }
    for c in seen.cpus.iter().filter(|c| c.cpu < expected.cpus()) {
        let want = expected.llc_siblings(c.cpu);
        match &c.llc {
            None => out.push(format!(
                "cpu{}: no cache information in sysfs, expected LLC \"{}\"",
                c.cpu,
                format_cpulist(&want)
            )),
            Some(got) if *got != want => {
                let level = c
                    .llc_level
                    .map(|l| format!("L{l}"))
                    .unwrap_or_else(|| "last-level cache".into());
                out.push(format!(
                    "cpu{}: {level} shared with \"{}\", expected \"{}\"",
                    c.cpu,
                    format_cpulist(got),
                    format_cpulist(&want)
                ));
            }
            Some(_) => {}
        }
        let want = expected.thread_siblings(c.cpu);
        match &c.thread_siblings {
            None => out.push(format!(
                "cpu{}: no thread_siblings_list, expected \"{}\"",
                c.cpu,
                format_cpulist(&want)
            )),
            Some(got) if *got != want => {
                out.push(format!(
                    "cpu{}: thread siblings \"{}\", expected \"{}\"",
                    c.cpu,
                    format_cpulist(got),
                    format_cpulist(&want)
                ));
            }
            Some(_) => {}
        }
    }
    compare_nodes(expected, seen, &mut out);
    out
}

fn compare_nodes(expected: &Topology, seen: &GuestTopology, out: &mut Vec<String>) {
    // Without CONFIG_NUMA there is no node directory: fine for one node.
    if seen.nodes.is_empty() {
        if expected.nodes > 1 {
            out.push(format!("the guest has no NUMA nodes in sysfs, expected {}", expected.nodes));
        }
        return;
    }
    let seen_ids: Vec<u32> = seen.nodes.iter().map(|n| n.node).collect();
    let want_ids: Vec<u32> = (0..expected.nodes).collect();
    if seen_ids != want_ids {
        out.push(format!(
            "the guest has NUMA nodes \"{}\", expected \"{}\"",
            format_cpulist(&seen_ids),
            format_cpulist(&want_ids)
        ));
    }
    for n in &seen.nodes {
        let want = if n.node < expected.nodes { expected.node_cpus(n.node) } else { Vec::new() };
        if n.cpus != want {
            out.push(format!(
                "node{}: CPUs \"{}\", expected \"{}\"",
                n.node,
                format_cpulist(&n.cpus),
                format_cpulist(&want)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{fake_sysfs, t};

    #[test]
    fn reports_mismatches() {
        let dir = tempfile::tempdir().unwrap();
        fake_sysfs(dir.path(), &t("1n1l4c1t"));
        let seen = GuestTopology::read_from_sysfs(dir.path()).unwrap();
        let diffs = compare(&t("1n2l2c1t"), &seen);
        assert_eq!(diffs.len(), 4, "{diffs:?}");
        assert_eq!(diffs[0], "cpu0: L3 shared with \"0-3\", expected \"0-1\"");

        let diffs = compare(&t("2n1l2c1t"), &seen);
        assert!(
            diffs.contains(&"the guest has NUMA nodes \"0\", expected \"0-1\"".to_string()),
            "{diffs:?}"
        );
        assert!(diffs.contains(&"node0: CPUs \"0-3\", expected \"0-1\"".to_string()), "{diffs:?}");

        let diffs = compare(&t("1n1l2c2t"), &seen);
        assert!(
            diffs.contains(&"cpu1: thread siblings \"1\", expected \"0-1\"".to_string()),
            "{diffs:?}"
        );

        let diffs = compare(&t("1n1l8c1t"), &seen);
        assert!(
            diffs.iter().any(|d| d.starts_with("online CPUs are \"0-3\", expected \"0-7\"")),
            "{diffs:?}"
        );
        assert!(diffs.iter().any(|d| d.starts_with("the guest has CPUs \"0-3\"")), "{diffs:?}");
    }
}
