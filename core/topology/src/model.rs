//! The requested topology: parsing and printing `NnNlNcNt`, and where each
//! CPU sits in it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cpulist::format_cpulist;

/// The test kernel is built with `NR_CPUS=512`.
pub const MAX_CPUS: u32 = 512;

/// The largest xAPIC id (0xff is the broadcast id): our VM engines give
/// guests no interrupt remapping, without which Linux uses no x2APIC ids.
pub const MAX_APIC_ID: u32 = 254;

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
    #[error(
        "topology \"{spec}\" has {cpus} CPUs; at most {MAX_CPUS} are supported (the test \
        kernel is built with NR_CPUS={MAX_CPUS})"
    )]
    TooManyCpus { spec: String, cpus: u64 },
    #[error(
        "topology \"{spec}\" needs APIC id {apic_id}; guests get 8-bit xAPIC ids (at most \
        {MAX_APIC_ID}), since our VM engines set up no interrupt remapping for x2APIC: use \
        powers of two for cores and threads, or fewer LLCs"
    )]
    ApicIds { spec: String, apic_id: u32 },
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
        let t = Topology { nodes, llcs_per_node, cores_per_llc, threads_per_core };
        match t.max_apic_id() {
            id if id > MAX_APIC_ID => {
                Err(TopologyError::ApicIds { spec: s.to_string(), apic_id: id })
            }
            _ => Ok(t),
        }
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

    /// The last CPU's APIC id as both engines number them: each LLC a
    /// package, `(llc << (core_bits + thread_bits)) | (core << thread_bits) | thread`.
    pub fn max_apic_id(&self) -> u32 {
        let bits = |n: u32| if n <= 1 { 0 } else { 32 - (n - 1).leading_zeros() };
        let (core_bits, thread_bits) = (bits(self.cores_per_llc), bits(self.threads_per_core));
        ((self.llcs() - 1) << (core_bits + thread_bits))
            | ((self.cores_per_llc - 1) << thread_bits)
            | (self.threads_per_core - 1)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::t;

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
        assert_eq!(
            err,
            "bad topology \"1n2x\": expected NnNlNcNt, e.g. 1n2l2c1t (nodes, LLCs \
            per node, cores per LLC, threads per core)"
        );
        assert_eq!(
            "1n0l2c1t".parse::<Topology>().unwrap_err(),
            TopologyError::Zero { spec: "1n0l2c1t".into(), level: "LLC" }
        );
        let err = "4n16l4c4t".parse::<Topology>().unwrap_err();
        assert_eq!(err, TopologyError::TooManyCpus { spec: "4n16l4c4t".into(), cpus: 1024 });
        assert!(err.to_string().contains("NR_CPUS=512"), "{err}");
        // 252 CPUs in 14 LLCs of 9 cores: ids with holes past the xAPIC range.
        let err = "2n7l9c2t".parse::<Topology>().unwrap_err();
        assert_eq!(err, TopologyError::ApicIds { spec: "2n7l9c2t".into(), apic_id: 433 });
        assert!(err.to_string().contains("at most 254"), "{err}");
        assert_eq!(t("2n4l8c2t").max_apic_id(), 127);
        assert_eq!(t("3n5l8c2t").max_apic_id(), 239);
        assert_eq!(t("1n2l3c1t").max_apic_id(), 6, "three cores take two bits");
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
}
