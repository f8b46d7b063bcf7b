//! Address-range dispatch for port I/O and MMIO exits.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A device on a bus; `offset` is relative to the start of its range.
pub trait BusDevice: Send {
    fn read(&mut self, offset: u64, data: &mut [u8]);
    fn write(&mut self, offset: u64, data: &[u8]);
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("bus range {base:#x}+{len:#x} overlaps another device or is empty")]
    Overlap { base: u64, len: u64 },
}

type Entry = (u64, Arc<Mutex<dyn BusDevice>>);

#[derive(Default)]
pub struct Bus {
    /// base -> (length, device)
    ranges: BTreeMap<u64, Entry>,
}

impl Bus {
    pub fn new() -> Bus {
        Bus::default()
    }

    pub fn insert(
        &mut self,
        base: u64,
        len: u64,
        dev: Arc<Mutex<dyn BusDevice>>,
    ) -> Result<(), BusError> {
        let end =
            base.checked_add(len).filter(|_| len > 0).ok_or(BusError::Overlap { base, len })?;
        let before = self.ranges.range(..end).next_back();
        if before.is_some_and(|(b, (l, _))| b + l > base) {
            return Err(BusError::Overlap { base, len });
        }
        self.ranges.insert(base, (len, dev));
        Ok(())
    }

    fn find(&self, addr: u64) -> Option<(u64, &Arc<Mutex<dyn BusDevice>>)> {
        let (base, (len, dev)) = self.ranges.range(..=addr).next_back()?;
        (addr - base < *len).then_some((addr - base, dev))
    }

    /// False when nothing is mapped at `addr` (the caller decides what that reads as).
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        let Some((off, dev)) = self.find(addr) else { return false };
        dev.lock().unwrap_or_else(|p| p.into_inner()).read(off, data);
        true
    }

    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        let Some((off, dev)) = self.find(addr) else { return false };
        dev.lock().unwrap_or_else(|p| p.into_inner()).write(off, data);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Vec<(u64, Vec<u8>)>);

    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.0.push((offset, data.to_vec()));
        }
    }

    #[test]
    fn dispatch_by_range() {
        let mut bus = Bus::new();
        let a = Arc::new(Mutex::new(Recorder::default()));
        bus.insert(0x3f8, 8, a.clone()).unwrap();
        bus.insert(0x2f8, 8, Arc::new(Mutex::new(Recorder::default()))).unwrap();
        assert!(bus.write(0x3fb, &[0x80]));
        assert_eq!(a.lock().unwrap().0, [(3, vec![0x80])]);
        let mut b = [0u8; 1];
        assert!(bus.read(0x3fd, &mut b));
        assert_eq!(b, [5]);
        assert!(!bus.read(0x400, &mut b));
        assert!(!bus.write(0x3f7, &[0]));
    }

    #[test]
    fn overlaps_are_refused() {
        let mut bus = Bus::new();
        let d = || Arc::new(Mutex::new(Recorder::default())) as Arc<Mutex<dyn BusDevice>>;
        bus.insert(0x100, 0x10, d()).unwrap();
        assert!(bus.insert(0x108, 0x10, d()).is_err());
        assert!(bus.insert(0xf8, 0x10, d()).is_err());
        assert!(bus.insert(0x110, 0, d()).is_err());
        bus.insert(0x110, 0x10, d()).unwrap();
        bus.insert(0xf0, 0x10, d()).unwrap();
    }
}
