//! The virtio-console's second port, `ktstr-shell` (`ktstr shell`): what the
//! guest writes on it goes to `out`; what the host sends is queued in
//! `input` (by the thread that reads the host's socket) and written into the
//! guest's receive buffers once the guest opened the port. Linux drops what
//! arrives on a port no process has open, as QEMU knows and holds it back.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestMemoryMmap};

/// Input kept for a guest that does not read: beyond it, keys are dropped.
const MAX_PENDING: usize = 1 << 20;

/// Bytes from the host, waiting for the guest.
#[derive(Clone, Default)]
pub struct ShellInput(Arc<Mutex<VecDeque<u8>>>);

impl ShellInput {
    /// Queues `bytes`; false when the guest is so far behind that they were dropped.
    pub fn push(&self, bytes: &[u8]) -> bool {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() + bytes.len() > MAX_PENDING {
            return false;
        }
        q.extend(bytes);
        true
    }
}

pub struct ShellPort {
    pub name: String,
    pub out: Box<dyn Write + Send>,
    pub input: ShellInput,
    /// The guest has the port open (its PORT_OPEN control message).
    pub guest_open: bool,
}

impl ShellPort {
    /// Moves queued input into the receive queue's buffers; true when any
    /// buffer was used.
    pub fn deliver(&mut self, mem: &GuestMemoryMmap, rx: &mut Queue) -> bool {
        if !self.guest_open {
            return false;
        }
        let mut pending = self.input.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut used = false;
        while !pending.is_empty() {
            let Some(chain) = rx.pop_descriptor_chain(mem) else { break };
            let head = chain.head_index();
            let mut written = 0u32;
            for desc in chain.filter(|d| d.is_write_only()) {
                let n = (desc.len() as usize).min(pending.len());
                let bytes: Vec<u8> = pending.iter().take(n).copied().collect();
                if mem.write_slice(&bytes, desc.addr()).is_err() {
                    break;
                }
                pending.drain(..n);
                written += n as u32;
                if pending.is_empty() {
                    break;
                }
            }
            used |= rx.add_used(mem, head, written).is_ok();
        }
        used
    }

    pub fn write(&mut self, bytes: &[u8]) {
        if let Err(e) = self.out.write_all(bytes).and_then(|()| self.out.flush()) {
            tracing::debug!("virtio-console shell port: {e}");
        }
    }
}
