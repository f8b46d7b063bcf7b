//! A 16550 UART (vm-superio's model) on an interrupt line, writing what the
//! guest transmits to a byte sink. Input is never offered.

use std::io::Write;
use std::sync::Arc;

use super::bus::BusDevice;
use super::Interrupt;

/// vm-superio's trigger over our interrupt line.
pub struct IrqTrigger(pub Arc<dyn Interrupt>);

impl vm_superio::Trigger for IrqTrigger {
    type E = std::convert::Infallible;
    fn trigger(&self) -> Result<(), Self::E> {
        self.0.trigger();
        Ok(())
    }
}

/// The most a line is held before it is written unfinished.
const LINE_MAX: usize = 4096;

/// A console sink that writes whole lines: vm-superio flushes its output
/// after every byte, which through a `LineWriter` still made each console
/// byte (or each line in two pieces) a write(2) of its own. Here a flush is a
/// no-op, each completed line is one write, and what is left of a line is
/// written when the sink is dropped (at the VM's end).
pub struct LineSink<W: Write> {
    out: W,
    line: Vec<u8>,
}

impl<W: Write> LineSink<W> {
    pub fn new(out: W) -> Self {
        LineSink { out, line: Vec::with_capacity(256) }
    }
}

impl<W: Write> Write for LineSink<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        // A line that never ends (a progress bar's \r) still goes out in pieces.
        if buf.contains(&b'\n') || self.line.len() >= LINE_MAX {
            let result = self.out.write_all(&self.line);
            self.line.clear();
            result?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for LineSink<W> {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            let _ = self.out.write_all(&self.line);
        }
    }
}

pub struct Serial<W: Write + Send> {
    uart: vm_superio::Serial<IrqTrigger, vm_superio::serial::NoEvents, W>,
}

impl<W: Write + Send> Serial<W> {
    pub fn new(irq: Arc<dyn Interrupt>, out: W) -> Self {
        Serial { uart: vm_superio::Serial::new(IrqTrigger(irq), out) }
    }
}

impl<W: Write + Send> BusDevice for Serial<W> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let (Some(b), Ok(off)) = (data.first_mut(), u8::try_from(offset)) {
            *b = self.uart.read(off);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Some(&b), Ok(off)) = (data.first(), u8::try_from(offset)) {
            // A failed sink write loses console bytes, never the VM.
            if let Err(e) = self.uart.write(off, b) {
                tracing::debug!("serial write: {e:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CountingIrq, SharedBuf};
    use super::*;

    const THR: u64 = 0;
    const IER: u64 = 1;
    const IIR: u64 = 2;
    const LSR: u64 = 5;

    #[test]
    fn transmitted_bytes_reach_the_sink() {
        let irq = Arc::new(CountingIrq::default());
        let out = SharedBuf::default();
        let mut s = Serial::new(irq.clone(), out.clone());
        for b in b"hello\n" {
            s.write(THR, &[*b]);
        }
        assert_eq!(out.bytes(), b"hello\n");
        assert_eq!(irq.count(), 0, "no interrupt unless enabled");
        let mut lsr = [0u8];
        s.read(LSR, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0, "THR empty");
    }

    /// Counts the writes that reach it.
    #[derive(Clone, Default)]
    struct Writes(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_sink_writes_each_line_once_and_the_rest_when_dropped() {
        let out = Writes::default();
        let mut s = Serial::new(Arc::new(CountingIrq::default()), LineSink::new(out.clone()));
        for b in b"one\ntwo\nthr" {
            s.write(THR, &[*b]);
        }
        let writes = |o: &Writes| o.0.lock().unwrap().clone();
        assert_eq!(writes(&out), [b"one\n".to_vec(), b"two\n".to_vec()]);
        drop(s);
        assert_eq!(writes(&out).last().unwrap(), b"thr");
    }

    #[test]
    fn a_line_that_never_ends_is_written_in_pieces() {
        let out = Writes::default();
        let mut sink = LineSink::new(out.clone());
        for _ in 0..LINE_MAX {
            sink.write_all(b"\r").unwrap();
        }
        assert_eq!(out.0.lock().unwrap().concat().len(), LINE_MAX);
    }

    #[test]
    fn thr_empty_interrupt() {
        let irq = Arc::new(CountingIrq::default());
        let mut s = Serial::new(irq.clone(), SharedBuf::default());
        // Enabling THR-empty interrupts raises one at once: the THR is empty.
        s.write(IER, &[0x02]);
        assert_eq!(irq.count(), 1);
        let mut iir = [0u8];
        s.read(IIR, &mut iir);
        assert_eq!(iir[0] & 0x0f, 0x02, "THR empty is the pending cause");
        // Reading IIR acknowledged it: the next byte raises another.
        s.write(THR, b"x");
        assert_eq!(irq.count(), 2);
    }

    #[test]
    fn out_of_range_offsets_are_harmless() {
        let mut s = Serial::new(Arc::new(CountingIrq::default()), SharedBuf::default());
        let mut b = [0xffu8; 2];
        s.read(0x1_0000, &mut b);
        s.write(0x1_0000, &[1]);
        s.write(THR, &[]);
    }
}
