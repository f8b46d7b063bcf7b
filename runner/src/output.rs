//! Where a command's JSON and its human text go: `--json -` puts the JSON on
//! stdout and the text on stderr; `--json FILE` writes the file and the
//! text to stdout; no `--json`, the text to stdout.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// The exit code when stdout's reader went away (`ktstr … | head`): what a
/// shell reports for a writer ended by SIGPIPE (128 + 13).
pub const BROKEN_PIPE_EXIT: i32 = 141;

pub fn emit(json_flag: Option<&Path>, json: &str, text: &str) -> Result<()> {
    match json_flag {
        Some(p) if p == Path::new("-") => {
            stdout(&format!("{json}\n"));
            eprint!("{text}");
        }
        other => {
            if let Some(p) = other {
                std::fs::write(p, json).with_context(|| format!("write {}", p.display()))?;
            }
            stdout(text);
        }
    }
    Ok(())
}

/// Writes `text` to stdout; a reader that went away is not the command's
/// failure (a run's verdict and artifacts stand), so the text is dropped.
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// For the `println!`s elsewhere, which panic when stdout's reader is gone:
/// such a panic ends the process quietly with [`BROKEN_PIPE_EXIT`], as a
/// writer into `head` ends; any other panic is reported as before.
pub fn end_quietly_on_broken_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        report(info);
    }));
}
