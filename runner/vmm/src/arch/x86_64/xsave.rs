//! The vCPU's initial XCR0: the user state components Linux will enable.
//!
//! On hardware the value does not matter: the guest kernel writes XCR0 with
//! XSETBV, KVM intercepts it and recomputes CPUID.(EAX=0xD,ECX=0).EBX, the
//! XSAVE area size for the enabled components. Under an L1 emulated by QEMU
//! TCG, L2's XSETBV is not intercepted (TCG's nested SVM does not check that
//! intercept), so L1's KVM keeps EBX for XCR0 = x87 only (576 bytes) while
//! the guest enabled AVX (832): Linux warns `XSAVE consistency problem` and
//! boots without XSAVE at all, with a 3 KB splat on a console that costs two
//! VM exits a byte. Starting with the components Linux enables gives KVM the
//! right EBX from the first instruction.

use kvm_bindings::{kvm_cpuid_entry2, kvm_xcrs};
use kvm_ioctls::VcpuFd;

/// x87, SSE, AVX, the three AVX-512 components and PKRU: the user state
/// Linux enables when offered. AMX (bits 17, 18) is left out: its state is
/// dynamic and Linux turns it on per process.
const LINUX_USER_XFEATURES: u64 = 0x7 | 0xe0 | (1 << 9);
const AVX512: u64 = 0xe0;
const AVX: u64 = 1 << 2;

/// XCR0 for the components CPUID leaf 0xD offers. None when the leaf is
/// missing (no XSAVE): XCR0 then keeps KVM's reset value.
pub fn initial_xcr0(entries: &[kvm_cpuid_entry2]) -> Option<u64> {
    let leaf = entries.iter().find(|e| e.function == 0xd && e.index == 0)?;
    let offered = u64::from(leaf.eax) | (u64::from(leaf.edx) << 32);
    let mut xcr0 = offered & LINUX_USER_XFEATURES;
    // Architectural rules XSETBV enforces: x87 always, AVX needs SSE, the
    // AVX-512 components come together and need AVX.
    if xcr0 & 0x3 != 0x3 {
        return None;
    }
    if xcr0 & AVX == 0 || xcr0 & AVX512 != AVX512 {
        xcr0 &= !AVX512;
    }
    Some(xcr0)
}

/// Sets XCR0 (after KVM_SET_CPUID2: KVM checks it against the CPUID).
pub fn setup_xcr0(vcpu: &VcpuFd, xcr0: u64) -> anyhow::Result<()> {
    let mut xcrs = kvm_xcrs { nr_xcrs: 1, ..Default::default() };
    xcrs.xcrs[0].xcr = 0;
    xcrs.xcrs[0].value = xcr0;
    vcpu.set_xcrs(&xcrs).map_err(|e| anyhow::anyhow!("KVM_SET_XCRS (XCR0 {xcr0:#x}): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_d(eax: u32, edx: u32) -> Vec<kvm_cpuid_entry2> {
        let e = kvm_cpuid_entry2 { function: 0xd, index: 0, eax, edx, ..Default::default() };
        vec![e, kvm_cpuid_entry2 { function: 0xd, index: 1, eax: 0xf, ..Default::default() }]
    }

    #[test]
    fn avx_host_gets_x87_sse_avx() {
        // QEMU TCG -cpu max, as an L1 offers it.
        assert_eq!(initial_xcr0(&leaf_d(0x7, 0)), Some(0x7));
    }

    #[test]
    fn avx512_and_pkru_when_offered_amx_never() {
        assert_eq!(initial_xcr0(&leaf_d(0x602e7, 0)), Some(0x2e7));
    }

    #[test]
    fn partial_avx512_is_dropped() {
        assert_eq!(initial_xcr0(&leaf_d(0x67, 0)), Some(0x7));
    }

    #[test]
    fn without_xsave_nothing_is_set() {
        assert_eq!(initial_xcr0(&[]), None);
        assert_eq!(initial_xcr0(&leaf_d(0x1, 0)), None);
    }
}
