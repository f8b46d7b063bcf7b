//! Device models: pure state machines over two small traits, an interrupt
//! line and a byte sink (`std::io::Write`), testable without KVM.

pub mod bus;
pub mod i8042;
pub mod serial;
pub mod virtio;

use std::sync::atomic::{AtomicU64, Ordering};

/// An edge-triggered interrupt line (in a VM: an eventfd bound with KVM_IRQFD).
pub trait Interrupt: Send + Sync {
    fn trigger(&self);
}

impl Interrupt for vmm_sys_util::eventfd::EventFd {
    fn trigger(&self) {
        if let Err(e) = self.write(1) {
            tracing::warn!("interrupt eventfd write failed: {e}");
        }
    }
}

/// An interrupt line that counts its edges: for tests.
#[derive(Debug, Default)]
pub struct CountingIrq(pub AtomicU64);

impl CountingIrq {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Interrupt for CountingIrq {
    fn trigger(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A `Write` whose bytes stay readable by whoever holds a clone: for tests.
#[derive(Clone, Debug, Default)]
pub struct SharedBuf(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
