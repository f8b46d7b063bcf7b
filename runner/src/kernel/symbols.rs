//! Kernel code addresses in words (`native_safe_halt+0xae`), from a cache
//! entry's vmlinux. The test kernel is built without CONFIG_RELOCATABLE, so
//! it runs at the addresses its vmlinux names. The functions are kept in
//! the entry as `symbols.map` (2 MB, where the vmlinux is 160 MB), which is
//! what a nested L1 gets to name its L2 guests' addresses with.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSymbol, SymbolKind};

use super::KernelEntry;

/// `symbols.map` in a kernel's entry: a line per function, `start size name`
/// (hexadecimal addresses), sorted.
pub const MAP: &str = "symbols.map";

pub struct Symbols {
    /// Functions by start address: (start, size, name).
    functions: Vec<(u64, u64, String)>,
}

impl Symbols {
    /// The functions of `kernel`: its `symbols.map`, made from its vmlinux
    /// the first time (see [`ensure_map`]).
    pub fn for_kernel(kernel: &KernelEntry) -> Result<Symbols> {
        let map = ensure_map(kernel)?;
        let text =
            std::fs::read_to_string(&map).with_context(|| format!("read {}", map.display()))?;
        Symbols::parse_map(&text).with_context(|| format!("parse {}", map.display()))
    }

    pub fn from_vmlinux(path: &Path) -> Result<Symbols> {
        let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        let elf =
            object::File::parse(&*data).with_context(|| format!("parse {}", path.display()))?;
        let functions = elf
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
            .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
            .collect();
        Ok(Symbols::from_list(functions))
    }

    pub fn from_list(mut functions: Vec<(u64, u64, String)>) -> Symbols {
        functions.sort();
        Symbols { functions }
    }

    fn to_map(&self) -> String {
        let lines =
            self.functions.iter().map(|(start, size, name)| format!("{start:x} {size:x} {name}\n"));
        lines.collect()
    }

    fn parse_map(text: &str) -> Result<Symbols> {
        let mut functions = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let mut f = line.splitn(3, ' ');
            let (Some(start), Some(size), Some(name)) = (f.next(), f.next(), f.next()) else {
                bail!("line {}: not `start size name`: {line}", n + 1);
            };
            let hex = |v: &str| {
                u64::from_str_radix(v, 16).with_context(|| format!("line {}: {v}", n + 1))
            };
            functions.push((hex(start)?, hex(size)?, name.to_string()));
        }
        Ok(Symbols::from_list(functions))
    }

    /// `name+0xoff` for an address inside a function; None outside them
    /// (data, stacks, userspace), so stack words can be told from code.
    pub fn name(&self, addr: u64) -> Option<String> {
        let i = self.functions.partition_point(|(start, _, _)| *start <= addr).checked_sub(1)?;
        let (start, size, name) = &self.functions[i];
        // Sizeless symbols (assembly labels) reach as far as the next one.
        let end = match size {
            0 => self.functions.get(i + 1).map_or(start + 1, |next| next.0),
            size => start + size,
        };
        (addr < end).then(|| format!("{name}+{:#x}", addr - start))
    }
}

/// The kernel's `symbols.map`, written beside its vmlinux the first time it
/// is asked for (under a temporary name, then renamed: a reader never sees
/// half of it).
pub fn ensure_map(kernel: &KernelEntry) -> Result<PathBuf> {
    let map = kernel.dir.join(MAP);
    if map.is_file() {
        return Ok(map);
    }
    let Some(vmlinux) = &kernel.vmlinux else {
        bail!("the kernel has neither {MAP} nor a vmlinux to name addresses with");
    };
    let symbols = Symbols::from_vmlinux(vmlinux)?;
    super::write_atomic(&map, symbols.to_map().as_bytes())?;
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::Symbols;

    #[test]
    fn addresses_inside_functions_are_named_and_others_are_not() {
        let s = Symbols::from_list(vec![
            (0x2000, 0, "entry_label".into()),
            (0x1000, 0x10, "f".into()),
            (0x3000, 0x20, "g".into()),
        ]);
        assert_eq!(s.name(0x1000).as_deref(), Some("f+0x0"));
        assert_eq!(s.name(0x100f).as_deref(), Some("f+0xf"));
        assert_eq!(s.name(0x1010), None);
        assert_eq!(s.name(0x2abc).as_deref(), Some("entry_label+0xabc"));
        assert_eq!(s.name(0x3020), None);
        assert_eq!(s.name(0x10), None);
    }

    #[test]
    fn the_map_reads_back_as_it_was_written() {
        let s = Symbols::from_list(vec![(0x1000, 0x10, "f".into()), (0x2000, 0, "a label".into())]);
        let text = s.to_map();
        assert_eq!(text, "1000 10 f\n2000 0 a label\n");
        let back = Symbols::parse_map(&text).unwrap();
        assert_eq!(back.name(0x1001).as_deref(), Some("f+0x1"));
        assert_eq!(back.name(0x2000).as_deref(), Some("a label+0x0"));
        let err = Symbols::parse_map("1000 f\n").err().expect("a short line is refused");
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    /// Any ELF will do to read them: this test's own executable has `main`.
    #[test]
    fn functions_are_read_from_an_elf_file() {
        let s = Symbols::from_vmlinux(&std::env::current_exe().unwrap()).unwrap();
        let main = s.functions.iter().find(|f| f.2 == "main").expect("main is a symbol");
        assert_eq!(s.name(main.0 + 1).as_deref(), Some("main+0x1"));
    }
}
