//! Named topologies and named sets of them: the shapes where schedulers
//! break (one LLC, several, SMT, NUMA), from 2 up to 252 CPUs.

use ktstr_core::topology::Topology;

pub struct Preset {
    pub name: &'static str,
    pub topology: &'static str,
    pub what: &'static str,
}

pub const PRESETS: &[Preset] = &[
    Preset { name: "tiny", topology: "1n1l2c1t", what: "two cores sharing one LLC" },
    Preset { name: "llc1-4", topology: "1n1l4c1t", what: "four cores, one LLC" },
    Preset { name: "llc1-8", topology: "1n1l8c1t", what: "eight cores, one LLC" },
    Preset { name: "llc2-4", topology: "1n2l2c1t", what: "two LLCs of two cores" },
    Preset { name: "llc4-8", topology: "1n4l2c1t", what: "four LLCs of two cores" },
    Preset { name: "llc4-16", topology: "1n4l4c1t", what: "four LLCs of four cores" },
    Preset { name: "smt-4", topology: "1n1l2c2t", what: "two SMT-2 cores, one LLC" },
    Preset { name: "smt-8", topology: "1n2l2c2t", what: "two LLCs of two SMT-2 cores" },
    Preset { name: "smt-16", topology: "1n2l4c2t", what: "two LLCs of four SMT-2 cores" },
    Preset { name: "numa-2", topology: "2n1l1c1t", what: "two nodes of one core" },
    Preset { name: "numa-4", topology: "2n1l1c2t", what: "two nodes of one SMT-2 core" },
    Preset { name: "numa-8", topology: "2n2l2c1t", what: "two nodes of two LLCs" },
    Preset { name: "numa-smt-16", topology: "2n2l2c2t", what: "two nodes, two LLCs each, SMT-2" },
    Preset { name: "numa4-32", topology: "4n2l2c2t", what: "four nodes, two LLCs each, SMT-2" },
    Preset { name: "big-64", topology: "2n4l4c2t", what: "two sockets of 32 CPUs" },
    Preset { name: "big-128", topology: "2n4l8c2t", what: "two sockets of 64 CPUs" },
    Preset { name: "big-240", topology: "3n5l8c2t", what: "three nodes of 80 CPUs (5 LLCs)" },
    Preset { name: "big-252", topology: "2n7l9c2t", what: "two sockets of 126 CPUs (7 LLCs)" },
];

pub struct PresetSet {
    pub name: &'static str,
    pub what: &'static str,
    pub members: &'static [&'static str],
}

pub const SETS: &[PresetSet] = &[
    PresetSet {
        name: "default",
        what: "one of each shape, 2 to 252 CPUs",
        members: &[
            "tiny",
            "llc1-8",
            "llc2-4",
            "llc4-16",
            "smt-4",
            "smt-16",
            "numa-2",
            "numa-8",
            "numa-smt-16",
            "numa4-32",
            "big-64",
            "big-128",
            "big-240",
            "big-252",
        ],
    },
    PresetSet {
        name: "small",
        what: "one of each shape, at most 4 CPUs (quick, even under emulation)",
        members: &["tiny", "llc1-4", "llc2-4", "smt-4", "numa-2", "numa-4"],
    },
    PresetSet {
        name: "llc",
        what: "one LLC and several",
        members: &["tiny", "llc1-4", "llc1-8", "llc2-4", "llc4-8", "llc4-16"],
    },
    PresetSet { name: "smt", what: "SMT-2 cores", members: &["smt-4", "smt-8", "smt-16"] },
    PresetSet {
        name: "numa",
        what: "several NUMA nodes",
        members: &["numa-2", "numa-4", "numa-8", "numa-smt-16", "numa4-32"],
    },
];

/// The CPU count of an `NnNlNcNt` preset (they are all well-formed).
pub fn cpus_of(topology: &str) -> u32 {
    topology
        .split(['n', 'l', 'c', 't'])
        .filter(|s| !s.is_empty())
        .map(|n| n.parse::<u32>().expect("presets are well-formed"))
        .product()
}

pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// A preset's or a set's topologies, and apart the names of those left out:
/// over `max_cpus`, or not a shape our engines can give a guest; `None`
/// when `name` names neither.
pub fn expand(name: &str, max_cpus: u32) -> Option<(Vec<&'static str>, Vec<&'static str>)> {
    let members: Vec<&Preset> = match (preset(name), SETS.iter().find(|s| s.name == name)) {
        (Some(p), _) => vec![p],
        (None, Some(set)) => {
            set.members.iter().map(|m| preset(m).expect("set members exist")).collect()
        }
        (None, None) => return None,
    };
    let (fit, over): (Vec<&Preset>, Vec<&Preset>) =
        members.into_iter().partition(|p| cpus_of(p.topology) <= max_cpus && unusable(p).is_none());
    Some((fit.iter().map(|p| p.topology).collect(), over.iter().map(|p| p.name).collect()))
}

/// Why no guest can have this preset's shape, if none can.
fn unusable(p: &Preset) -> Option<String> {
    p.topology.parse::<Topology>().err().map(|e| e.to_string())
}

/// `--list-presets`: every preset and set, with what this host and kernel can run.
pub fn listing(max_cpus: u32) -> String {
    let mut out = String::from("PRESETS\n");
    for p in PRESETS {
        let cpus = cpus_of(p.topology);
        let note = match unusable(p) {
            Some(why) => format!("\n               (cannot run: {why})"),
            None if cpus > max_cpus => format!("  (over --max-cpus {max_cpus})"),
            None => String::new(),
        };
        out.push_str(&format!(
            "  {:<12} {:<9} {:>3} CPUs  {}{note}\n",
            p.name, p.topology, cpus, p.what
        ));
    }
    out.push_str("\nSETS\n");
    for s in SETS {
        let (fit, over) = expand(s.name, max_cpus).expect("sets expand");
        out.push_str(&format!("  {:<12} {} ({} runnable", s.name, s.what, fit.len()));
        if !over.is_empty() {
            out.push_str(&format!(", {} left out", over.len()));
        }
        out.push_str(&format!("): {}\n", s.members.join(" ")));
    }
    out.push_str("\n`host` is this machine's topology; --topology-from FILE another's.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_well_formed_and_span_2_to_252_cpus() {
        for p in PRESETS {
            let cpus = cpus_of(p.topology);
            if let Ok(t) = p.topology.parse::<Topology>() {
                assert_eq!(t.cpus(), cpus, "{}", p.name);
            }
            assert_ne!(p.name, "host");
        }
        let all: Vec<u32> = PRESETS.iter().map(|p| cpus_of(p.topology)).collect();
        assert_eq!((all.iter().min(), all.iter().max()), (Some(&2), Some(&252)));
        for s in SETS {
            assert!(preset(s.name).is_none(), "set {} shadows a preset", s.name);
            assert!(s.members.iter().all(|m| preset(m).is_some()), "{}", s.name);
        }
    }

    #[test]
    fn sets_expand_and_leave_out_what_is_too_big_or_cannot_run() {
        let (fit, over) = expand("default", 64).unwrap();
        assert!(fit.contains(&"2n4l4c2t") && !fit.contains(&"2n4l8c2t"));
        assert_eq!(over, ["big-128", "big-240", "big-252"]);
        let (fit, over) = expand("default", 512).unwrap();
        assert!(fit.contains(&"3n5l8c2t"));
        assert_eq!(over, ["big-252"], "its APIC ids do not fit in 8 bits");
        assert_eq!(expand("smt-4", 64).unwrap(), (vec!["1n1l2c2t"], vec![]));
        assert_eq!(expand("small", 2).unwrap().0, ["1n1l2c1t", "2n1l1c1t"]);
        assert!(expand("nope", 64).is_none());
        let listing = listing(8);
        assert!(listing.contains("over --max-cpus 8"));
        assert!(
            listing.contains("(cannot run: topology \"2n7l9c2t\" needs APIC id 433"),
            "{listing}"
        );
    }
}
