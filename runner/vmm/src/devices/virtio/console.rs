//! virtio-console with VIRTIO_CONSOLE_F_MULTIPORT and one port, port 0, named
//! like QEMU's `virtserialport,name=…`: the guest finds it under
//! /sys/class/virtio-ports with that name (device /dev/vport0p0). An
//! interactive shell adds port 1, both ways (`shell_port`).
//!
//! Queues: 0/1 = port 0 receive/transmit, 2/3 = control receive/transmit,
//! 4/5 = port 1 receive/transmit.
//! Control protocol (virtio spec 5.3.6.2, Linux virtio_console.c): the driver
//! sends DEVICE_READY, we answer DEVICE_ADD(0); it sends PORT_READY(0), we
//! answer PORT_NAME(0, name) and PORT_OPEN(0, 1) (the host side is connected,
//! without which the guest's writes would block). What the guest transmits on
//! port 0 goes to the sink. Without MULTIPORT port 0 is a plain console
//! (hvc0) and its output still goes to the sink.

use std::collections::VecDeque;
use std::io::Write;

use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ids::VIRTIO_ID_CONSOLE;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestMemoryMmap};

use super::shell_port::ShellPort;
use super::VirtioDevice;

// Hand-written from linux/virtio_console.h: virtio-bindings has no virtio_console.
/// VIRTIO_CONSOLE_F_MULTIPORT, as a feature mask.
pub const F_MULTIPORT: u64 = 1 << 1;
pub const QUEUE_SIZE: u16 = 256;

pub const RX0: usize = 0;
pub const TX0: usize = 1;
pub const CTRL_RX: usize = 2;
pub const CTRL_TX: usize = 3;
pub const RX1: usize = 4;
pub const TX1: usize = 5;

// Control events (VIRTIO_CONSOLE_*), hand-written for the same reason.
pub const DEVICE_READY: u16 = 0;
pub const DEVICE_ADD: u16 = 1;
pub const PORT_READY: u16 = 3;
pub const CONSOLE_PORT: u16 = 4;
pub const PORT_OPEN: u16 = 6;
pub const PORT_NAME: u16 = 7;

/// Bytes one transmit chain may carry: bounds what a bad chain costs us.
const MAX_CHAIN_BYTES: u64 = 1 << 20;

/// `struct virtio_console_control`: id (le32), event (le16), value (le16).
pub fn control_msg(id: u32, event: u16, value: u16) -> [u8; 8] {
    let mut m = [0u8; 8];
    m[..4].copy_from_slice(&id.to_le_bytes());
    m[4..6].copy_from_slice(&event.to_le_bytes());
    m[6..].copy_from_slice(&value.to_le_bytes());
    m
}

pub struct Console<W: Write + Send> {
    port_name: String,
    sink: W,
    multiport: bool,
    /// Control messages waiting for a receive buffer from the driver.
    pending: VecDeque<Vec<u8>>,
    /// Bytes written to the sink, for diagnostics.
    pub tx_bytes: u64,
    shell: Option<ShellPort>,
}

impl<W: Write + Send> Console<W> {
    pub fn new(port_name: &str, sink: W) -> Self {
        Console {
            port_name: port_name.into(),
            sink,
            multiport: false,
            pending: VecDeque::new(),
            tx_bytes: 0,
            shell: None,
        }
    }

    /// Adds port 1, the interactive shell's.
    pub fn with_shell(mut self, port: ShellPort) -> Self {
        self.shell = Some(port);
        self
    }

    fn ports(&self) -> u16 {
        1 + u16::from(self.shell.is_some())
    }

    /// Writes each readable chain's bytes to the sink and returns its buffers.
    fn drain_tx(
        &mut self,
        mem: &GuestMemoryMmap,
        q: &mut Queue,
        mut on_bytes: impl FnMut(&mut Self, &[u8]),
    ) -> bool {
        let mut used = false;
        while let Some(chain) = q.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            let mut total = 0u64;
            for desc in chain {
                if desc.is_write_only() {
                    continue; // a transmit chain carries only readable buffers
                }
                let len = u64::from(desc.len()).min(MAX_CHAIN_BYTES.saturating_sub(total));
                let mut buf = vec![0u8; len as usize];
                if mem.read_slice(&mut buf, desc.addr()).is_err() {
                    tracing::debug!("virtio-console: descriptor outside guest memory");
                    break;
                }
                total += len;
                on_bytes(self, &buf);
            }
            // A failed add_used means a broken used ring: nothing more to do for it.
            used |= q.add_used(mem, head, 0).is_ok();
        }
        used
    }

    fn control(&mut self, msg: &[u8]) {
        if msg.len() < 8 {
            return;
        }
        let id = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]);
        let event = u16::from_le_bytes([msg[4], msg[5]]);
        let value = u16::from_le_bytes([msg[6], msg[7]]);
        match event {
            DEVICE_READY if value == 1 => {
                for port in 0..u32::from(self.ports()) {
                    self.pending.push_back(control_msg(port, DEVICE_ADD, 1).to_vec());
                }
            }
            PORT_READY if id < u32::from(self.ports()) && value == 1 => {
                let port_name = match &self.shell {
                    Some(shell) if id == 1 => shell.name.as_bytes(),
                    _ => self.port_name.as_bytes(),
                };
                let mut name = control_msg(id, PORT_NAME, 1).to_vec();
                name.extend_from_slice(port_name);
                self.pending.push_back(name);
                self.pending.push_back(control_msg(id, PORT_OPEN, 1).to_vec());
            }
            // The guest opened or closed the shell's port: input may flow.
            PORT_OPEN if id == 1 => {
                if let Some(shell) = self.shell.as_mut() {
                    shell.guest_open = value == 1;
                }
            }
            // PORT_OPEN on port 0 and the rest: nothing to do.
            _ => {}
        }
    }

    /// Moves pending control messages into the driver's control receive buffers.
    fn flush_control(&mut self, mem: &GuestMemoryMmap, q: &mut Queue) -> bool {
        let mut used = false;
        while let Some(msg) = self.pending.front() {
            let Some(chain) = q.pop_descriptor_chain(mem) else { break };
            let head = chain.head_index();
            let mut written = 0u32;
            if let Some(desc) = chain.into_iter().find(|d| d.is_write_only()) {
                if desc.len() as usize >= msg.len() && mem.write_slice(msg, desc.addr()).is_ok() {
                    written = msg.len() as u32;
                }
            }
            if written > 0 {
                self.pending.pop_front();
            }
            // A buffer too small or unusable is returned empty; the driver drops it.
            used |= q.add_used(mem, head, written).is_ok();
        }
        used
    }

    fn interrupt_needed(mem: &GuestMemoryMmap, q: &mut Queue) -> bool {
        q.needs_notification(mem).unwrap_or(true)
    }
}

impl<W: Write + Send> VirtioDevice for Console<W> {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_CONSOLE
    }

    fn features(&self) -> u64 {
        (1u64 << VIRTIO_F_VERSION_1) | F_MULTIPORT
    }

    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE; 2 + 2 * usize::from(self.ports())]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // cols (le16), rows (le16), max_nr_ports (le32), emerg_wr (le32)
        let mut cfg = [0u8; 12];
        cfg[4..8].copy_from_slice(&u32::from(self.ports()).to_le_bytes());
        for (i, b) in data.iter_mut().enumerate() {
            *b = cfg.get(offset as usize + i).copied().unwrap_or(0);
        }
    }

    fn activate(&mut self, acked_features: u64) {
        self.multiport = acked_features & F_MULTIPORT != 0;
    }

    fn process(&mut self, mem: &GuestMemoryMmap, queues: &mut [Queue], index: usize) -> bool {
        let mut notify = false;
        match index {
            TX0 => {
                if let Some(q) = queues.get_mut(TX0).filter(|q| q.ready()) {
                    let used = self.drain_tx(mem, q, |s, bytes| {
                        s.tx_bytes += bytes.len() as u64;
                        if let Err(e) = s.sink.write_all(bytes) {
                            tracing::warn!("virtio-console sink: {e}");
                        }
                    });
                    notify |= used && Self::interrupt_needed(mem, q);
                }
            }
            CTRL_TX if self.multiport => {
                if let Some(q) = queues.get_mut(CTRL_TX).filter(|q| q.ready()) {
                    let mut msgs = Vec::new();
                    let used = self.drain_tx(mem, q, |_, bytes| msgs.push(bytes.to_vec()));
                    // Each control message is one buffer.
                    for m in msgs {
                        self.control(&m);
                    }
                    notify |= used && Self::interrupt_needed(mem, q);
                }
            }
            TX1 => {
                if let Some(q) = queues.get_mut(TX1).filter(|q| q.ready()) {
                    let used = self.drain_tx(mem, q, |s, bytes| {
                        if let Some(shell) = s.shell.as_mut() {
                            shell.write(bytes);
                        }
                    });
                    notify |= used && Self::interrupt_needed(mem, q);
                }
            }
            // RX0: we never send data to the guest, the buffers stay queued.
            _ => {}
        }
        // Any notification (new receive buffers, the port opened, the input
        // thread's) may let queued keys through.
        if let (Some(shell), Some(q)) =
            (self.shell.as_mut(), queues.get_mut(RX1).filter(|q| q.ready()))
        {
            notify |= shell.deliver(mem, q) && Self::interrupt_needed(mem, q);
        }
        if self.multiport {
            if let Some(q) = queues.get_mut(CTRL_RX).filter(|q| q.ready()) {
                let used = self.flush_control(mem, q);
                notify |= used && Self::interrupt_needed(mem, q);
            }
        }
        let _ = self.sink.flush();
        notify
    }

    fn reset(&mut self) {
        self.multiport = false;
        self.pending.clear();
        if let Some(shell) = self.shell.as_mut() {
            shell.guest_open = false;
        }
    }
}
