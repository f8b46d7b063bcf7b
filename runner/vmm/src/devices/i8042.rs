//! The i8042 keyboard controller, only so far as Linux's `reboot=k` uses it:
//! writing 0xFE (pulse reset) to the command port resets the machine, which
//! for us is the guest's way to end the VM.

use std::sync::Arc;

use super::bus::BusDevice;
use super::serial::IrqTrigger;
use super::Interrupt;

/// Mapped at port 0x60; the command/status port 0x64 is offset 4.
pub struct I8042 {
    dev: vm_superio::I8042Device<IrqTrigger>,
}

impl I8042 {
    /// `reset` fires when the guest asks for a CPU reset.
    pub fn new(reset: Arc<dyn Interrupt>) -> I8042 {
        I8042 { dev: vm_superio::I8042Device::new(IrqTrigger(reset)) }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let (Some(b), Ok(off)) = (data.first_mut(), u8::try_from(offset)) {
            *b = self.dev.read(off);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Some(&b), Ok(off)) = (data.first(), u8::try_from(offset)) {
            let _ = self.dev.write(off, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::CountingIrq;
    use super::*;

    #[test]
    fn fe_on_the_command_port_resets() {
        let reset = Arc::new(CountingIrq::default());
        let mut k = I8042::new(reset.clone());
        let mut status = [0xffu8];
        k.read(4, &mut status);
        assert_eq!(status[0] & 0x02, 0, "input buffer empty: kb_wait() passes");
        k.write(4, &[0xfe]);
        assert_eq!(reset.count(), 1);
    }

    #[test]
    fn other_writes_do_not_reset() {
        let reset = Arc::new(CountingIrq::default());
        let mut k = I8042::new(reset.clone());
        k.write(0, &[0xfe]); // data port
        k.write(4, &[0x20]); // read command byte
        k.write(4, &[]);
        assert_eq!(reset.count(), 0);
    }
}
