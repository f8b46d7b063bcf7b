//! What the guest kernel reports about its topology, read from sysfs.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::cpulist::parse_cpulist;

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
        // A tarball of sysfs pads files with NULs (sysfs says they are 4096 bytes).
        Ok(s) => Ok(Some(s.trim_end_matches('\0').to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// "Node 0 MemTotal:  499628 kB" → 499628.
fn mem_total_kib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.contains("MemTotal:"))?;
    line.split_whitespace().rev().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare;
    use crate::test_util::{fake_sysfs, t};

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
