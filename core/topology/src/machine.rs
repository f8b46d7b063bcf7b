//! A real machine's CPU shape (from `lscpu -p` or its sysfs), and the
//! `NnNlNcNt` topology nearest to it, with what could not be expressed.
//!
//! Our VM engines build uniform topologies: every node has as many LLCs,
//! every LLC as many cores, every core as many threads. A machine that is
//! not uniform (hybrid P/E cores, an odd LLC out) is approximated by the
//! most common count at each level, and each approximation is said.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Topology, MAX_APIC_ID, MAX_CPUS};
use crate::sysfs::GuestTopology;

/// One online CPU: the ids of the core, node and LLC it belongs to (ids are
/// only compared, never interpreted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineCpu {
    pub cpu: u32,
    pub core: (u32, u32),
    pub node: u32,
    pub llc: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    pub cpus: Vec<MachineCpu>,
}

/// The topology nearest to a machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approximation {
    pub topology: Topology,
    /// Empty when the topology is the machine's shape exactly (up to CPU numbering).
    pub notes: Vec<String>,
}

impl Machine {
    /// `lscpu -p` or `lscpu -p=CPU,CORE,SOCKET,NODE,CACHE` output: columns are
    /// found by the header's names; the last cache column is the LLC.
    pub fn from_lscpu(text: &str) -> Result<Machine, String> {
        let header = text
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .map(str::trim)
            .find(|l| l.to_ascii_lowercase().starts_with("cpu,"))
            .ok_or(
                "no `# CPU,Core,…` header: expected `lscpu -p=CPU,CORE,SOCKET,NODE,CACHE` output",
            )?;
        let names: Vec<String> = header.split(',').map(|n| n.trim().to_ascii_lowercase()).collect();
        let col = |name: &str| names.iter().position(|n| n == name);
        let (cpu_col, core_col) = (col("cpu").expect("the header starts with it"), col("core"));
        let core_col = core_col.ok_or("the lscpu output has no Core column; add CORE to -p=")?;
        let (socket_col, node_col) = (col("socket"), col("node"));
        let llc_col = names
            .iter()
            .rposition(|n| n.starts_with('l') && n[1..].starts_with(|c: char| c.is_ascii_digit()));
        let mut cpus = Vec::new();
        for (n, line) in
            text.lines().enumerate().filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            // A colon-joined cache column (`L1d:L1i:L2:L3`) ends with the LLC.
            let num = |c: Option<usize>| -> Result<Option<u32>, String> {
                let field =
                    c.and_then(|c| fields.get(c)).map(|f| f.rsplit(':').next().unwrap_or(f));
                match field.filter(|f| !f.is_empty() && *f != "-") {
                    None => Ok(None),
                    Some(f) => f
                        .parse()
                        .map(Some)
                        .map_err(|_| format!("line {}: `{f}` is not a number", n + 1)),
                }
            };
            let cpu = num(Some(cpu_col))?.ok_or(format!("line {}: no CPU number", n + 1))?;
            let socket = num(socket_col)?.unwrap_or(0);
            let core = num(Some(core_col))?.ok_or(format!("line {}: no core id", n + 1))?;
            cpus.push(MachineCpu {
                cpu,
                core: (socket, core),
                node: num(node_col)?.unwrap_or(0),
                llc: num(llc_col)?,
            });
        }
        if cpus.is_empty() {
            return Err("the lscpu output lists no CPU".into());
        }
        Ok(Machine { cpus })
    }

    /// A sysfs view (this host's, or one unpacked from a tarball): cores are
    /// the thread-sibling groups, LLCs the last-level cache's sharing lists.
    pub fn from_sysfs(seen: &GuestTopology) -> Result<Machine, String> {
        let node_of =
            |cpu: u32| seen.nodes.iter().find(|n| n.cpus.contains(&cpu)).map_or(0, |n| n.node);
        let cpus: Vec<MachineCpu> = seen
            .cpus
            .iter()
            .filter(|c| seen.online.contains(&c.cpu))
            .map(|c| MachineCpu {
                cpu: c.cpu,
                core: (
                    0,
                    c.thread_siblings
                        .as_ref()
                        .and_then(|s| s.iter().min().copied())
                        .unwrap_or(c.cpu),
                ),
                node: node_of(c.cpu),
                llc: c.llc.as_ref().and_then(|l| l.iter().min().copied()),
            })
            .collect();
        if cpus.is_empty() {
            return Err("the sysfs tree lists no online CPU (no cpuN directories?)".into());
        }
        Ok(Machine { cpus })
    }

    pub fn approximate(&self) -> Result<Approximation, String> {
        let mut notes = Vec::new();
        let llc_of = |c: &MachineCpu| c.llc.map(|l| (c.node, l)).unwrap_or((c.node, u32::MAX));
        if self.cpus.iter().all(|c| c.llc.is_none()) {
            notes.push("the source names no caches: one LLC per node assumed".to_string());
        }
        let mut llcs_per_node: BTreeMap<u32, BTreeSet<(u32, u32)>> = BTreeMap::new();
        let mut cores_per_llc: BTreeMap<(u32, u32), BTreeSet<(u32, u32)>> = BTreeMap::new();
        let mut threads_per_core: BTreeMap<(u32, u32), u32> = BTreeMap::new();
        for c in &self.cpus {
            llcs_per_node.entry(c.node).or_default().insert(llc_of(c));
            cores_per_llc.entry(llc_of(c)).or_default().insert(c.core);
            *threads_per_core.entry(c.core).or_default() += 1;
        }
        let spans = self
            .cpus
            .iter()
            .filter(|c| c.llc.is_some())
            .map(|c| (c.llc, c.node))
            .collect::<BTreeSet<_>>();
        let llc_ids = spans.iter().map(|(l, _)| l).collect::<BTreeSet<_>>();
        if spans.len() > llc_ids.len() {
            notes.push("an LLC spans NUMA nodes: it is split at the node boundary".to_string());
        }
        let nodes = llcs_per_node.len() as u32;
        let l = most_common(
            "LLCs per node",
            llcs_per_node.values().map(|s| s.len() as u32),
            &mut notes,
        );
        let c = most_common(
            "cores per LLC",
            cores_per_llc.values().map(|s| s.len() as u32),
            &mut notes,
        );
        let t = most_common("threads per core", threads_per_core.values().copied(), &mut notes);
        let topology = Topology { nodes, llcs_per_node: l, cores_per_llc: c, threads_per_core: t };
        if topology.cpus() as usize != self.cpus.len() {
            notes.push(format!(
                "{} CPUs become {} in {topology}",
                self.cpus.len(),
                topology.cpus()
            ));
        }
        // Whatever the guest cannot have (too many CPUs, APIC ids) is refused as for --topology.
        if topology.cpus() > MAX_CPUS || topology.max_apic_id() > MAX_APIC_ID {
            let err = topology.to_string().parse::<Topology>().expect_err("out of range");
            return Err(format!("the machine's shape is {topology}: {err}"));
        }
        if !self.numbered_like_ktstr() {
            notes.push(
                "CPU numbers differ: the guest numbers CPUs node by node, LLC by LLC, core by core \
                 (SMT siblings adjacent); the shape is the same"
                    .to_string(),
            );
        }
        Ok(Approximation { topology, notes })
    }

    /// Whether the machine's CPUs are numbered node → LLC → core → thread, as
    /// the guest's are.
    fn numbered_like_ktstr(&self) -> bool {
        let mut sorted = self.cpus.clone();
        sorted.sort_by_key(|c| c.cpu);
        let key = |c: &MachineCpu| (c.node, c.llc, c.core);
        let mut seen: Vec<(u32, Option<u32>, (u32, u32))> = Vec::new();
        for c in &sorted {
            if seen.last() != Some(&key(c)) {
                if seen.contains(&key(c)) {
                    return false;
                }
                seen.push(key(c));
            }
        }
        true
    }
}

/// The most common of `counts`; when they differ, a note says so.
fn most_common(level: &str, counts: impl Iterator<Item = u32>, notes: &mut Vec<String>) -> u32 {
    let mut tally: BTreeMap<u32, usize> = BTreeMap::new();
    for n in counts {
        *tally.entry(n).or_default() += 1;
    }
    let (&best, _) = tally.iter().max_by_key(|(n, k)| (**k, **n)).expect("a machine has CPUs");
    if tally.len() > 1 {
        let seen: Vec<String> = tally.iter().map(|(n, k)| format!("{k}×{n}")).collect();
        notes.push(format!(
            "uneven {level} ({}): the guest has {best} everywhere (our engines build uniform \
                topologies)",
            seen.join(", ")
        ));
    }
    best
}

#[cfg(test)]
mod tests;
