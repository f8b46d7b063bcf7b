//! The virtio-console behind the MMIO transport, driven the way Linux's
//! virtio_mmio + virtio_console drivers drive it, over plain guest memory.

use std::sync::Arc;

use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_CONFIG_S_FEATURES_OK,
};
use virtio_bindings::virtio_mmio::VIRTIO_MMIO_INT_VRING;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::console::*;
use super::driver::*;
use super::mmio::*;
use super::shell_port::{ShellInput, ShellPort};
use crate::devices::bus::BusDevice;
use crate::devices::{CountingIrq, SharedBuf};

// Register offsets stay literal here: they check the transport against the
// spec's numbers rather than against the constants it uses itself.

struct Rig {
    mem: GuestMemoryMmap,
    dev: MmioTransport,
    irq: Arc<CountingIrq>,
    out: SharedBuf,
    q: Vec<DriverQueue>,
}

impl Rig {
    fn new() -> Rig {
        Self::with(None)
    }

    /// With port 1, the shell's, when `shell` is given.
    fn with(shell: Option<ShellPort>) -> Rig {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let irq = Arc::new(CountingIrq::default());
        let out = SharedBuf::default();
        let queues = if shell.is_some() { 6 } else { 4 };
        let mut console = Console::new("ktstr", out.clone());
        if let Some(shell) = shell {
            console = console.with_shell(shell);
        }
        let dev = MmioTransport::new(Box::new(console), mem.clone(), irq.clone());
        Rig { mem, dev, irq, out, q: (0..queues).map(DriverQueue::new).collect() }
    }

    /// What virtio_mmio.c does at probe, accepting `features`.
    fn init(&mut self, features: u64) {
        assert_eq!(self.dev.r(0), 0x7472_6976);
        assert_eq!((self.dev.r(4), self.dev.r(8)), (2, 3));
        self.dev.w(0x70, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        self.dev.w(0x14, 1);
        assert_eq!(self.dev.r(0x10), 1, "VERSION_1 offered");
        self.dev.w(0x14, 0);
        assert_ne!(self.dev.r(0x10) & 2, 0, "MULTIPORT offered");
        for sel in 0..2u32 {
            self.dev.w(0x24, sel);
            self.dev.w(0x20, (features >> (32 * sel)) as u32);
        }
        self.dev.w(
            0x70,
            VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
        );
        for i in 0..self.q.len() {
            self.dev.w(0x30, i as u32);
            assert_eq!(self.dev.r(0x34), u32::from(QUEUE_SIZE));
            self.dev.w(0x38, u32::from(QSIZE));
            let (d, a, u) = (self.q[i].desc, self.q[i].avail, self.q[i].used);
            for (off, v) in [(0x80, d), (0x90, a), (0xa0, u)] {
                self.dev.w(off, v as u32);
                self.dev.w(off + 4, (v >> 32) as u32);
            }
            self.dev.w(0x44, 1);
            assert_eq!(self.dev.r(0x44), 1);
        }
        self.dev.w(
            0x70,
            VIRTIO_CONFIG_S_ACKNOWLEDGE
                | VIRTIO_CONFIG_S_DRIVER
                | VIRTIO_CONFIG_S_FEATURES_OK
                | VIRTIO_CONFIG_S_DRIVER_OK,
        );
    }

    fn send(&mut self, q: usize, bufs: &[(u64, u32, bool)]) {
        let mem = self.mem.clone();
        self.q[q].add_chain(&mem, bufs);
        self.dev.w(0x50, q as u32);
    }

    fn control_tx(&mut self, addr: u64, id: u32, event: u16, value: u16) {
        self.mem.write_slice(&control_msg(id, event, value), GuestAddress(addr)).unwrap();
        self.send(CTRL_TX, &[(addr, 8, false)]);
    }

    /// Bytes the device put in control receive buffer `n` (each at 0x80000 + n * 0x1000).
    fn control_rx(&self, n: u16) -> Vec<u8> {
        let (_, len) = self.q[CTRL_RX].used_elem(&self.mem, n);
        let mut b = vec![0u8; len as usize];
        self.mem.read_slice(&mut b, GuestAddress(0x80000 + u64::from(n) * 0x1000)).unwrap();
        b
    }
}

const MULTI: u64 = (1 << 32) | F_MULTIPORT;

#[test]
fn multiport_handshake_names_and_opens_port_0() {
    let mut r = Rig::new();
    r.init(MULTI);
    assert_eq!(r.dev.r(0x100 + 4), 1, "max_nr_ports");
    r.send(CTRL_RX, &[(0x80000, 4096, true)]);
    r.control_tx(0x90000, 0xffff_ffff, DEVICE_READY, 1);
    assert_eq!(r.q[CTRL_RX].used_idx(&r.mem), 1);
    assert_eq!(r.control_rx(0), control_msg(0, DEVICE_ADD, 1));
    assert_eq!(r.q[CTRL_TX].used_idx(&r.mem), 1, "control message consumed");
    assert!(r.irq.count() >= 1);
    assert_eq!(r.dev.r(0x60) & VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_INT_VRING);
    r.dev.w(0x64, VIRTIO_MMIO_INT_VRING);
    assert_eq!(r.dev.r(0x60), 0);

    // PORT_READY before any receive buffer: the answers wait for buffers.
    r.control_tx(0x90000, 0, PORT_READY, 1);
    assert_eq!(r.q[CTRL_RX].used_idx(&r.mem), 1);
    r.send(CTRL_RX, &[(0x81000, 4096, true)]);
    r.send(CTRL_RX, &[(0x82000, 4096, true)]);
    assert_eq!(r.q[CTRL_RX].used_idx(&r.mem), 3);
    let name = r.control_rx(1);
    assert_eq!(&name[..8], control_msg(0, PORT_NAME, 1));
    assert_eq!(&name[8..], b"ktstr");
    assert_eq!(r.control_rx(2), control_msg(0, PORT_OPEN, 1));
}

#[test]
fn port_output_reaches_the_sink_and_buffers_are_returned() {
    let mut r = Rig::new();
    r.init(MULTI);
    r.mem.write_slice(b"hello ", GuestAddress(0xa0000)).unwrap();
    r.mem.write_slice(b"world", GuestAddress(0xa1000)).unwrap();
    let before = r.irq.count();
    r.send(TX0, &[(0xa0000, 6, false), (0xa1000, 5, false)]);
    assert_eq!(r.out.bytes(), b"hello world");
    assert_eq!(r.q[TX0].used_idx(&r.mem), 1);
    assert_eq!(r.q[TX0].used_elem(&r.mem, 0).0, 0, "head descriptor id");
    assert_eq!(r.irq.count(), before + 1);
    // Receive buffers are kept: the host never sends.
    r.send(RX0, &[(0xb0000, 64, true)]);
    assert_eq!(r.q[RX0].used_idx(&r.mem), 0);
}

#[test]
fn without_multiport_port_0_is_a_plain_console() {
    let mut r = Rig::new();
    r.init(1 << 32);
    r.mem.write_slice(b"hvc", GuestAddress(0xa0000)).unwrap();
    r.send(TX0, &[(0xa0000, 3, false)]);
    assert_eq!(r.out.bytes(), b"hvc");
    r.send(CTRL_RX, &[(0x80000, 4096, true)]);
    r.control_tx(0x90000, 0xffff_ffff, DEVICE_READY, 1);
    assert_eq!(r.q[CTRL_RX].used_idx(&r.mem), 0, "no control traffic");
}

#[test]
fn malformed_chains_are_survived() {
    let mut r = Rig::new();
    r.init(MULTI);
    let mem = r.mem.clone();
    // A buffer past the end of guest memory.
    r.send(TX0, &[(0xffff_0000, 64, false)]);
    // A huge length that runs off the end of memory.
    r.send(TX0, &[(0xff000, u32::MAX, false)]);
    // A chain that loops on itself.
    let q = &mut r.q[TX0];
    let head = q.next_desc;
    q.write_desc(&mem, head, 0xa0000, 4, F_NEXT, head);
    q.next_desc += 1;
    q.publish(&mem, head);
    r.dev.w(0x50, TX0 as u32);
    // A head index beyond the queue.
    r.q[TX0].publish(&mem, 200);
    r.dev.w(0x50, TX0 as u32);
    // Notifying a queue that does not exist.
    r.dev.w(0x50, 99);
    // The device still works afterwards.
    mem.write_slice(b"ok", GuestAddress(0xa2000)).unwrap();
    r.q[TX0].next_desc = 10;
    r.send(TX0, &[(0xa2000, 2, false)]);
    assert!(r.out.bytes().ends_with(b"ok"), "{:?}", r.out.bytes());
}

#[test]
fn queues_outside_memory_never_become_ready() {
    let mut r = Rig::new();
    r.dev.w(0x70, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    r.dev.w(0x30, 1);
    r.dev.w(0x38, u32::from(QSIZE));
    r.dev.w(0x80, 0xfff0_0000);
    r.dev.w(0x44, 1);
    assert_eq!(r.dev.r(0x44), 0);
    // Selecting a queue that does not exist reads as size 0.
    r.dev.w(0x30, 7);
    assert_eq!(r.dev.r(0x34), 0);
}

#[test]
fn reset_clears_everything() {
    let mut r = Rig::new();
    r.init(MULTI);
    r.dev.w(0x70, 0);
    assert_eq!(r.dev.status(), 0);
    r.dev.w(0x30, 0);
    assert_eq!(r.dev.r(0x44), 0, "queues are not ready after reset");
    r.mem.write_slice(b"x", GuestAddress(0xa0000)).unwrap();
    r.dev.w(0x50, TX0 as u32);
    assert!(r.out.bytes().is_empty(), "no processing before DRIVER_OK");
}

#[test]
fn odd_register_accesses_are_ignored() {
    let mut r = Rig::new();
    let mut b = [0xffu8; 2];
    r.dev.read(0x00, &mut b);
    assert_eq!(b, [0, 0], "16-bit register reads give 0");
    r.dev.write(0x70, &[1]);
    assert_eq!(r.dev.status(), 0);
    let mut c = [0u8; 1];
    r.dev.read(0x104, &mut c);
    assert_eq!(c, [1], "config space is byte-addressable");
}

#[test]
fn shell_port_is_named_and_carries_keys_once_the_guest_opens_it() {
    let (keys, screen) = (ShellInput::default(), SharedBuf::default());
    let shell = ShellPort {
        name: "ktstr-shell".into(),
        out: Box::new(screen.clone()),
        input: keys.clone(),
        guest_open: false,
    };
    let mut r = Rig::with(Some(shell));
    r.init(MULTI);
    assert_eq!(r.dev.r(0x100 + 4), 2, "max_nr_ports");
    for n in 0..5 {
        r.send(CTRL_RX, &[(0x80000 + n * 0x1000, 4096, true)]);
    }
    r.control_tx(0x90000, 0xffff_ffff, DEVICE_READY, 1);
    assert_eq!(r.control_rx(0), control_msg(0, DEVICE_ADD, 1));
    assert_eq!(r.control_rx(1), control_msg(1, DEVICE_ADD, 1));
    r.control_tx(0x90000, 1, PORT_READY, 1);
    let name = r.control_rx(2);
    assert_eq!((&name[..8], &name[8..]), (&control_msg(1, PORT_NAME, 1)[..], &b"ktstr-shell"[..]));
    assert_eq!(r.control_rx(3), control_msg(1, PORT_OPEN, 1));

    // Keys typed before the guest opened the port wait (Linux would drop them).
    assert!(keys.push(b"cat ops\r"));
    r.send(RX1, &[(0xc0000, 4, true)]);
    assert_eq!(r.q[RX1].used_idx(&r.mem), 0);
    r.control_tx(0x90000, 1, PORT_OPEN, 1);
    r.send(RX1, &[(0xc1000, 64, true)]);
    assert_eq!(r.q[RX1].used_idx(&r.mem), 2, "both buffers filled");
    assert_eq!(r.q[RX1].used_elem(&r.mem, 0).1, 4);
    assert_eq!(r.q[RX1].used_elem(&r.mem, 1).1, 4);
    let mut got = [0u8; 8];
    r.mem.read_slice(&mut got[..4], GuestAddress(0xc0000)).unwrap();
    r.mem.read_slice(&mut got[4..], GuestAddress(0xc1000)).unwrap();
    assert_eq!(&got, b"cat ops\r");

    // The input thread's wake-up delivers keys into a waiting buffer.
    r.send(RX1, &[(0xc2000, 64, true)]);
    assert!(keys.push(&[3]));
    r.dev.process_queue(RX1);
    assert_eq!(r.q[RX1].used_elem(&r.mem, 2).1, 1);

    // What the guest writes on port 1 reaches the shell's sink, not port 0's.
    r.mem.write_slice(b"simple\r\n", GuestAddress(0xa0000)).unwrap();
    r.send(TX1, &[(0xa0000, 8, false)]);
    assert_eq!(screen.bytes(), b"simple\r\n");
    assert!(r.out.bytes().is_empty());
}
