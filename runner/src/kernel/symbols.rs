//! Kernel code addresses in words (`native_safe_halt+0xae`), from a cache
//! entry's vmlinux. The test kernel is built without CONFIG_RELOCATABLE, so
//! it runs at the addresses its vmlinux names.

use std::path::Path;

use anyhow::{Context, Result};
use object::{Object, ObjectSymbol, SymbolKind};

pub struct Symbols {
    /// Functions by start address: (start, size, name).
    functions: Vec<(u64, u64, String)>,
}

impl Symbols {
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

    /// Any ELF will do to read them: this test's own executable has `main`.
    #[test]
    fn functions_are_read_from_an_elf_file() {
        let s = Symbols::from_vmlinux(&std::env::current_exe().unwrap()).unwrap();
        let main = s.functions.iter().find(|f| f.2 == "main").expect("main is a symbol");
        assert_eq!(s.name(main.0 + 1).as_deref(), Some("main+0x1"));
    }
}
