//! What a run packs into the guest for its payloads: plugin libraries, the
//! binaries they run, their extra files, and coreutils' stdbuf preload that
//! makes their output line-buffered; and the guest's initramfs made of the
//! cached base archive and the run plan.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ktstr_core::plan::{BIN_DIR, PLAN_PATH, PLUGIN_DIR};
use ktstr_core::plugin::{payload_spec, PayloadSpec, PluginAt, PluginRef, RunContext};

use super::payload_run::{env, Scratch};
use crate::initramfs::{write_newc, ArchiveSpec, BaseArchiveCache};

/// The guest's initramfs: the cached base archive as it is, then a small
/// one holding the run plan and the user's `--include`s, written into `dir`.
pub fn initramfs(
    base: &ArchiveSpec,
    plan_json: &str,
    includes: &[PathBuf],
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let base =
        BaseArchiveCache::new(crate::kernel::cache_dir().join("initramfs")).get_or_build(base)?;
    let mut plan = ArchiveSpec::default();
    plan.add_bytes(PLAN_PATH, plan_json.as_bytes().to_vec(), 0o644);
    for path in includes {
        crate::shell::include::add(&mut plan, path)?;
    }
    let plan_cpio = dir.join("plan.cpio");
    write_newc(&plan, &mut std::fs::File::create(&plan_cpio)?)?;
    Ok(vec![base, plan_cpio])
}
use crate::plugins::locate;

/// Where shared objects ktstr itself preloads go in the guest.
const LIB_DIR: &str = "/ktstr/lib";
/// Where Debian and others keep coreutils' `stdbuf` preload library.
const STDBUF_DIRS: [&str; 3] =
    ["/usr/libexec/coreutils", "/usr/lib/coreutils", "/usr/lib/x86_64-linux-gnu/coreutils"];

pub struct Packer<'a> {
    base: &'a mut ArchiveSpec,
    /// The guest path of libstdbuf.so once packed (`Some(None)`: not found).
    stdbuf: Option<Option<String>>,
    scratch: Scratch,
}

impl<'a> Packer<'a> {
    pub fn new(base: &'a mut ArchiveSpec, scratch: Scratch) -> Self {
        Packer { base, stdbuf: None, scratch }
    }

    /// Packs a plugin library with its dependencies; returns where it is.
    pub fn plugin(&mut self, p: &PluginRef) -> anyhow::Result<PluginAt> {
        Ok(p.at(self.base.add_elf_in_dir(&p.path, PLUGIN_DIR)?))
    }

    /// The binary a payload plugin runs (and its extra files), packed;
    /// `None` for inline payloads.
    pub fn payload_binary(&mut self, p: &PluginRef) -> anyhow::Result<Option<String>> {
        let spec = payload_spec(p);
        for extra in &spec.extra_files {
            // The host file's permissions, so that a helper program stays executable.
            let mode = std::fs::metadata(extra).map_or(0o644, |m| m.permissions().mode() & 0o777);
            self.base.add_file(Path::new(extra), extra, mode);
        }
        let Some(bin) = &spec.binary else { return Ok(None) };
        let found =
            locate(bin, &p.path).map_err(|e| anyhow::anyhow!("payload `{}`: {e}", p.info.name))?;
        self.base.add_elf_in_dir(&found.path, BIN_DIR).map(Some)
    }

    /// The payload's environment: its run context as `KTSTR_*`, and for a
    /// binary that asked for it, stdio line buffering (`stdbuf -oL -eL`).
    pub fn env(&mut self, spec: &PayloadSpec, ctx: &RunContext) -> Vec<(String, String)> {
        let mut vars = env(ctx, &self.scratch);
        if spec.binary.is_some() && spec.line_buffered {
            if let Some(lib) = self.stdbuf() {
                vars.push(("LD_PRELOAD".into(), lib));
                vars.push(("_STDBUF_O".into(), "L".into()));
                vars.push(("_STDBUF_E".into(), "L".into()));
            }
        }
        vars
    }

    fn stdbuf(&mut self) -> Option<String> {
        if self.stdbuf.is_none() {
            let found = STDBUF_DIRS
                .iter()
                .map(|d| PathBuf::from(d).join("libstdbuf.so"))
                .find(|p| p.is_file());
            let packed = found.and_then(|p| match self.base.add_elf_in_dir(&p, LIB_DIR) {
                Ok(guest) => Some(guest),
                Err(e) => {
                    tracing::warn!(
                        "cannot pack {}: {e:#}; payload output stays block-buffered",
                        p.display()
                    );
                    None
                }
            });
            if packed.is_none() {
                tracing::warn!(
                    "libstdbuf.so (coreutils) not found: payload output stays as the \
                    payload buffers it"
                );
            }
            self.stdbuf = Some(packed);
        }
        self.stdbuf.clone().flatten()
    }
}
