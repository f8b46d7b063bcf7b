//! The few AML encodings the DSDT needs: a scope of devices with `_HID`,
//! `_UID` and a `_CRS` resource template (ACPI 6.5 chapters 19.2 and 6.4).
//!
//! The FADT is hardware-reduced (no legacy PIC), so Linux maps ISA IRQs only
//! for devices the DSDT describes: COM1, COM2 and the virtio-mmio device are
//! listed here, as QEMU's microvm and Firecracker do.

/// AML PkgLength: the length of what follows plus the encoding's own bytes.
pub fn pkg_length(payload: usize) -> Vec<u8> {
    if payload < 0x3f {
        return vec![(payload + 1) as u8];
    }
    if payload + 2 <= 0xfff {
        let l = payload + 2;
        return vec![0x40 | (l & 0xf) as u8, (l >> 4) as u8];
    }
    let l = payload + 3;
    assert!(l <= 0xf_ffff, "AML package too large");
    vec![0x80 | (l & 0xf) as u8, (l >> 4) as u8, (l >> 12) as u8]
}

pub fn integer(v: u64) -> Vec<u8> {
    match v {
        0 => vec![0x00],
        1 => vec![0x01],
        2..=0xff => vec![0x0a, v as u8],
        0x100..=0xffff => [&[0x0b][..], &(v as u16).to_le_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[0x0c][..], &(v as u32).to_le_bytes()].concat(),
        _ => [&[0x0e][..], &v.to_le_bytes()].concat(),
    }
}

pub fn string(s: &str) -> Vec<u8> {
    [&[0x0d][..], s.as_bytes(), &[0]].concat()
}

/// A compressed EISA id such as "PNP0501", as a DWordConst.
pub fn eisa_id(id: &str) -> Vec<u8> {
    let b = id.as_bytes();
    assert_eq!(b.len(), 7, "EISA id {id}");
    let hex = u32::from_str_radix(&id[3..], 16).expect("EISA id digits");
    let letter = |c: u8| u32::from(c - 0x40) & 0x1f;
    let v = (letter(b[0]) << 26) | (letter(b[1]) << 21) | (letter(b[2]) << 16) | hex;
    [&[0x0c][..], &v.swap_bytes().to_le_bytes()].concat()
}

fn name_seg(name: &str) -> [u8; 4] {
    let mut seg = [b'_'; 4];
    seg[..name.len()].copy_from_slice(name.as_bytes());
    seg
}

/// `Name(name, value)`.
pub fn name(n: &str, value: Vec<u8>) -> Vec<u8> {
    [&[0x08][..], &name_seg(n), &value].concat()
}

/// `Device(name) { body }`.
pub fn device(n: &str, body: &[Vec<u8>]) -> Vec<u8> {
    let inner = [&name_seg(n)[..], &body.concat()].concat();
    [&[0x5b, 0x82][..], &pkg_length(inner.len()), &inner].concat()
}

/// `Scope(\name) { body }`.
pub fn root_scope(n: &str, body: &[Vec<u8>]) -> Vec<u8> {
    let inner = [&[b'\\'][..], &name_seg(n), &body.concat()].concat();
    [&[0x10][..], &pkg_length(inner.len()), &inner].concat()
}

/// `ResourceTemplate() { descriptors }`: a buffer closed by an end tag.
pub fn resource_template(descriptors: &[Vec<u8>]) -> Vec<u8> {
    let data = [&descriptors.concat()[..], &[0x79, 0x00]].concat();
    let inner = [&integer(data.len() as u64)[..], &data].concat();
    [&[0x11][..], &pkg_length(inner.len()), &inner].concat()
}

/// `IO(Decode16, base, base, 1, len)`.
pub fn io(base: u16, len: u8) -> Vec<u8> {
    let b = base.to_le_bytes();
    vec![0x47, 0x01, b[0], b[1], b[0], b[1], 0x01, len]
}

/// `IRQNoFlags() { irq }`: edge, active high, an ISA IRQ.
pub fn irq_no_flags(irq: u8) -> Vec<u8> {
    let m = (1u16 << irq).to_le_bytes();
    vec![0x22, m[0], m[1]]
}

/// `Memory32Fixed(ReadWrite, base, len)`.
pub fn memory32_fixed(base: u32, len: u32) -> Vec<u8> {
    [&[0x86, 0x09, 0x00, 0x01][..], &base.to_le_bytes(), &len.to_le_bytes()].concat()
}

/// `Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi }`.
pub fn interrupt(gsi: u32) -> Vec<u8> {
    [&[0x89, 0x06, 0x00, 0x03, 0x01][..], &gsi.to_le_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkg_lengths() {
        assert_eq!(pkg_length(10), [11]);
        assert_eq!(pkg_length(0x3e), [0x3f]);
        assert_eq!(pkg_length(0x3f), [0x41, 0x04]);
        assert_eq!(pkg_length(0x1000), [0x83, 0x00, 0x01]);
    }

    #[test]
    fn eisa_ids() {
        assert_eq!(eisa_id("PNP0501"), [0x0c, 0x41, 0xd0, 0x05, 0x01]);
        assert_eq!(eisa_id("PNP0A03"), [0x0c, 0x41, 0xd0, 0x0a, 0x03]);
    }

    #[test]
    fn integers() {
        assert_eq!(integer(0), [0]);
        assert_eq!(integer(1), [1]);
        assert_eq!(integer(0x3f8), [0x0b, 0xf8, 0x03]);
        assert_eq!(integer(0xd000_0000), [0x0c, 0, 0, 0, 0xd0]);
    }

    #[test]
    fn serial_device_matches_iasl() {
        // iasl output for:
        //   Device (COM1) { Name (_HID, EisaId ("PNP0501")) Name (_UID, One)
        //     Name (_CRS, ResourceTemplate () {
        //       IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08) IRQNoFlags () {4} }) }
        let d = device(
            "COM1",
            &[
                name("_HID", eisa_id("PNP0501")),
                name("_UID", integer(1)),
                name("_CRS", resource_template(&[io(0x3f8, 8), irq_no_flags(4)])),
            ],
        );
        let want: &[u8] = &[
            0x5b, 0x82, 0x2b, b'C', b'O', b'M', b'1', 0x08, b'_', b'H', b'I', b'D', 0x0c, 0x41,
            0xd0, 0x05, 0x01, 0x08, b'_', b'U', b'I', b'D', 0x01, 0x08, b'_', b'C', b'R', b'S',
            0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22, 0x10,
            0x00, 0x79, 0x00,
        ];
        assert_eq!(d, want);
    }

    #[test]
    fn scope_wraps_devices() {
        let s = root_scope("_SB", &[vec![1, 2, 3]]);
        assert_eq!(s, [0x10, 9, b'\\', b'_', b'S', b'B', b'_', 1, 2, 3]);
    }
}
