//! The CPU topology a test asks for (`NnNlNcNt`), the view the guest should
//! have of it, the view it really has (read from sysfs), and the difference.
//!
//! CPU numbering follows what Linux does in a VM: CPUs are numbered in APIC-id
//! order, which is node → LLC → core → thread order, so
//! `cpu = ((node * L + llc) * C + core) * T + thread`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The test kernel is built with `NR_CPUS=64`.
pub const MAX_CPUS: u32 = 64;

const SYNTAX_HINT: &str =
    "expected NnNlNcNt, e.g. 1n2l2c1t (nodes, LLCs per node, cores per LLC, threads per core)";

/// A requested topology; each level is nested in its parent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Topology {
    pub nodes: u32,
    pub llcs_per_node: u32,
    pub cores_per_llc: u32,
    pub threads_per_core: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopologyError {
    #[error("bad topology \"{0}\": {SYNTAX_HINT}")]
    Syntax(String),
    #[error("bad topology \"{spec}\": the {level} count must be at least 1")]
    Zero { spec: String, level: &'static str },
    #[error("topology \"{spec}\" has {cpus} CPUs; at most {MAX_CPUS} are supported (the test kernel is built with NR_CPUS={MAX_CPUS})")]
    TooManyCpus { spec: String, cpus: u64 },
}

impl FromStr for Topology {
    type Err = TopologyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || TopologyError::Syntax(s.to_string());
        let mut rest = s.trim();
        let mut counts = [0u32; 4];
        for (count, suffix) in counts.iter_mut().zip(['n', 'l', 'c', 't']) {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 || !rest[digits..].starts_with(suffix) {
                return Err(syntax());
            }
            *count = rest[..digits].parse().map_err(|_| syntax())?;
            rest = &rest[digits + 1..];
        }
        if !rest.is_empty() {
            return Err(syntax());
        }
        let names = ["node", "LLC", "core", "thread"];
        if let Some(i) = counts.iter().position(|&c| c == 0) {
            return Err(TopologyError::Zero { spec: s.to_string(), level: names[i] });
        }
        let cpus = counts.iter().map(|&c| u64::from(c)).product::<u64>();
        if cpus > u64::from(MAX_CPUS) {
            return Err(TopologyError::TooManyCpus { spec: s.to_string(), cpus });
        }
        let [nodes, llcs_per_node, cores_per_llc, threads_per_core] = counts;
        Ok(Topology { nodes, llcs_per_node, cores_per_llc, threads_per_core })
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}n{}l{}c{}t",
            self.nodes, self.llcs_per_node, self.cores_per_llc, self.threads_per_core
        )
    }
}

impl Topology {
    pub fn cpus(&self) -> u32 {
        self.nodes * self.llcs_per_node * self.cores_per_llc * self.threads_per_core
    }

    pub fn llcs(&self) -> u32 {
        self.nodes * self.llcs_per_node
    }

    pub fn cores(&self) -> u32 {
        self.llcs() * self.cores_per_llc
    }

    fn cpus_per_llc(&self) -> u32 {
        self.cores_per_llc * self.threads_per_core
    }

    fn cpus_per_node(&self) -> u32 {
        self.llcs_per_node * self.cpus_per_llc()
    }

    /// Global index of the LLC holding `cpu`.
    pub fn llc_of(&self, cpu: u32) -> u32 {
        cpu / self.cpus_per_llc()
    }

    pub fn node_of(&self, cpu: u32) -> u32 {
        cpu / self.cpus_per_node()
    }

    /// Global index of the core holding `cpu`.
    pub fn core_of(&self, cpu: u32) -> u32 {
        cpu / self.threads_per_core
    }

    /// The CPUs sharing `cpu`'s LLC.
    pub fn llc_siblings(&self, cpu: u32) -> Vec<u32> {
        block(self.llc_of(cpu), self.cpus_per_llc())
    }

    /// The guest's `core_siblings_list` (its package): ktstr presents each
    /// LLC as a package, so these are the LLC siblings.
    pub fn core_siblings(&self, cpu: u32) -> Vec<u32> {
        self.llc_siblings(cpu)
    }

    pub fn thread_siblings(&self, cpu: u32) -> Vec<u32> {
        block(self.core_of(cpu), self.threads_per_core)
    }

    pub fn node_cpus(&self, node: u32) -> Vec<u32> {
        block(node, self.cpus_per_node())
    }

    /// One cpulist per LLC, in LLC order.
    pub fn expected_llc_cpulists(&self) -> Vec<String> {
        (0..self.llcs()).map(|l| format_cpulist(&block(l, self.cpus_per_llc()))).collect()
    }

    /// One cpulist per node, in node order.
    pub fn expected_node_cpulists(&self) -> Vec<String> {
        (0..self.nodes).map(|n| format_cpulist(&self.node_cpus(n))).collect()
    }

    /// One cpulist per core (its SMT siblings), in core order.
    pub fn expected_thread_siblings_lists(&self) -> Vec<String> {
        (0..self.cores()).map(|c| format_cpulist(&block(c, self.threads_per_core))).collect()
    }
}

/// The `index`-th run of `len` consecutive CPUs.
fn block(index: u32, len: u32) -> Vec<u32> {
    (index * len..(index + 1) * len).collect()
}

/// Formats CPUs the way the kernel prints a cpulist: "0-3,8,10-11".
pub fn format_cpulist(cpus: &[u32]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        let end = sorted[i];
        parts.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
        i += 1;
    }
    parts.join(",")
}

/// Parses a kernel cpulist ("0-3,8,10-11"; empty means none), sorted and deduplicated.
pub fn parse_cpulist(s: &str) -> anyhow::Result<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || anyhow::anyhow!("bad cpulist {:?}: cannot read {part:?}", s.trim());
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// What the guest kernel reports about its topology (read from sysfs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestTopology {
    /// `/sys/devices/system/cpu/online`.
    pub online: Vec<u32>,
    /// Every `cpuN` directory, in CPU order.
    pub cpus: Vec<GuestCpu>,
    /// Every `nodeM` directory, in node order; empty without NUMA support.
    pub nodes: Vec<GuestNode>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestCpu {
    pub cpu: u32,
    /// `shared_cpu_list` of the last-level cache: `index3`, or the highest index present.
    pub llc: Option<Vec<u32>>,
    /// The `level` of that cache (3 for an L3).
    pub llc_level: Option<u32>,
    pub thread_siblings: Option<Vec<u32>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestNode {
    pub node: u32,
    pub cpus: Vec<u32>,
    pub mem_total_kib: Option<u64>,
}

impl GuestTopology {
    /// Reads the topology under `root` (`/` in the guest).
    pub fn read_from_sysfs(root: &Path) -> anyhow::Result<GuestTopology> {
        let cpu_dir = root.join("sys/devices/system/cpu");
        let mut cpus = Vec::new();
        for (cpu, dir) in numbered_entries(&cpu_dir, "cpu")? {
            let (llc, llc_level) = match last_level_cache(&dir.join("cache"))? {
                Some((list, level)) => (Some(list), level),
                None => (None, None),
            };
            let thread_siblings = read_opt(&dir.join("topology/thread_siblings_list"))?
                .map(|s| parse_cpulist(&s))
                .transpose()?;
            cpus.push(GuestCpu { cpu, llc, llc_level, thread_siblings });
        }
        let online = match read_opt(&cpu_dir.join("online"))? {
            Some(s) => parse_cpulist(&s)?,
            None => cpus.iter().map(|c| c.cpu).collect(),
        };
        let node_dir = root.join("sys/devices/system/node");
        let mut nodes = Vec::new();
        if node_dir.is_dir() {
            for (node, dir) in numbered_entries(&node_dir, "node")? {
                let cpus = parse_cpulist(&read_opt(&dir.join("cpulist"))?.unwrap_or_default())?;
                let mem_total_kib = read_opt(&dir.join("meminfo"))?.and_then(|m| mem_total_kib(&m));
                nodes.push(GuestNode { node, cpus, mem_total_kib });
            }
        }
        Ok(GuestTopology { online, cpus, nodes })
    }
}

/// Entries of `dir` named `<prefix><number>`, sorted by number.
fn numbered_entries(dir: &Path, prefix: &str) -> anyhow::Result<Vec<(u32, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(n) =
            name.to_str().and_then(|n| n.strip_prefix(prefix)).and_then(|n| n.parse().ok())
        else {
            continue;
        };
        out.push((n, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// `shared_cpu_list` and `level` of `index3`, else of the highest `indexN`.
fn last_level_cache(cache: &Path) -> anyhow::Result<Option<(Vec<u32>, Option<u32>)>> {
    if !cache.is_dir() {
        return Ok(None);
    }
    let indices = numbered_entries(cache, "index")?;
    let chosen = indices.iter().find(|(i, _)| *i == 3).or(indices.last());
    let Some((_, dir)) = chosen else { return Ok(None) };
    let Some(list) = read_opt(&dir.join("shared_cpu_list"))? else { return Ok(None) };
    let level = read_opt(&dir.join("level"))?.and_then(|l| l.trim().parse().ok());
    Ok(Some((parse_cpulist(&list)?, level)))
}

/// The file's content, or None when it does not exist.
fn read_opt(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// "Node 0 MemTotal:  499628 kB" → 499628.
fn mem_total_kib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.contains("MemTotal:"))?;
    line.split_whitespace().rev().nth(1)?.parse().ok()
}

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

    fn t(s: &str) -> Topology {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        for s in ["1n1l1c1t", "1n2l2c1t", "1n2l4c2t", "2n4l2c1t", "2n1l2c2t", "1n1l64c1t"] {
            assert_eq!(t(s).to_string(), s);
        }
        assert_eq!(
            t("2n4l2c1t"),
            Topology { nodes: 2, llcs_per_node: 4, cores_per_llc: 2, threads_per_core: 1 }
        );
        assert_eq!(t("2n4l2c1t").cpus(), 16);
        assert_eq!(t("1n2l4c2t").cpus(), 16);
        assert_eq!(t("1n1l1c1t").cpus(), 1);
    }

    #[test]
    fn rejects_bad_strings() {
        for s in [
            "",
            "1n2x",
            "1n2l2c",
            "1n2l2c1t1",
            "n2l2c1t",
            "1l2n2c1t",
            "1n2l2c1tx",
            "-1n2l2c1t",
            "1n 2l2c1t",
        ] {
            assert!(matches!(s.parse::<Topology>(), Err(TopologyError::Syntax(_))), "{s:?}");
        }
        let err = "1n2x".parse::<Topology>().unwrap_err().to_string();
        assert_eq!(err, "bad topology \"1n2x\": expected NnNlNcNt, e.g. 1n2l2c1t (nodes, LLCs per node, cores per LLC, threads per core)");
        assert_eq!(
            "1n0l2c1t".parse::<Topology>().unwrap_err(),
            TopologyError::Zero { spec: "1n0l2c1t".into(), level: "LLC" }
        );
        let err = "2n4l4c4t".parse::<Topology>().unwrap_err();
        assert_eq!(err, TopologyError::TooManyCpus { spec: "2n4l4c4t".into(), cpus: 128 });
        assert!(err.to_string().contains("NR_CPUS=64"), "{err}");
        // Counts that overflow u32 products are still rejected, not wrapped.
        assert!(matches!(
            "65536n65536l1c1t".parse::<Topology>(),
            Err(TopologyError::TooManyCpus { .. })
        ));
        assert!(matches!("99999999999n1l1c1t".parse::<Topology>(), Err(TopologyError::Syntax(_))));
    }

    #[test]
    fn single_cpu() {
        let topo = t("1n1l1c1t");
        assert_eq!(topo.expected_llc_cpulists(), ["0"]);
        assert_eq!(topo.expected_node_cpulists(), ["0"]);
        assert_eq!(topo.expected_thread_siblings_lists(), ["0"]);
        assert_eq!(topo.llc_of(0), 0);
        assert_eq!(topo.node_of(0), 0);
    }

    #[test]
    fn two_llcs() {
        let topo = t("1n2l2c1t");
        assert_eq!(topo.expected_llc_cpulists(), ["0-1", "2-3"]);
        assert_eq!(topo.expected_node_cpulists(), ["0-3"]);
        assert_eq!(topo.expected_thread_siblings_lists(), ["0", "1", "2", "3"]);
        assert_eq!(topo.llc_siblings(3), [2, 3]);
        assert_eq!(topo.core_siblings(1), [0, 1]);
        assert_eq!(topo.thread_siblings(2), [2]);
    }

    #[test]
    fn smt() {
        let topo = t("1n2l4c2t");
        assert_eq!(topo.expected_llc_cpulists(), ["0-7", "8-15"]);
        assert_eq!(
            topo.expected_thread_siblings_lists(),
            ["0-1", "2-3", "4-5", "6-7", "8-9", "10-11", "12-13", "14-15"]
        );
        assert_eq!(topo.thread_siblings(9), [8, 9]);
        assert_eq!(topo.llc_of(9), 1);
        assert_eq!(topo.core_of(9), 4);
    }

    #[test]
    fn numa() {
        let topo = t("2n4l2c1t");
        assert_eq!(topo.expected_node_cpulists(), ["0-7", "8-15"]);
        assert_eq!(
            topo.expected_llc_cpulists(),
            ["0-1", "2-3", "4-5", "6-7", "8-9", "10-11", "12-13", "14-15"]
        );
        assert_eq!(topo.node_of(7), 0);
        assert_eq!(topo.node_of(8), 1);
        assert_eq!(topo.llc_of(8), 4);
        let topo = t("2n1l2c2t");
        assert_eq!(topo.expected_node_cpulists(), ["0-3", "4-7"]);
        assert_eq!(topo.expected_llc_cpulists(), ["0-3", "4-7"]);
        assert_eq!(topo.expected_thread_siblings_lists(), ["0-1", "2-3", "4-5", "6-7"]);
    }

    #[test]
    fn cpulists() {
        assert_eq!(format_cpulist(&[]), "");
        assert_eq!(format_cpulist(&[0]), "0");
        assert_eq!(format_cpulist(&[3, 1, 2, 0, 8, 10, 11, 11]), "0-3,8,10-11");
        assert_eq!(format_cpulist(&[0, 2]), "0,2");
        assert_eq!(parse_cpulist("0-3,8,10-11\n").unwrap(), [0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpulist("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpulist("\n").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpulist("5,1").unwrap(), [1, 5]);
        for bad in ["a", "3-1", "1-", "-1", "1,,x", "0-3:2/4"] {
            assert!(parse_cpulist(bad).is_err(), "{bad:?}");
        }
        for list in ["0", "0-1", "0,2", "0-3,8,10-11", "1-63"] {
            assert_eq!(format_cpulist(&parse_cpulist(list).unwrap()), list);
        }
    }

    /// Writes the sysfs files a guest with `topo` would have.
    fn fake_sysfs(root: &Path, topo: &Topology) {
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
            w(
                format!("{base}/cache/index3/shared_cpu_list"),
                format_cpulist(&topo.llc_siblings(cpu)),
            );
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

    #[test]
    fn reads_and_matches_every_shape() {
        for s in ["1n1l1c1t", "1n2l2c1t", "1n2l4c2t", "2n4l2c1t", "2n1l2c2t"] {
            let topo = t(s);
            let dir = tempfile::tempdir().unwrap();
            fake_sysfs(dir.path(), &topo);
            let seen = GuestTopology::read_from_sysfs(dir.path()).unwrap();
            assert_eq!(seen.cpus.len() as u32, topo.cpus());
            assert_eq!(seen.nodes.len() as u32, topo.nodes);
            assert_eq!(seen.nodes[0].mem_total_kib, Some(242380));
            assert_eq!(seen.cpus[0].llc_level, Some(3));
            assert_eq!(compare(&topo, &seen), Vec::<String>::new(), "{s}");
            // The view survives the JSON trip the guest sends it on.
            let json = serde_json::to_string(&seen).unwrap();
            assert_eq!(serde_json::from_str::<GuestTopology>(&json).unwrap(), seen);
        }
    }

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

    #[test]
    fn falls_back_to_the_highest_cache_and_tolerates_missing_numa() {
        let dir = tempfile::tempdir().unwrap();
        let topo = t("1n1l2c1t");
        fake_sysfs(dir.path(), &topo);
        let sys = dir.path().join("sys/devices/system");
        std::fs::remove_dir_all(sys.join("node")).unwrap();
        for cpu in 0..2 {
            std::fs::remove_dir_all(sys.join(format!("cpu/cpu{cpu}/cache/index3"))).unwrap();
            std::fs::write(sys.join(format!("cpu/cpu{cpu}/cache/index2/shared_cpu_list")), "0-1\n")
                .unwrap();
        }
        let seen = GuestTopology::read_from_sysfs(dir.path()).unwrap();
        assert_eq!(seen.cpus[1].llc_level, Some(2));
        assert!(seen.nodes.is_empty());
        assert_eq!(compare(&topo, &seen), Vec::<String>::new());
        let diffs = compare(&t("2n1l1c1t"), &seen);
        assert!(
            diffs.contains(&"the guest has no NUMA nodes in sysfs, expected 2".to_string()),
            "{diffs:?}"
        );
    }
}
