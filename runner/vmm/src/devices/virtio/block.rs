//! virtio-blk (virtio spec 5.2) over a host file: one request queue serving
//! IN, OUT, FLUSH and GET_ID; optional read-only and throttling.
//!
//! A request is a descriptor chain: a 16-byte header the driver wrote (type,
//! reserved, sector), data buffers, and a one-byte status the device writes.
//! Chains are validated as data (`parse`): a malformed one is answered with
//! VIRTIO_BLK_S_IOERR when it has a status byte to answer in, and returned
//! unanswered otherwise; nothing the guest writes can panic the VMM.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_ID_BYTES,
    VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_FLUSH,
    VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK;
use virtio_queue::{DescriptorChain, Queue, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use super::throttle::Throttle;
use super::VirtioDevice;

pub const SECTOR: u64 = 512;
pub const QUEUE_SIZE: u16 = 256;
/// Requests served per `process` call: the transport's lock is held for a
/// batch, and vCPUs touching the device's registers wait for it.
const MAX_BATCH: usize = 32;
/// Bytes one request may move: bounds the copy buffer a chain can ask for.
const MAX_REQUEST_BYTES: u64 = 16 << 20;
const HEADER_LEN: u32 = 16;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    In,
    Out,
    Flush,
    GetId,
    Other(u32),
}

/// A validated request: where its data and status live in guest memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: Kind,
    pub sector: u64,
    pub data: Vec<(GuestAddress, u32)>,
    pub status: GuestAddress,
}

impl Request {
    pub fn data_len(&self) -> u64 {
        self.data.iter().map(|&(_, l)| u64::from(l)).sum()
    }
}

/// Why a chain is not a request; `status` is where to say so, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadChain {
    pub why: &'static str,
    pub status: Option<GuestAddress>,
}

/// Validates one chain: header first (device-readable), status last
/// (device-writable, at least one byte), data in between, writable for IN
/// and GET_ID and readable for OUT, whole sectors for IN and OUT.
pub fn parse(
    chain: DescriptorChain<&GuestMemoryMmap>,
    mem: &GuestMemoryMmap,
) -> Result<Request, BadChain> {
    let descs: Vec<_> = chain.collect();
    // The status is the last byte of the last (device-writable) descriptor.
    let status = descs
        .last()
        .filter(|d| d.is_write_only() && d.len() >= 1)
        .and_then(|d| d.addr().checked_add(u64::from(d.len()) - 1));
    let bad = |why| BadChain { why, status };
    let (Some(head), Some(_)) = (descs.first(), status) else {
        return Err(bad("no writable status byte at the end of the chain"));
    };
    if descs.len() < 2 || head.is_write_only() || head.len() < HEADER_LEN {
        return Err(bad("the chain does not start with a readable 16-byte header"));
    }
    let mut header = [0u8; HEADER_LEN as usize];
    mem.read_slice(&mut header, head.addr()).map_err(|_| bad("header outside guest memory"))?;
    let kind = match u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) {
        VIRTIO_BLK_T_IN => Kind::In,
        VIRTIO_BLK_T_OUT => Kind::Out,
        VIRTIO_BLK_T_FLUSH => Kind::Flush,
        VIRTIO_BLK_T_GET_ID => Kind::GetId,
        t => Kind::Other(t),
    };
    let sector = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
    let body = &descs[1..descs.len() - 1];
    let status = status.expect("checked above");
    if matches!(kind, Kind::Flush | Kind::Other(_)) {
        // No data to check: a flush has none, an unknown type is answered UNSUPP.
        return Ok(Request { kind, sector, data: Vec::new(), status });
    }
    let writes = matches!(kind, Kind::In | Kind::GetId);
    if body.is_empty() {
        return Err(bad("a data request without data buffers"));
    }
    if body.iter().any(|d| d.is_write_only() != writes) {
        return Err(bad("a data buffer points the wrong way for the request"));
    }
    let data: Vec<(GuestAddress, u32)> = body.iter().map(|d| (d.addr(), d.len())).collect();
    let req = Request { kind, sector, data, status };
    if matches!(kind, Kind::In | Kind::Out) {
        if req.data_len() % SECTOR != 0 {
            return Err(bad("data is not a whole number of sectors"));
        }
        if req.data_len() > MAX_REQUEST_BYTES {
            return Err(bad("request larger than 16 MiB"));
        }
    }
    Ok(req)
}

/// Counts for diagnostics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BlockStats {
    pub reads: u64,
    pub writes: u64,
    pub flushes: u64,
    pub errors: u64,
}

pub struct Block {
    file: File,
    capacity_sectors: u64,
    read_only: bool,
    serial: [u8; VIRTIO_BLK_ID_BYTES as usize],
    throttle: Throttle,
    /// Set when the throttle held requests back: when to look again.
    retry_at: Option<Instant>,
    /// More requests were queued than one batch serves.
    more: bool,
    pub stats: BlockStats,
}

impl Block {
    /// A disk over `file` (its length, rounded down to whole sectors), named
    /// `serial` to the guest (GET_ID; `/sys/block/vdX/serial`, at most 20 bytes).
    pub fn new(file: File, read_only: bool, serial: &str) -> std::io::Result<Block> {
        let len = file.metadata()?.len();
        let mut id = [0u8; VIRTIO_BLK_ID_BYTES as usize];
        let s = serial.as_bytes();
        let n = s.len().min(id.len());
        id[..n].copy_from_slice(&s[..n]);
        Ok(Block {
            file,
            capacity_sectors: len / SECTOR,
            read_only,
            serial: id,
            throttle: Throttle::default(),
            retry_at: None,
            more: false,
            stats: BlockStats::default(),
        })
    }

    pub fn with_throttle(mut self, throttle: Throttle) -> Block {
        self.throttle = throttle;
        self
    }

    /// Runs one request; returns its status and the bytes written to the
    /// guest (data for IN and GET_ID, then the status byte).
    fn execute(&mut self, mem: &GuestMemoryMmap, req: &Request) -> (u8, u32) {
        let mut written = 0u32;
        let ok = match req.kind {
            Kind::In | Kind::Out => {
                let in_range = req
                    .sector
                    .checked_mul(SECTOR)
                    .and_then(|start| start.checked_add(req.data_len()))
                    .is_some_and(|end| end <= self.capacity_sectors * SECTOR);
                if !in_range || (req.kind == Kind::Out && self.read_only) {
                    false
                } else if req.kind == Kind::In {
                    self.stats.reads += 1;
                    match self.read(mem, req) {
                        Ok(n) => {
                            written = n;
                            true
                        }
                        Err(_) => false,
                    }
                } else {
                    self.stats.writes += 1;
                    self.write(mem, req).is_ok()
                }
            }
            Kind::Flush => {
                self.stats.flushes += 1;
                self.file.sync_data().is_ok()
            }
            Kind::GetId => {
                let (addr, len) = req.data[0];
                let n = (len as usize).min(self.serial.len());
                written = n as u32;
                mem.write_slice(&self.serial[..n], addr).is_ok()
            }
            Kind::Other(t) => {
                tracing::debug!("virtio-blk: unsupported request type {t}");
                return (VIRTIO_BLK_S_UNSUPP as u8, 1);
            }
        };
        if ok {
            (VIRTIO_BLK_S_OK as u8, written + 1)
        } else {
            self.stats.errors += 1;
            (VIRTIO_BLK_S_IOERR as u8, 1)
        }
    }

    fn read(&self, mem: &GuestMemoryMmap, req: &Request) -> std::io::Result<u32> {
        let mut off = req.sector * SECTOR;
        for &(addr, len) in &req.data {
            let mut buf = vec![0u8; len as usize];
            self.file.read_exact_at(&mut buf, off)?;
            mem.write_slice(&buf, addr).map_err(std::io::Error::other)?;
            off += u64::from(len);
        }
        Ok(req.data_len() as u32)
    }

    fn write(&self, mem: &GuestMemoryMmap, req: &Request) -> std::io::Result<()> {
        let mut off = req.sector * SECTOR;
        for &(addr, len) in &req.data {
            let mut buf = vec![0u8; len as usize];
            mem.read_slice(&mut buf, addr).map_err(std::io::Error::other)?;
            self.file.write_all_at(&buf, off)?;
            off += u64::from(len);
        }
        Ok(())
    }

    /// Serves up to a batch of the queue's requests.
    fn serve(&mut self, mem: &GuestMemoryMmap, q: &mut Queue) -> bool {
        let mut used = false;
        self.more = false;
        for served in 0.. {
            let before = q.next_avail();
            let Some(chain) = q.pop_descriptor_chain(mem) else { break };
            if served == MAX_BATCH {
                q.set_next_avail(before);
                self.more = true;
                break;
            }
            let head = chain.head_index();
            let (status, len) = match parse(chain, mem) {
                Ok(req) => {
                    if let Err(wait) = self.throttle.admit(req.data_len(), Instant::now()) {
                        q.set_next_avail(before); // served once the bucket refills
                        self.retry_at = Some(Instant::now() + wait);
                        break;
                    }
                    let (status, len) = self.execute(mem, &req);
                    (Some((status, req.status)), len)
                }
                Err(bad) => {
                    tracing::debug!("virtio-blk: bad request: {}", bad.why);
                    self.stats.errors += 1;
                    (bad.status.map(|at| (VIRTIO_BLK_S_IOERR as u8, at)), 1)
                }
            };
            let len = match status {
                Some((s, at)) if mem.write_obj(s, at).is_ok() => len,
                _ => 0,
            };
            used |= q.add_used(mem, head, len).is_ok();
        }
        used
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn features(&self) -> u64 {
        let ro = if self.read_only { 1u64 << VIRTIO_BLK_F_RO } else { 0 };
        (1u64 << VIRTIO_F_VERSION_1)
            | (1u64 << VIRTIO_BLK_F_FLUSH)
            | (1u64 << VIRTIO_BLK_F_SEG_MAX)
            | ro
    }

    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // capacity (le64, in sectors), size_max (le32, unused), seg_max (le32)
        let mut cfg = [0u8; 16];
        cfg[..8].copy_from_slice(&self.capacity_sectors.to_le_bytes());
        cfg[12..16].copy_from_slice(&u32::from(QUEUE_SIZE - 2).to_le_bytes());
        for (i, b) in data.iter_mut().enumerate() {
            *b = cfg.get(offset as usize + i).copied().unwrap_or(0);
        }
    }

    fn activate(&mut self, _acked_features: u64) {}

    fn process(&mut self, mem: &GuestMemoryMmap, queues: &mut [Queue], index: usize) -> bool {
        self.retry_at = None;
        match queues.get_mut(index).filter(|q| index == 0 && q.ready()) {
            Some(q) => self.serve(mem, q),
            None => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        if self.more {
            return Some(Duration::ZERO);
        }
        self.retry_at.map(|t| t.saturating_duration_since(Instant::now()))
    }

    fn reset(&mut self) {
        self.retry_at = None;
        self.more = false;
    }
}
