//! Helpers shared by the unit tests.

use std::path::Path;

use crate::cpulist::format_cpulist;
use crate::model::Topology;

/// `s` parsed; panics when it is not a topology.
pub(crate) fn t(s: &str) -> Topology {
    s.parse().unwrap()
}

/// Writes the sysfs files a guest with `topo` would have.
pub(crate) fn fake_sysfs(root: &Path, topo: &Topology) {
    let w = |rel: String, content: String| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content + "\n").unwrap();
    };
    let n = topo.cpus();
    w("sys/devices/system/cpu/online".into(), format!("0-{}", n - 1));
    w("sys/devices/system/cpu/possible".into(), format!("0-{}", n - 1));
    for cpu in 0..n {
        let base = format!("sys/devices/system/cpu/cpu{cpu}");
        for (i, level) in [(0, 1), (1, 1), (2, 2)] {
            w(format!("{base}/cache/index{i}/shared_cpu_list"), cpu.to_string());
            w(format!("{base}/cache/index{i}/level"), level.to_string());
        }
        w(format!("{base}/cache/index3/shared_cpu_list"), format_cpulist(&topo.llc_siblings(cpu)));
        w(format!("{base}/cache/index3/level"), "3".into());
        w(
            format!("{base}/topology/thread_siblings_list"),
            format_cpulist(&topo.thread_siblings(cpu)),
        );
    }
    std::fs::create_dir_all(root.join("sys/devices/system/cpu/cpufreq")).unwrap();
    for node in 0..topo.nodes {
        let base = format!("sys/devices/system/node/node{node}");
        w(format!("{base}/cpulist"), format_cpulist(&topo.node_cpus(node)));
        w(
            format!("{base}/meminfo"),
            format!("Node {node} MemTotal:       242380 kB\nNode {node} MemFree:  1 kB"),
        );
    }
    w("sys/devices/system/node/online".into(), format!("0-{}", topo.nodes - 1));
}
