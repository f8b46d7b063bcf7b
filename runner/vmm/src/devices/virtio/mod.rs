//! Virtio over MMIO: the transport (`mmio`) and its devices, a
//! virtio-console with a named port or two (`console`, `shell_port`) and virtio-blk disks
//! (`block`, throttled by `throttle`).

pub mod block;
pub mod console;
pub mod mmio;
pub mod shell_port;
pub mod throttle;
pub mod worker;

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

/// What a device behind the MMIO transport implements.
pub trait VirtioDevice: Send {
    fn device_type(&self) -> u32;
    /// Offered feature bits.
    fn features(&self) -> u64;
    /// The maximum size of each queue; its length is the number of queues.
    fn queue_max_sizes(&self) -> Vec<u16>;
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// The driver has set DRIVER_OK with these feature bits accepted.
    fn activate(&mut self, acked_features: u64);
    /// The driver notified queue `index`. Returns whether used buffers were
    /// added (and so whether the driver should be interrupted).
    fn process(&mut self, mem: &GuestMemoryMmap, queues: &mut [Queue], index: usize) -> bool;
    /// The driver reset the device (status 0).
    fn reset(&mut self);
    /// Work is left over (a throttled or unfinished queue): process the
    /// queues again after this long.
    fn retry_after(&self) -> Option<std::time::Duration> {
        None
    }
}

#[cfg(test)]
mod block_tests;
#[cfg(test)]
mod driver;
#[cfg(test)]
mod tests;
