//! virtio-blk behind the MMIO transport, driven as Linux's virtio_blk
//! drives it, over plain guest memory and a real (temporary) file.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::Instant;

use virtio_bindings::virtio_blk::*;
use virtio_bindings::virtio_config::*;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::block::{Block, SECTOR};
use super::driver::*;
use super::mmio::MmioTransport;
use super::throttle::Throttle;
use crate::devices::CountingIrq;

const HEADER: u64 = 0x40000;
const DATA: u64 = 0x50000;
const STATUS: u64 = 0x60000;
const SECTORS: u64 = 64;

struct Rig {
    mem: GuestMemoryMmap,
    dev: MmioTransport,
    irq: Arc<CountingIrq>,
    file: std::fs::File,
    q: DriverQueue,
    used_seen: u16,
}

impl Rig {
    fn new(read_only: bool, throttle: Throttle) -> Rig {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let mut file = tempfile::tempfile().unwrap();
        let pattern: Vec<u8> = (0..SECTORS * SECTOR).map(|i| (i / SECTOR) as u8).collect();
        file.write_all(&pattern).unwrap();
        let block = Block::new(file.try_clone().unwrap(), read_only, "disk0-serial")
            .unwrap()
            .with_throttle(throttle);
        let irq = Arc::new(CountingIrq::default());
        let dev = MmioTransport::new(Box::new(block), mem.clone(), irq.clone());
        let mut rig = Rig { mem, dev, irq, file, q: DriverQueue::new(0), used_seen: 0 };
        rig.probe();
        rig
    }

    /// What virtio_mmio.c and virtio_blk.c do at probe.
    fn probe(&mut self) {
        assert_eq!(self.dev.r(8), 2, "device id: block");
        let (ack, drv) = (VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER);
        self.dev.w(0x70, ack | drv);
        self.dev.w(0x14, 0);
        let offered = self.dev.r(0x10);
        self.dev.w(0x24, 0);
        self.dev.w(0x20, offered);
        self.dev.w(0x24, 1);
        self.dev.w(0x20, 1); // VERSION_1 (bit 32)
        self.dev.w(0x70, ack | drv | VIRTIO_CONFIG_S_FEATURES_OK);
        self.dev.w(0x30, 0);
        self.dev.w(0x38, u32::from(QSIZE));
        let (d, a, u) = (self.q.desc, self.q.avail, self.q.used);
        for (off, v) in [(0x80, d), (0x90, a), (0xa0, u)] {
            self.dev.w(off, v as u32);
            self.dev.w(off + 4, (v >> 32) as u32);
        }
        self.dev.w(0x44, 1);
        self.dev.w(0x70, ack | drv | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    }

    fn header(&self, kind: u32, sector: u64) {
        self.mem.write_obj(kind, GuestAddress(HEADER)).unwrap();
        self.mem.write_obj(0u32, GuestAddress(HEADER + 4)).unwrap();
        self.mem.write_obj(sector, GuestAddress(HEADER + 8)).unwrap();
        self.mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
    }

    /// Queues a chain and notifies (as the ioeventfd worker would).
    fn submit(&mut self, bufs: &[(u64, u32, bool)]) {
        let mem = self.mem.clone();
        self.q.add_chain(&mem, bufs);
        self.dev.process_queue(0);
    }

    /// A request with one data buffer of `len` bytes; returns (status, used length).
    fn request(&mut self, kind: u32, sector: u64, len: u32, device_writes: bool) -> (u8, u32) {
        self.header(kind, sector);
        self.submit(&[(HEADER, 16, false), (DATA, len, device_writes), (STATUS, 1, true)]);
        self.last()
    }

    /// The status byte and the used length of the newest completion.
    fn last(&mut self) -> (u8, u32) {
        let idx = self.q.used_idx(&self.mem);
        assert_eq!(idx, self.used_seen + 1, "exactly one request completed");
        self.used_seen = idx;
        let (_, len) = self.q.used_elem(&self.mem, idx - 1);
        (self.mem.read_obj(GuestAddress(STATUS)).unwrap(), len)
    }

    fn file_bytes(&mut self, at: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        self.file.seek(SeekFrom::Start(at)).unwrap();
        self.file.read_exact(&mut b).unwrap();
        b
    }
}

const OK: u8 = VIRTIO_BLK_S_OK as u8;
const IOERR: u8 = VIRTIO_BLK_S_IOERR as u8;

#[test]
fn config_space_gives_capacity_and_segments() {
    let mut rig = Rig::new(false, Throttle::default());
    assert_eq!(u64::from(rig.dev.r(0x100)) | (u64::from(rig.dev.r(0x104)) << 32), SECTORS);
    assert_eq!(rig.dev.r(0x10c), u32::from(super::block::QUEUE_SIZE) - 2, "seg_max");
    rig.dev.w(0x14, 0);
    let f = rig.dev.r(0x10);
    assert_ne!(f & (1 << VIRTIO_BLK_F_FLUSH), 0);
    assert_eq!(f & (1 << VIRTIO_BLK_F_RO), 0, "writable");
    assert_ne!(Rig::new(true, Throttle::default()).dev.r(0x10) & (1 << VIRTIO_BLK_F_RO), 0);
}

#[test]
fn reads_and_writes_reach_the_file() {
    let mut rig = Rig::new(false, Throttle::default());
    assert_eq!(rig.request(VIRTIO_BLK_T_IN, 3, 1024, true), (OK, 1025));
    let mut got = vec![0u8; 1024];
    rig.mem.read_slice(&mut got, GuestAddress(DATA)).unwrap();
    assert!(got[..512].iter().all(|&b| b == 3) && got[512..].iter().all(|&b| b == 4));

    rig.mem.write_slice(&[0xab; 512], GuestAddress(DATA)).unwrap();
    assert_eq!(rig.request(VIRTIO_BLK_T_OUT, 10, 512, false), (OK, 1));
    assert_eq!(rig.file_bytes(10 * SECTOR, 512), vec![0xab; 512]);
    assert_eq!(rig.file_bytes(11 * SECTOR, 1), vec![11], "the next sector is untouched");
    assert!(rig.irq.count() >= 2, "each completion interrupts");
}

#[test]
fn get_id_and_flush() {
    let mut rig = Rig::new(false, Throttle::default());
    assert_eq!(rig.request(VIRTIO_BLK_T_GET_ID, 0, 20, true), (OK, 21));
    let mut id = [0u8; 20];
    rig.mem.read_slice(&mut id, GuestAddress(DATA)).unwrap();
    assert_eq!(&id[..12], b"disk0-serial");
    assert!(id[12..].iter().all(|&b| b == 0));
    rig.header(VIRTIO_BLK_T_FLUSH, 0);
    rig.submit(&[(HEADER, 16, false), (STATUS, 1, true)]);
    assert_eq!(rig.last(), (OK, 1));
}

#[test]
fn bad_requests_get_an_error_status() {
    let mut rig = Rig::new(false, Throttle::default());
    // Past the end, straddling the end, a partial sector, the wrong direction.
    assert_eq!(rig.request(VIRTIO_BLK_T_IN, SECTORS, 512, true).0, IOERR);
    assert_eq!(rig.request(VIRTIO_BLK_T_OUT, SECTORS - 1, 1024, false).0, IOERR);
    assert_eq!(rig.request(VIRTIO_BLK_T_IN, u64::MAX, 512, true).0, IOERR);
    assert_eq!(rig.request(VIRTIO_BLK_T_IN, 0, 100, true).0, IOERR);
    assert_eq!(rig.request(VIRTIO_BLK_T_IN, 0, 512, false).0, IOERR);
    assert_eq!(rig.request(VIRTIO_BLK_T_OUT, 0, 512, true).0, IOERR);
    // An unknown type is unsupported, not an I/O error.
    assert_eq!(rig.request(99, 0, 512, true), (VIRTIO_BLK_S_UNSUPP as u8, 1));
    // A data buffer outside guest memory.
    rig.header(VIRTIO_BLK_T_IN, 0);
    rig.submit(&[(HEADER, 16, false), (0x10_0000_0000, 512, true), (STATUS, 1, true)]);
    assert_eq!(rig.last().0, IOERR);
    // A short header.
    rig.header(VIRTIO_BLK_T_IN, 0);
    rig.submit(&[(HEADER, 8, false), (DATA, 512, true), (STATUS, 1, true)]);
    assert_eq!(rig.last().0, IOERR);
    // No status byte to answer in: returned unanswered, with length 0.
    rig.header(VIRTIO_BLK_T_OUT, 0);
    rig.submit(&[(HEADER, 16, false), (DATA, 512, false)]);
    assert_eq!(rig.last(), (0xff, 0));
    // The device still serves good requests afterwards.
    assert_eq!(rig.request(VIRTIO_BLK_T_IN, 1, 512, true), (OK, 513));
}

#[test]
fn read_only_disks_refuse_writes() {
    let mut rig = Rig::new(true, Throttle::default());
    rig.mem.write_slice(&[0xcd; 512], GuestAddress(DATA)).unwrap();
    assert_eq!(rig.request(VIRTIO_BLK_T_OUT, 5, 512, false).0, IOERR);
    assert_eq!(rig.file_bytes(5 * SECTOR, 1), vec![5]);
    assert_eq!(rig.request(VIRTIO_BLK_T_IN, 5, 512, true).0, OK);
}

#[test]
fn throttled_requests_wait_in_the_queue() {
    let mut rig = Rig::new(false, Throttle::new(Some(2), None, Instant::now()));
    for _ in 0..2 {
        assert_eq!(rig.request(VIRTIO_BLK_T_IN, 0, 512, true).0, OK);
    }
    assert_eq!(rig.dev.retry_after(), None);
    rig.header(VIRTIO_BLK_T_IN, 0);
    rig.submit(&[(HEADER, 16, false), (DATA, 512, true), (STATUS, 1, true)]);
    assert_eq!(rig.q.used_idx(&rig.mem), 2, "the third request waits");
    let wait = rig.dev.retry_after().expect("a retry is asked for");
    std::thread::sleep(wait);
    rig.dev.process_queue(0);
    assert_eq!(rig.last().0, OK, "served once the bucket refilled");
    assert_eq!(rig.dev.retry_after(), None);
}
