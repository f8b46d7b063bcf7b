//! The virtio-mmio transport, version 2 (virtio 1.x, "modern"), as a bus
//! device: registers, queue setup, notifications and the interrupt status.

use std::sync::Arc;

use virtio_bindings::virtio_config::VIRTIO_CONFIG_S_DRIVER_OK;
use virtio_bindings::virtio_mmio::{
    VIRTIO_MMIO_CONFIG, VIRTIO_MMIO_CONFIG_GENERATION, VIRTIO_MMIO_DEVICE_FEATURES,
    VIRTIO_MMIO_DEVICE_FEATURES_SEL, VIRTIO_MMIO_DEVICE_ID, VIRTIO_MMIO_DRIVER_FEATURES,
    VIRTIO_MMIO_DRIVER_FEATURES_SEL, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INTERRUPT_STATUS,
    VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_MAGIC_VALUE, VIRTIO_MMIO_QUEUE_AVAIL_HIGH,
    VIRTIO_MMIO_QUEUE_AVAIL_LOW, VIRTIO_MMIO_QUEUE_DESC_HIGH, VIRTIO_MMIO_QUEUE_DESC_LOW,
    VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_MMIO_QUEUE_NUM, VIRTIO_MMIO_QUEUE_NUM_MAX,
    VIRTIO_MMIO_QUEUE_READY, VIRTIO_MMIO_QUEUE_SEL, VIRTIO_MMIO_QUEUE_USED_HIGH,
    VIRTIO_MMIO_QUEUE_USED_LOW, VIRTIO_MMIO_STATUS, VIRTIO_MMIO_VENDOR_ID, VIRTIO_MMIO_VERSION,
};
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;

use super::VirtioDevice;
use crate::devices::bus::BusDevice;
use crate::devices::Interrupt;

// Hand-written: virtio-bindings names the registers but has none of these values.
const MAGIC: u32 = 0x7472_6976; // "virt"
const VERSION: u32 = 2; // virtio-mmio version 2 (virtio 1.x); 1 is the legacy layout
const VENDOR_ID: u32 = 0x4b54_5354; // "KTST"

/// Where the device's config space starts in the register window.
const CONFIG: u64 = VIRTIO_MMIO_CONFIG as u64;

pub struct MmioTransport {
    dev: Box<dyn VirtioDevice>,
    mem: GuestMemoryMmap,
    irq: Arc<dyn Interrupt>,
    queues: Vec<Queue>,
    queue_sel: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    status: u32,
    interrupt_status: u32,
    config_generation: u32,
}

impl MmioTransport {
    pub fn new(
        dev: Box<dyn VirtioDevice>,
        mem: GuestMemoryMmap,
        irq: Arc<dyn Interrupt>,
    ) -> MmioTransport {
        let queues = Self::fresh_queues(dev.as_ref());
        MmioTransport {
            dev,
            mem,
            irq,
            queues,
            queue_sel: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            status: 0,
            interrupt_status: 0,
            config_generation: 0,
        }
    }

    fn fresh_queues(dev: &dyn VirtioDevice) -> Vec<Queue> {
        // Sizes are powers of two up to 32768: Queue::new cannot fail for them.
        dev.queue_max_sizes().iter().map(|&n| Queue::new(n).expect("valid queue size")).collect()
    }

    pub fn status(&self) -> u32 {
        self.status
    }

    fn selected(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    /// The selected queue, if its layout may still change (it is not ready).
    fn setup_queue(&mut self) -> Option<&mut Queue> {
        self.selected().filter(|q| !q.ready())
    }

    fn reset(&mut self) {
        self.dev.reset();
        self.queues = Self::fresh_queues(self.dev.as_ref());
        self.queue_sel = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.status = 0;
        self.interrupt_status = 0;
    }

    fn set_status(&mut self, v: u32) {
        if v == 0 {
            self.reset();
            return;
        }
        let was = self.status;
        self.status = v;
        if v & VIRTIO_CONFIG_S_DRIVER_OK != 0 && was & VIRTIO_CONFIG_S_DRIVER_OK == 0 {
            self.dev.activate(self.driver_features);
            // Work the driver queued before DRIVER_OK (control messages).
            for i in 0..self.queues.len() {
                self.notify(i);
            }
        }
    }

    /// Serves queue `index` as a notification would: for a device whose
    /// notifications arrive on an ioeventfd, handled off the vCPU thread.
    pub fn process_queue(&mut self, index: usize) {
        self.notify(index);
    }

    /// See [`VirtioDevice::retry_after`].
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.dev.retry_after()
    }

    fn notify(&mut self, index: usize) {
        if self.status & VIRTIO_CONFIG_S_DRIVER_OK == 0 {
            return;
        }
        if self.dev.process(&self.mem, &mut self.queues, index) {
            self.interrupt_status |= VIRTIO_MMIO_INT_VRING;
            self.irq.trigger();
        }
    }

    fn read_reg(&mut self, offset: u32) -> u32 {
        let features = self.dev.features();
        match offset {
            VIRTIO_MMIO_MAGIC_VALUE => MAGIC,
            VIRTIO_MMIO_VERSION => VERSION,
            VIRTIO_MMIO_DEVICE_ID => self.dev.device_type(),
            VIRTIO_MMIO_VENDOR_ID => VENDOR_ID,
            VIRTIO_MMIO_DEVICE_FEATURES => match self.device_features_sel {
                0 => features as u32,
                1 => (features >> 32) as u32,
                _ => 0,
            },
            VIRTIO_MMIO_QUEUE_NUM_MAX => self.selected().map_or(0, |q| q.max_size().into()),
            VIRTIO_MMIO_QUEUE_READY => self.selected().map_or(0, |q| q.ready().into()),
            VIRTIO_MMIO_INTERRUPT_STATUS => self.interrupt_status,
            VIRTIO_MMIO_STATUS => self.status,
            VIRTIO_MMIO_CONFIG_GENERATION => self.config_generation,
            _ => 0,
        }
    }

    fn write_reg(&mut self, offset: u32, v: u32) {
        let lo = |q: &mut Queue, f: fn(&mut Queue, Option<u32>, Option<u32>)| f(q, Some(v), None);
        let hi = |q: &mut Queue, f: fn(&mut Queue, Option<u32>, Option<u32>)| f(q, None, Some(v));
        match offset {
            VIRTIO_MMIO_DEVICE_FEATURES_SEL => self.device_features_sel = v,
            VIRTIO_MMIO_DRIVER_FEATURES => {
                let shift = match self.driver_features_sel {
                    0 => 0,
                    1 => 32,
                    _ => return,
                };
                let offered = self.dev.features();
                self.driver_features &= !(0xffff_ffffu64 << shift);
                self.driver_features |= (u64::from(v) << shift) & offered;
            }
            VIRTIO_MMIO_DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            VIRTIO_MMIO_QUEUE_SEL => self.queue_sel = v,
            VIRTIO_MMIO_QUEUE_NUM => {
                if let Some(q) = self.setup_queue() {
                    q.set_size(v as u16);
                }
            }
            VIRTIO_MMIO_QUEUE_READY => {
                let mem = self.mem.clone();
                if let Some(q) = self.selected() {
                    // A queue whose rings lie outside RAM is never made ready.
                    q.set_ready(v == 1);
                    if q.ready() && !q.is_valid(&mem) {
                        q.set_ready(false);
                    }
                }
            }
            VIRTIO_MMIO_QUEUE_NOTIFY => self.notify(v as usize),
            VIRTIO_MMIO_INTERRUPT_ACK => self.interrupt_status &= !v,
            VIRTIO_MMIO_STATUS => self.set_status(v),
            VIRTIO_MMIO_QUEUE_DESC_LOW => {
                self.setup_queue().into_iter().for_each(|q| lo(q, Queue::set_desc_table_address))
            }
            VIRTIO_MMIO_QUEUE_DESC_HIGH => {
                self.setup_queue().into_iter().for_each(|q| hi(q, Queue::set_desc_table_address))
            }
            VIRTIO_MMIO_QUEUE_AVAIL_LOW => {
                self.setup_queue().into_iter().for_each(|q| lo(q, Queue::set_avail_ring_address))
            }
            VIRTIO_MMIO_QUEUE_AVAIL_HIGH => {
                self.setup_queue().into_iter().for_each(|q| hi(q, Queue::set_avail_ring_address))
            }
            VIRTIO_MMIO_QUEUE_USED_LOW => {
                self.setup_queue().into_iter().for_each(|q| lo(q, Queue::set_used_ring_address))
            }
            VIRTIO_MMIO_QUEUE_USED_HIGH => {
                self.setup_queue().into_iter().for_each(|q| hi(q, Queue::set_used_ring_address))
            }
            _ => {}
        }
    }
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if offset >= CONFIG {
            self.dev.read_config(offset - CONFIG, data);
        } else if data.len() == 4 && offset % 4 == 0 {
            // offset < CONFIG (0x100): the cast is lossless.
            data.copy_from_slice(&self.read_reg(offset as u32).to_le_bytes());
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        // Registers are 32-bit; config space is read-only for this device.
        if offset < CONFIG && data.len() == 4 && offset % 4 == 0 {
            let v = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            // offset < CONFIG (0x100): the cast is lossless.
            self.write_reg(offset as u32, v);
        }
    }
}
