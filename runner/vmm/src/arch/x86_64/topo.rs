//! How a `Topology` maps onto x86 APIC ids.
//!
//! Each LLC is presented as a package (as the QEMU engine does), so Linux's
//! package, die and LLC all coincide. APIC ids carry shifted fields:
//! `apic = (llc << (core_bits + thread_bits)) | (core << thread_bits) | thread`
//! with `core_bits = ceil(log2(cores_per_llc))`, `thread_bits =
//! ceil(log2(threads_per_core))`. With power-of-two counts this is the CPU
//! index itself; otherwise ids have holes, and the MADT (listed in CPU order)
//! still gives Linux the CPU numbering `cpu = ((node*L+llc)*C+core)*T+thread`.

use ktstr_topology::Topology;

/// Bits needed to count `n` things (0 for 1).
pub fn order(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuTopo {
    pub topo: Topology,
    pub thread_bits: u32,
    pub core_bits: u32,
}

/// Where one vCPU sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuPlace {
    pub cpu: u32,
    pub node: u32,
    /// Global LLC (= package) index.
    pub llc: u32,
    /// Core index within its LLC.
    pub core: u32,
    pub thread: u32,
    pub apic_id: u32,
}

impl CpuTopo {
    pub fn new(topo: &Topology) -> anyhow::Result<CpuTopo> {
        let t = CpuTopo {
            topo: topo.clone(),
            thread_bits: order(topo.threads_per_core),
            core_bits: order(topo.cores_per_llc),
        };
        if topo.cpus() == 0 {
            anyhow::bail!("topology {topo} has no CPUs");
        }
        // xAPIC ids are 8 bits and 0xff is the broadcast id.
        let max = t.place(topo.cpus() - 1).apic_id;
        if max >= 0xff {
            anyhow::bail!("topology {topo} needs APIC id {max}; at most 254 without x2APIC");
        }
        Ok(t)
    }

    pub fn cpus(&self) -> u32 {
        self.topo.cpus()
    }

    /// Bits of the APIC id below the package (LLC) field.
    pub fn pkg_shift(&self) -> u32 {
        self.thread_bits + self.core_bits
    }

    pub fn place(&self, cpu: u32) -> CpuPlace {
        let t = &self.topo;
        let thread = cpu % t.threads_per_core;
        let core = (cpu / t.threads_per_core) % t.cores_per_llc;
        let llc = cpu / (t.threads_per_core * t.cores_per_llc);
        let node = llc / t.llcs_per_node;
        let apic_id = (llc << self.pkg_shift()) | (core << self.thread_bits) | thread;
        CpuPlace { cpu, node, llc, core, thread, apic_id }
    }

    pub fn places(&self) -> Vec<CpuPlace> {
        (0..self.cpus()).map(|c| self.place(c)).collect()
    }
}

/// Smallest RAM per NUMA node worth booting (as the QEMU engine).
pub const MIN_NODE_MIB: u64 = 64;

/// RAM per node in MiB: an even split, the remainder on node 0.
pub fn node_memory_mib(total_mib: u64, nodes: u32) -> anyhow::Result<Vec<u64>> {
    let nodes = u64::from(nodes.max(1));
    if total_mib < nodes * MIN_NODE_MIB {
        anyhow::bail!(
            "{total_mib} MiB of memory is too little for {nodes} NUMA node(s): give at \
            least {MIN_NODE_MIB} MiB per node"
        );
    }
    let each = total_mib / nodes;
    let mut split = vec![each; nodes as usize];
    split[0] += total_mib - each * nodes;
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(s: &str) -> CpuTopo {
        CpuTopo::new(&s.parse().unwrap()).unwrap()
    }

    #[test]
    fn powers_of_two_give_apic_id_equal_cpu() {
        for s in ["1n1l1c1t", "1n2l4c2t", "2n4l2c1t", "2n2l2c2t"] {
            let t = topo(s);
            for p in t.places() {
                assert_eq!(p.apic_id, p.cpu, "{s}");
            }
        }
    }

    #[test]
    fn places_follow_the_numbering() {
        let t = topo("2n4l2c1t");
        let p = t.place(11);
        assert_eq!((p.node, p.llc, p.core, p.thread), (1, 5, 1, 0));
        let t = topo("1n2l4c2t");
        let p = t.place(13);
        assert_eq!((p.node, p.llc, p.core, p.thread), (0, 1, 2, 1));
    }

    #[test]
    fn odd_counts_use_shifted_fields() {
        let t = topo("1n2l3c1t");
        assert_eq!((t.core_bits, t.thread_bits), (2, 0));
        let ids: Vec<u32> = t.places().iter().map(|p| p.apic_id).collect();
        assert_eq!(ids, [0, 1, 2, 4, 5, 6]);
    }

    #[test]
    fn order_is_ceil_log2() {
        assert_eq!([1, 2, 3, 4, 5, 8, 9].map(order), [0, 1, 2, 2, 3, 3, 4]);
    }

    #[test]
    fn memory_split() {
        assert_eq!(node_memory_mib(1000, 3).unwrap(), [334, 333, 333]);
        assert!(node_memory_mib(127, 2).is_err());
    }
}
