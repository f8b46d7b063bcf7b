//! CPUID for one vCPU: KVM_GET_SUPPORTED_CPUID patched with the topology.
//!
//! Linux reads the topology from leaf 0xB (or 0x1F) on both vendors (AMD with
//! TOPOEXT), the LLC from leaf 4 (Intel) or 0x8000001D (AMD, family >= 0x17)
//! or 0x8000001E's node id (AMD, older families). All of them are generated
//! here from the same `CpuTopo` so they agree whatever the host CPU is.

use kvm_bindings::kvm_cpuid_entry2;

use super::topo::CpuTopo;

const FLAG_INDEXED: u32 = kvm_bindings::KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

/// Leaf 0x80000001 ECX bit 2, SVM (leaf 1 ECX bit 5 is VMX). A test guest is
/// not a hypervisor: hidden, the test kernel's built-in KVM (there so it can
/// be a nested host) does not enable virtualisation on every CPU at boot, a
/// step that under nested virtualisation sometimes triple-faulted the guest.
const NO_SVM: u32 = 1 << 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    Intel,
    Amd,
    Other,
}

pub fn vendor(entries: &[kvm_cpuid_entry2]) -> Vendor {
    let Some(e) = entries.iter().find(|e| e.function == 0) else { return Vendor::Other };
    let mut v = Vec::with_capacity(12);
    for r in [e.ebx, e.edx, e.ecx] {
        v.extend_from_slice(&r.to_le_bytes());
    }
    match &v[..] {
        b"GenuineIntel" => Vendor::Intel,
        b"AuthenticAMD" => Vendor::Amd,
        _ => Vendor::Other,
    }
}

/// (type, level, size in bytes, ways); 64-byte lines. Type 1 data, 2 code, 3 unified.
const CACHES: [(u32, u32, u32, u32); 4] =
    [(1, 1, 32 << 10, 8), (2, 1, 32 << 10, 8), (3, 2, 512 << 10, 8), (3, 3, 16 << 20, 16)];
const LINE: u32 = 64;

/// Cache descriptors in leaf 4 / 0x8000001D format (identical layout bar
/// EAX[31:26], Intel's cores-per-package field), ending with a null entry.
fn cache_leaves(function: u32, t: &CpuTopo, intel: bool) -> Vec<kvm_cpuid_entry2> {
    let mut out = Vec::new();
    for (index, &(ty, level, size, ways)) in CACHES.iter().enumerate() {
        // L1 and L2 are per core, the L3 per LLC; counted in APIC-id space.
        let sharing = if level == 3 { 1 << t.pkg_shift() } else { 1 << t.thread_bits };
        let mut eax = ty | (level << 5) | (1 << 8) | ((sharing - 1) << 14);
        if intel {
            eax |= ((1 << t.core_bits) - 1) << 26;
        }
        let ebx = (LINE - 1) | ((ways - 1) << 22);
        let ecx = size / (ways * LINE) - 1;
        out.push(entry(function, index as u32, eax, ebx, ecx, 0));
    }
    out.push(entry(function, CACHES.len() as u32, 0, 0, 0, 0));
    out
}

fn entry(function: u32, index: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function,
        index,
        flags: FLAG_INDEXED,
        eax,
        ebx,
        ecx,
        edx,
        ..Default::default()
    }
}

/// Leaf 0xB / 0x1F: SMT level, core level, then the terminating invalid level.
fn ext_topology(function: u32, t: &CpuTopo, apic: u32) -> Vec<kvm_cpuid_entry2> {
    let tp = &t.topo;
    vec![
        entry(function, 0, t.thread_bits, tp.threads_per_core, 1 << 8, apic),
        entry(
            function,
            1,
            t.pkg_shift(),
            tp.threads_per_core * tp.cores_per_llc,
            (2 << 8) | 1,
            apic,
        ),
        entry(function, 2, 0, 0, 2, apic),
    ]
}

/// Leaf 1 ECX bit 24. KVM_GET_SUPPORTED_CPUID never reports it (KVM's API
/// docs: use KVM_CAP_TSC_DEADLINE_TIMER), so the VMM must set it, as QEMU and
/// Firecracker do. Without it the guest calibrates its LAPIC timer against
/// the PIT, which on a loaded or nested host measures nonsense.
pub const TSC_DEADLINE: u32 = 1 << 24;

/// What the host's KVM offers beyond KVM_GET_SUPPORTED_CPUID.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvmExtras {
    pub tsc_deadline: bool,
}

/// The CPUID entries for `cpu`.
pub fn for_vcpu(
    supported: &[kvm_cpuid_entry2],
    extras: KvmExtras,
    t: &CpuTopo,
    cpu: u32,
) -> Vec<kvm_cpuid_entry2> {
    let place = t.place(cpu);
    let apic = place.apic_id;
    let v = vendor(supported);
    let regenerated = |f: u32| matches!(f, 0x4 | 0xb | 0x1f | 0x8000_001d | 0x8000_001e);
    let mut out: Vec<kvm_cpuid_entry2> =
        supported.iter().copied().filter(|e| !regenerated(e.function)).collect();
    let max_basic = supported.iter().find(|e| e.function == 0).map_or(0, |e| e.eax);
    let per_pkg = 1u32 << t.pkg_shift();
    let threads_per_pkg = t.topo.threads_per_core * t.topo.cores_per_llc;

    for e in out.iter_mut() {
        match e.function {
            0 => e.eax = e.eax.max(0xb),
            1 => {
                e.ebx = (e.ebx & 0xffff) | (apic << 24) | (per_pkg.min(255) << 16);
                if per_pkg > 1 {
                    e.edx |= 1 << 28; // HTT: more than one logical CPU per package
                }
                e.ecx |= 1 << 31; // running under a hypervisor
                e.ecx &= !(1 << 5); // no VMX: see NO_SVM
                if extras.tsc_deadline {
                    e.ecx |= TSC_DEADLINE;
                }
            }
            0x8000_0000 if v == Vendor::Amd => e.eax = e.eax.max(0x8000_001e),
            // TOPOEXT, no SVM.
            0x8000_0001 if v == Vendor::Amd => e.ecx = (e.ecx | (1 << 22)) & !NO_SVM,
            0x8000_0008 if v == Vendor::Amd => {
                e.ecx = (t.pkg_shift() << 12) | (threads_per_pkg - 1)
            }
            _ => {}
        }
    }
    out.extend(ext_topology(0xb, t, apic));
    if max_basic >= 0x1f {
        out.extend(ext_topology(0x1f, t, apic));
    }
    match v {
        Vendor::Amd => {
            out.extend(cache_leaves(0x8000_001d, t, false));
            let ebx = ((t.topo.threads_per_core - 1) << 8) | (place.core & 0xff);
            // One node per package: the node id is the package (LLC) id.
            let mut e = entry(0x8000_001e, 0, apic, ebx, place.llc & 0xff, 0);
            e.flags = 0;
            out.push(e);
        }
        _ => out.extend(cache_leaves(0x4, t, true)),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(vendor: &[u8; 12]) -> Vec<kvm_cpuid_entry2> {
        let r = |i: usize| u32::from_le_bytes(vendor[i..i + 4].try_into().unwrap());
        let plain = |function, eax, ebx, ecx, edx| kvm_cpuid_entry2 {
            function,
            eax,
            ebx,
            ecx,
            edx,
            ..Default::default()
        };
        vec![
            plain(0, 0xd, r(0), r(8), r(4)),
            plain(1, 0x0800_0f11, 0x0000_0800, 0, 0),
            plain(0xb, 0, 0, 0, 0),
            plain(0x8000_0000, 0x8000_0008, 0, 0, 0),
            plain(0x8000_0001, 0, 0, 0, 0),
            plain(0x8000_0008, 0x3030, 0, 0, 0),
        ]
    }

    fn get(v: &[kvm_cpuid_entry2], f: u32, i: u32) -> kvm_cpuid_entry2 {
        *v.iter()
            .find(|e| e.function == f && e.index == i)
            .unwrap_or_else(|| panic!("no leaf {f:#x}.{i}"))
    }

    fn topo(s: &str) -> CpuTopo {
        CpuTopo::new(&s.parse().unwrap()).unwrap()
    }

    #[test]
    fn virtualisation_extensions_are_hidden() {
        let mut amd = base(b"AuthenticAMD");
        amd.iter_mut().find(|e| e.function == 0x8000_0001).unwrap().ecx = NO_SVM | 1;
        amd.iter_mut().find(|e| e.function == 1).unwrap().ecx = 1 << 5;
        let v = for_vcpu(&amd, KvmExtras::default(), &topo("1n1l2c1t"), 1);
        assert_eq!(get(&v, 0x8000_0001, 0).ecx & NO_SVM, 0);
        assert_eq!(get(&v, 0x8000_0001, 0).ecx & 1, 1, "other bits stay");
        assert_eq!(get(&v, 1, 0).ecx & (1 << 5), 0);
    }

    #[test]
    fn tsc_deadline_timer_when_kvm_emulates_it() {
        let t = topo("1n1l2c1t");
        let off = for_vcpu(&base(b"AuthenticAMD"), KvmExtras::default(), &t, 0);
        assert_eq!(get(&off, 1, 0).ecx & TSC_DEADLINE, 0);
        let on = for_vcpu(&base(b"AuthenticAMD"), KvmExtras { tsc_deadline: true }, &t, 1);
        assert_ne!(get(&on, 1, 0).ecx & TSC_DEADLINE, 0);
    }

    #[test]
    fn vendors() {
        assert_eq!(vendor(&base(b"GenuineIntel")), Vendor::Intel);
        assert_eq!(vendor(&base(b"AuthenticAMD")), Vendor::Amd);
        assert_eq!(vendor(&[]), Vendor::Other);
    }

    #[test]
    fn single_cpu() {
        let t = topo("1n1l1c1t");
        let v = for_vcpu(&base(b"GenuineIntel"), KvmExtras::default(), &t, 0);
        assert_eq!(get(&v, 1, 0).ebx >> 24, 0);
        assert_eq!(get(&v, 1, 0).edx & (1 << 28), 0);
        let smt = get(&v, 0xb, 0);
        assert_eq!((smt.eax, smt.ebx, smt.ecx), (0, 1, 0x100));
        let core = get(&v, 0xb, 1);
        assert_eq!((core.eax, core.ebx, core.ecx), (0, 1, 0x201));
        assert_eq!((get(&v, 4, 3).eax >> 14) & 0xfff, 0);
        assert_eq!(v.iter().filter(|e| e.function == 0xb).count(), 3);
    }

    #[test]
    fn smt_and_llcs_intel() {
        let t = topo("1n2l4c2t");
        let supported = base(b"GenuineIntel");
        for cpu in [0, 5, 13] {
            let v = for_vcpu(&supported, KvmExtras::default(), &t, cpu);
            assert_eq!(get(&v, 1, 0).ebx >> 24, cpu);
            assert_eq!((get(&v, 1, 0).ebx >> 16) & 0xff, 8);
            assert_eq!(get(&v, 1, 0).ebx & 0xffff, 0x0800, "CLFLUSH size kept");
            let smt = get(&v, 0xb, 0);
            assert_eq!((smt.eax, smt.ebx, smt.edx), (1, 2, cpu));
            let core = get(&v, 0xb, 1);
            assert_eq!((core.eax, core.ebx, core.edx), (3, 8, cpu));
            // L1d shared by the 2 SMT threads, L3 by the 8 CPUs of the LLC.
            assert_eq!((get(&v, 4, 0).eax >> 14) & 0xfff, 1);
            assert_eq!((get(&v, 4, 3).eax >> 14) & 0xfff, 7);
            assert_eq!(get(&v, 4, 3).eax >> 26, 3);
            assert_eq!((get(&v, 4, 3).eax >> 5) & 7, 3);
            assert_eq!(get(&v, 4, 4).eax, 0);
        }
    }

    #[test]
    fn numa_amd() {
        let t = topo("2n4l2c1t");
        let supported = base(b"AuthenticAMD");
        let v = for_vcpu(&supported, KvmExtras::default(), &t, 11);
        assert_eq!(get(&v, 0x8000_0000, 0).eax, 0x8000_001e);
        assert_ne!(get(&v, 0x8000_0001, 0).ecx & (1 << 22), 0);
        assert_eq!(get(&v, 0x8000_0008, 0).ecx, (1 << 12) | 1);
        let e = get(&v, 0x8000_001e, 0);
        assert_eq!((e.eax, e.ebx, e.ecx), (11, 1, 5), "apic 11, core 1 of LLC 5");
        assert_eq!((get(&v, 0x8000_001d, 3).eax >> 14) & 0xfff, 1, "L3 shared by 2 CPUs");
        assert_eq!((get(&v, 0x8000_001d, 0).eax >> 14) & 0xfff, 0);
        assert_eq!(get(&v, 0x8000_001d, 4).eax, 0);
        assert!(!v.iter().any(|e| e.function == 4), "no Intel cache leaf on AMD");
        assert_eq!(get(&v, 0xb, 1).eax, 1);
        assert_eq!(get(&v, 0xb, 0).edx, 11);
    }

    #[test]
    fn leaf_1f_only_when_the_host_has_it() {
        let t = topo("1n1l2c2t");
        let mut supported = base(b"GenuineIntel");
        assert!(!for_vcpu(&supported, KvmExtras::default(), &t, 0)
            .iter()
            .any(|e| e.function == 0x1f));
        supported[0].eax = 0x1f;
        let v = for_vcpu(&supported, KvmExtras::default(), &t, 3);
        assert_eq!(get(&v, 0x1f, 1).eax, 2);
        assert_eq!(get(&v, 0x1f, 1).edx, 3);
    }

    #[test]
    fn cache_geometry() {
        let t = topo("1n1l1c1t");
        let v = cache_leaves(4, &t, true);
        for (e, &(_, _, size, ways)) in v.iter().zip(CACHES.iter()) {
            let (line, w, sets) = ((e.ebx & 0xfff) + 1, (e.ebx >> 22) + 1, e.ecx + 1);
            assert_eq!(line * w * sets, size);
            assert_eq!(w, ways);
        }
    }
}
