//! The virtio-mmio transport, version 2 (virtio 1.x, "modern"), as a bus
//! device: registers, queue setup, notifications and the interrupt status.

use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;

use super::VirtioDevice;
use crate::devices::bus::BusDevice;
use crate::devices::Interrupt;

const MAGIC: u32 = 0x7472_6976; // "virt"
const VERSION: u32 = 2;
const VENDOR_ID: u32 = 0x4b54_5354; // "KTST"

pub const STATUS_ACKNOWLEDGE: u32 = 1;
pub const STATUS_DRIVER: u32 = 2;
pub const STATUS_DRIVER_OK: u32 = 4;
pub const STATUS_FEATURES_OK: u32 = 8;
pub const STATUS_FAILED: u32 = 0x80;

/// InterruptStatus bit: a queue has new used buffers.
pub const INT_VRING: u32 = 1;

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
        if v & STATUS_DRIVER_OK != 0 && was & STATUS_DRIVER_OK == 0 {
            self.dev.activate(self.driver_features);
            // Work the driver queued before DRIVER_OK (control messages).
            for i in 0..self.queues.len() {
                self.notify(i);
            }
        }
    }

    fn notify(&mut self, index: usize) {
        if self.status & STATUS_DRIVER_OK == 0 {
            return;
        }
        if self.dev.process(&self.mem, &mut self.queues, index) {
            self.interrupt_status |= INT_VRING;
            self.irq.trigger();
        }
    }

    fn read_reg(&mut self, offset: u64) -> u32 {
        let features = self.dev.features();
        match offset {
            0x00 => MAGIC,
            0x04 => VERSION,
            0x08 => self.dev.device_type(),
            0x0c => VENDOR_ID,
            0x10 => match self.device_features_sel {
                0 => features as u32,
                1 => (features >> 32) as u32,
                _ => 0,
            },
            0x34 => self.selected().map_or(0, |q| q.max_size().into()),
            0x44 => self.selected().map_or(0, |q| q.ready().into()),
            0x60 => self.interrupt_status,
            0x70 => self.status,
            0xfc => self.config_generation,
            _ => 0,
        }
    }

    fn write_reg(&mut self, offset: u64, v: u32) {
        let lo = |q: &mut Queue, f: fn(&mut Queue, Option<u32>, Option<u32>)| f(q, Some(v), None);
        let hi = |q: &mut Queue, f: fn(&mut Queue, Option<u32>, Option<u32>)| f(q, None, Some(v));
        match offset {
            0x14 => self.device_features_sel = v,
            0x20 => {
                let shift = match self.driver_features_sel {
                    0 => 0,
                    1 => 32,
                    _ => return,
                };
                let offered = self.dev.features();
                self.driver_features &= !(0xffff_ffffu64 << shift);
                self.driver_features |= (u64::from(v) << shift) & offered;
            }
            0x24 => self.driver_features_sel = v,
            0x30 => self.queue_sel = v,
            0x38 => {
                if let Some(q) = self.setup_queue() {
                    q.set_size(v as u16);
                }
            }
            0x44 => {
                let mem = self.mem.clone();
                if let Some(q) = self.selected() {
                    // A queue whose rings lie outside RAM is never made ready.
                    q.set_ready(v == 1);
                    if q.ready() && !q.is_valid(&mem) {
                        q.set_ready(false);
                    }
                }
            }
            0x50 => self.notify(v as usize),
            0x64 => self.interrupt_status &= !v,
            0x70 => self.set_status(v),
            0x80 => {
                self.setup_queue().into_iter().for_each(|q| lo(q, Queue::set_desc_table_address))
            }
            0x84 => {
                self.setup_queue().into_iter().for_each(|q| hi(q, Queue::set_desc_table_address))
            }
            0x90 => {
                self.setup_queue().into_iter().for_each(|q| lo(q, Queue::set_avail_ring_address))
            }
            0x94 => {
                self.setup_queue().into_iter().for_each(|q| hi(q, Queue::set_avail_ring_address))
            }
            0xa0 => {
                self.setup_queue().into_iter().for_each(|q| lo(q, Queue::set_used_ring_address))
            }
            0xa4 => {
                self.setup_queue().into_iter().for_each(|q| hi(q, Queue::set_used_ring_address))
            }
            _ => {}
        }
    }
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if offset >= 0x100 {
            self.dev.read_config(offset - 0x100, data);
        } else if data.len() == 4 && offset % 4 == 0 {
            data.copy_from_slice(&self.read_reg(offset).to_le_bytes());
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        // Registers are 32-bit; config space is read-only for this device.
        if offset < 0x100 && data.len() == 4 && offset % 4 == 0 {
            self.write_reg(offset, u32::from_le_bytes([data[0], data[1], data[2], data[3]]));
        }
    }
}
