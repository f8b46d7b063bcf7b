//! The in-tree sched_ext example schedulers (`tools/sched_ext`), built
//! against the new kernel's BTF so they match it exactly.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::progress;
use super::tools::CLANG;

/// What `make -C tools/sched_ext` builds in 6.12.
pub const NAMES: [&str; 4] = ["scx_simple", "scx_qmap", "scx_central", "scx_flatcg"];

/// Builds the schedulers into `work` and copies them, stripped, into
/// `dest`. Returns their names.
pub fn build(
    src: &Path,
    vmlinux: &Path,
    work: &Path,
    dest: &Path,
    jobs: usize,
    log: &Path,
) -> Result<Vec<String>> {
    // The Makefile wants its O= directory to exist.
    std::fs::create_dir_all(work).with_context(|| format!("create {}", work.display()))?;
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(src.join("tools/sched_ext"))
        .arg(format!("-j{jobs}"))
        .arg(format!("CLANG={CLANG}"))
        .arg(format!("VMLINUX_BTF={}", vmlinux.display()))
        .arg(format!("O={}", work.display()));
    let took = progress::run_logged(&mut cmd, "building sched_ext schedulers", log)?;
    progress::stage(&format!("schedulers built in {}", progress::fmt_duration(took)));

    std::fs::create_dir_all(dest).with_context(|| format!("create {}", dest.display()))?;
    let bin = work.join("build/bin");
    let mut names = Vec::new();
    for name in NAMES {
        let from = bin.join(name);
        if !from.is_file() {
            bail!(
                "tools/sched_ext built without {name} (expected {}); see {}",
                from.display(),
                log.display()
            );
        }
        let to: PathBuf = dest.join(name);
        std::fs::copy(&from, &to)
            .with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
        // Halves the size; .dynsym (what -rdynamic exports) stays.
        let stripped = Command::new("strip").arg(&to).status().is_ok_and(|s| s.success());
        if !stripped {
            tracing::warn!("strip {} failed; keeping it unstripped", to.display());
        }
        names.push(name.to_string());
    }
    Ok(names)
}
