//! Guest RAM every boot touches, mapped for the guest before its first
//! instruction. Each guest page first touched is a nested page fault: an
//! exit to KVM, which faults the host page in, maps it and re-enters. When
//! this VMM itself runs nested under an emulator, that round trip is the
//! dearest thing a guest does, and a boot touches some 15 000 pages (the
//! decompressed kernel, the initrd, the struct page array). Here the host
//! pages are populated in one madvise and KVM_PRE_FAULT_MEMORY (Linux 6.10)
//! maps them in the guest's page tables with no exit at all. Measured in an
//! L1 under TCG (README, Performance): populating alone gains nothing, the
//! exits are the cost; both together take ~0.5 s off a run.

use kvm_bindings::kvm_pre_fault_memory;
use kvm_ioctls::VcpuFd;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::ioctl::ioctl_with_mut_ref;

use crate::arch::x86_64::layout;

// kvm-ioctls 0.25 has no wrapper for it: _IOWR(KVMIO, 0xd5, struct kvm_pre_fault_memory).
vmm_sys_util::ioctl_iowr_nr!(KVM_PRE_FAULT_MEMORY, kvm_bindings::KVMIO, 0xd5, kvm_pre_fault_memory);

/// Linux 5.14's madvise advice (libc does not name it): fault the range in
/// writable, as a write to each page would.
const MADV_POPULATE_WRITE: libc::c_int = 23;

const PAGE: u64 = 4096;
/// The most RAM assumed for the kernel's early allocations at the top of
/// RAM, so that a large guest does not pay for populating what it may not use.
const TOP_MAX: u64 = 64 << 20;

/// A guest-physical range, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

/// The guest RAM every boot touches, page-aligned: the kernel from where it
/// is loaded to `kernel_end` (a bzImage's decompression area), the initrd
/// (`(address, size)`), and the top of RAM, where the kernel's early
/// allocator puts its struct page array (64 bytes a page) and page tables.
pub fn boot_ranges(kernel_end: u64, initrd: (u64, u64), mem_bytes: u64) -> Vec<Range> {
    let ram = layout::ram_ranges(mem_bytes);
    let top_end = ram.last().map_or(0, |(start, len)| start.0 + *len as u64);
    let top_len = (mem_bytes / 64 + (4 << 20)).min(TOP_MAX);
    let down = |a: u64| a / PAGE * PAGE;
    let up = |a: u64| a.next_multiple_of(PAGE);
    // The allocator starts below the initrd when the initrd is at the top.
    let below = if up(initrd.0 + initrd.1) >= top_end { down(initrd.0) } else { top_end };
    let mut out = vec![
        Range { start: layout::HIMEM_START, end: up(kernel_end) },
        Range { start: down(initrd.0), end: up(initrd.0 + initrd.1) },
        Range { start: down(below.saturating_sub(top_len)), end: below },
    ];
    // Ranges that meet or overlap (a small guest's initrd sits in its top) merge.
    out.sort_by_key(|r| r.start);
    let mut merged: Vec<Range> = Vec::new();
    for r in out.into_iter().filter(|r| r.start < r.end) {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// How much was made present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prefaulted {
    pub populated_bytes: u64,
    pub mapped_bytes: u64,
}

/// Populates `ranges` of `mem`, then maps them through `vcpu`, which must not
/// be running yet. Best effort: what the host refuses, the guest faults in
/// itself as it would have.
pub fn prefault(mem: &GuestMemoryMmap, vcpu: &VcpuFd, ranges: &[Range]) -> Prefaulted {
    let populated_bytes = populate(mem, ranges);
    // Mapping pages that are not there would map them read-only (the zero
    // page); the guest's first write would fault anyway.
    let mapped_bytes = if populated_bytes > 0 { map(vcpu, ranges) } else { 0 };
    Prefaulted { populated_bytes, mapped_bytes }
}

/// Populates `ranges` of `mem` in the host: each page allocated as a write
/// would. Returns the bytes populated; a refusal (a kernel before 5.14) ends
/// it early, and the guest faults the rest in itself.
fn populate(mem: &GuestMemoryMmap, ranges: &[Range]) -> u64 {
    let mut done = 0;
    for r in ranges {
        let len = (r.end - r.start) as usize;
        let Ok(host) = mem.get_slice(GuestAddress(r.start), len) else {
            tracing::debug!("prefault: {r:x?} is not inside one RAM region; skipped");
            continue;
        };
        // SAFETY: the range lies within one mapping owned by the guest memory;
        // populating changes no contents (fresh pages are zero either way).
        let rc = unsafe {
            libc::madvise(host.ptr_guard_mut().as_ptr().cast(), len, MADV_POPULATE_WRITE)
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            tracing::debug!("prefault: madvise(MADV_POPULATE_WRITE) refused: {err}");
            break;
        }
        done += len as u64;
    }
    done
}

/// Maps `ranges` in the guest's page tables through `vcpu`, which must not
/// be running. Returns the bytes mapped; stops at KVM's first refusal (before
/// Linux 6.10, or shadow paging).
fn map(vcpu: &VcpuFd, ranges: &[Range]) -> u64 {
    let mut done = 0;
    for r in ranges {
        match map_range(vcpu, *r) {
            Ok(()) => done += r.end - r.start,
            Err(e) => {
                tracing::debug!("prefault: KVM_PRE_FAULT_MEMORY refused: {e}");
                break;
            }
        }
    }
    done
}

/// KVM_PRE_FAULT_MEMORY over `r`, resumed where an interrupted call stopped.
fn map_range(vcpu: &VcpuFd, r: Range) -> std::io::Result<()> {
    let mut arg =
        kvm_pre_fault_memory { gpa: r.start, size: r.end - r.start, ..Default::default() };
    while arg.size > 0 {
        // SAFETY: the ioctl reads and updates `arg`, a struct of the size it expects.
        let rc = unsafe { ioctl_with_mut_ref(vcpu, KVM_PRE_FAULT_MEMORY(), &mut arg) };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if !matches!(err.raw_os_error(), Some(libc::EINTR) | Some(libc::EAGAIN)) {
                return Err(err);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_small_guest_prefaults_its_kernel_and_its_top() {
        // 512 MiB, a 9 MiB initrd at the top: the initrd and the struct
        // pages below it make one range.
        let initrd = ((512 - 9) * MIB + 0x123, 9 * MIB - 0x123);
        let r = boot_ranges(0x298_1000, initrd, 512 * MIB);
        assert_eq!(
            r,
            vec![
                Range { start: 0x10_0000, end: 0x298_1000 },
                Range { start: (512 - 9 - 12) * MIB, end: 512 * MIB },
            ]
        );
    }

    #[test]
    fn ranges_are_page_aligned_and_merged() {
        let r = boot_ranges(0x298_0001, (100 * MIB + 1, 10), 128 * MIB);
        assert_eq!(r[0], Range { start: 0x10_0000, end: 0x298_1000 });
        assert_eq!(r[1], Range { start: 100 * MIB, end: 100 * MIB + PAGE });
        assert_eq!(r[2], Range { start: (128 - 6) * MIB, end: 128 * MIB }, "below the top");
        // The top overlaps the kernel in a tiny guest: one range.
        let tiny = boot_ranges(40 * MIB, (40 * MIB, 8 * MIB), 48 * MIB);
        assert_eq!(tiny, vec![Range { start: 0x10_0000, end: 48 * MIB }]);
    }

    #[test]
    fn a_large_guest_prefaults_the_top_of_high_ram_within_a_bound() {
        // 8 GiB: RAM above 4 GiB ends at 9 GiB; 128 MiB of struct pages is
        // more than the bound.
        let r = boot_ranges(0x298_1000, (3072 * MIB - 9 * MIB, 9 * MIB), 8192 * MIB);
        let top = r.last().unwrap();
        assert_eq!((top.start, top.end), (9216 * MIB - TOP_MAX, 9216 * MIB));
    }

    #[test]
    fn populating_makes_the_pages_resident() {
        let mem: GuestMemoryMmap =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), (4 * MIB) as usize)]).unwrap();
        let range = Range { start: MIB, end: 2 * MIB };
        assert_eq!(populate(&mem, &[range]), MIB);
        let host = mem.get_host_address(GuestAddress(0)).unwrap();
        let mut resident = vec![0u8; (4 * MIB / PAGE) as usize];
        // SAFETY: the whole 4 MiB mapping, one status byte per page.
        let rc = unsafe { libc::mincore(host.cast(), (4 * MIB) as usize, resident.as_mut_ptr()) };
        assert_eq!(rc, 0);
        let pages = |a: u64, b: u64| &resident[(a / PAGE) as usize..(b / PAGE) as usize];
        assert!(pages(MIB, 2 * MIB).iter().all(|p| p & 1 == 1), "the range is resident");
        assert!(pages(2 * MIB, 4 * MIB).iter().all(|p| p & 1 == 0), "nothing past it");
    }
}
