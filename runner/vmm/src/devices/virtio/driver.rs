//! The driver's side of a split virtqueue over plain guest memory, as
//! Linux's virtio_ring lays it out: for the device tests.

use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::mmio::MmioTransport;
use crate::devices::bus::BusDevice;

pub const QSIZE: u16 = 16;
pub const F_NEXT: u16 = VRING_DESC_F_NEXT as u16;
pub const F_WRITE: u16 = VRING_DESC_F_WRITE as u16;

/// The driver's side of one split queue.
pub struct DriverQueue {
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub next_desc: u16,
}

impl DriverQueue {
    pub fn new(q: usize) -> DriverQueue {
        let base = 0x10000 * (q as u64 + 1);
        DriverQueue { desc: base, avail: base + 0x1000, used: base + 0x2000, next_desc: 0 }
    }

    pub fn write_desc(
        &self,
        mem: &GuestMemoryMmap,
        i: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) {
        let at = GuestAddress(self.desc + 16 * u64::from(i));
        mem.write_obj(addr, at).unwrap();
        mem.write_obj(len, GuestAddress(at.0 + 8)).unwrap();
        mem.write_obj(flags, GuestAddress(at.0 + 12)).unwrap();
        mem.write_obj(next, GuestAddress(at.0 + 14)).unwrap();
    }

    /// Publishes a chain of (addr, len, device-writable) buffers.
    pub fn add_chain(&mut self, mem: &GuestMemoryMmap, bufs: &[(u64, u32, bool)]) -> u16 {
        let head = self.next_desc;
        for (k, &(addr, len, w)) in bufs.iter().enumerate() {
            let i = self.next_desc;
            let last = k + 1 == bufs.len();
            let flags = if w { F_WRITE } else { 0 } | if last { 0 } else { F_NEXT };
            self.write_desc(mem, i, addr, len, flags, (i + 1) % QSIZE);
            self.next_desc = (i + 1) % QSIZE;
        }
        self.publish(mem, head);
        head
    }

    pub fn publish(&self, mem: &GuestMemoryMmap, head: u16) {
        let idx: u16 = mem.read_obj(GuestAddress(self.avail + 2)).unwrap();
        mem.write_obj(head, GuestAddress(self.avail + 4 + 2 * u64::from(idx % QSIZE))).unwrap();
        mem.write_obj(idx.wrapping_add(1), GuestAddress(self.avail + 2)).unwrap();
    }

    pub fn used_idx(&self, mem: &GuestMemoryMmap) -> u16 {
        mem.read_obj(GuestAddress(self.used + 2)).unwrap()
    }

    /// (descriptor id, length) of used entry `n`.
    pub fn used_elem(&self, mem: &GuestMemoryMmap, n: u16) -> (u32, u32) {
        let at = self.used + 4 + 8 * u64::from(n % QSIZE);
        (mem.read_obj(GuestAddress(at)).unwrap(), mem.read_obj(GuestAddress(at + 4)).unwrap())
    }
}

/// 32-bit register access, as the driver does it.
pub trait Regs {
    fn w(&mut self, off: u64, v: u32);
    fn r(&mut self, off: u64) -> u32;
}

impl Regs for MmioTransport {
    fn w(&mut self, off: u64, v: u32) {
        self.write(off, &v.to_le_bytes());
    }

    fn r(&mut self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.read(off, &mut b);
        u32::from_le_bytes(b)
    }
}
