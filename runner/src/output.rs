//! Where a command's JSON and its human text go: `--json -` puts the JSON on
//! stdout and the text on stderr; `--json FILE` writes the file and the
//! text to stdout; no `--json`, the text to stdout.

use std::path::Path;

use anyhow::{Context, Result};

pub fn emit(json_flag: Option<&Path>, json: &str, text: &str) -> Result<()> {
    match json_flag {
        Some(p) if p == Path::new("-") => {
            println!("{json}");
            eprint!("{text}");
        }
        other => {
            if let Some(p) = other {
                std::fs::write(p, json).with_context(|| format!("write {}", p.display()))?;
            }
            print!("{text}");
        }
    }
    Ok(())
}
