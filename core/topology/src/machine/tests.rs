use super::*;
use crate::test_util::{fake_sysfs, t};

fn fixture(name: &str) -> String {
    let path = format!("{}/../../tests/fixtures/machines/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn approx(name: &str) -> Approximation {
    Machine::from_lscpu(&fixture(name)).unwrap().approximate().unwrap()
}

#[test]
fn a_two_socket_smt_xeon_is_two_nodes_of_twelve_smt_cores() {
    let a = approx("xeon-e5-2687w-v4-2s-smt.lscpu");
    assert_eq!(a.topology, t("2n1l12c2t"));
    // Exact but for the numbering: its SMT siblings are 24 apart.
    assert_eq!(a.notes.len(), 1, "{:?}", a.notes);
    assert!(a.notes[0].starts_with("CPU numbers differ"), "{:?}", a.notes);
}

#[test]
fn alternating_sockets_and_this_build_machine() {
    let a = approx("xeon-x5650-2s.lscpu");
    assert_eq!(a.topology, t("2n1l6c1t"));
    let a = approx("amd-epyc-vm-2.lscpu");
    assert_eq!((a.topology, a.notes), (t("1n1l2c1t"), vec![]));
}

#[test]
fn a_hybrid_machine_is_approximated_and_says_how() {
    let a = approx("intel-hybrid-12.lscpu");
    // 4 P-cores with two threads and 4 E-cores with one: 8 cores, SMT-2 kept.
    assert_eq!(a.topology, t("1n1l8c2t"));
    assert!(
        a.notes.iter().any(|n| n.starts_with("uneven threads per core (4×1, 4×2)")),
        "{:?}",
        a.notes
    );
    assert!(a.notes.iter().any(|n| n == "12 CPUs become 16 in 1n1l8c2t"), "{:?}", a.notes);
}

#[test]
fn lscpu_with_a_cache_column_and_without_nodes_or_caches() {
    let text = "# CPU,Core,Socket,Node,L1d:L1i:L2:L3\n0,0,0,,0:0:0:0\n1,0,0,,0:0:0:0\n";
    // `-p=CPU,CORE,SOCKET,NODE,CACHE` on an older lscpu: one colon-joined column.
    let m = Machine::from_lscpu(text).unwrap();
    assert_eq!(m.approximate().unwrap().topology, t("1n1l1c2t"));
    let m = Machine::from_lscpu("# CPU,Core,Socket\n0,0,0\n1,1,0\n").unwrap();
    let a = m.approximate().unwrap();
    assert_eq!(a.topology, t("1n1l2c1t"));
    assert!(a.notes[0].contains("no caches"), "{:?}", a.notes);
}

#[test]
fn bad_lscpu_input_says_what_it_expected() {
    assert!(Machine::from_lscpu("hello")
        .unwrap_err()
        .contains("lscpu -p=CPU,CORE,SOCKET,NODE,CACHE"));
    assert!(Machine::from_lscpu("# CPU,Socket\n0,0\n").unwrap_err().contains("no Core column"));
    assert!(Machine::from_lscpu("# CPU,Core\n0,x\n").unwrap_err().contains("line 2: `x`"));
    assert!(Machine::from_lscpu("# CPU,Core\n").unwrap_err().contains("no CPU"));
    let big: String = (0..300).map(|c| format!("{c},{c},0,0,,0,0,0,0\n")).collect();
    let err = Machine::from_lscpu(&format!("# CPU,Core,Socket,Node,,L1d,L1i,L2,L3\n{big}"))
        .unwrap()
        .approximate();
    assert!(err.unwrap_err().contains("needs APIC id 299"));
}

#[test]
fn a_sysfs_tree_gives_back_the_topology_it_was_made_from() {
    for s in ["1n1l2c1t", "1n2l4c2t", "2n2l2c2t", "2n1l1c1t"] {
        let dir = tempfile::tempdir().unwrap();
        fake_sysfs(dir.path(), &t(s));
        let seen = GuestTopology::read_from_sysfs(dir.path()).unwrap();
        let a = Machine::from_sysfs(&seen).unwrap().approximate().unwrap();
        assert_eq!((a.topology, a.notes), (t(s), vec![]), "{s}");
    }
}
