//! `--disk`: every run gets fresh disks. Each is a private clone of a cached
//! template (see `template`), made with a reflink where the cache's
//! filesystem has them and a sparse copy otherwise (`clone`), and deleted
//! when the run ends unless `--keep-disks` keeps it with the artifacts.

mod cli;
pub mod clone;
pub mod template;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use ktstr_core::disk::{names, serial, DiskPlan, DiskReport, DiskSpec, Filesystem};
use serde_json::json;

pub use cli::{run as command, DiskCmd, DISK_HELP};
pub use clone::CloneMethod;
use template::Template;

use crate::kernel::KernelEntry;
use crate::vm::{VmDisk, VmEngine};

/// Where templates and clones live: `$KTSTR_DISK_CACHE_DIR`, else `disks/`
/// in the ktstr cache. Reflinks need both on one btrfs or XFS filesystem.
pub fn disks_dir() -> PathBuf {
    match std::env::var_os("KTSTR_DISK_CACHE_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => crate::kernel::cache_dir().join("disks"),
    }
}

fn clones_dir(disks_dir: &Path) -> PathBuf {
    disks_dir.join("clones")
}

/// One disk of this run.
pub struct RunDisk {
    pub name: String,
    pub spec: DiskSpec,
    /// The run's own image (a clone, or a blank file for `fs=none`).
    pub image: PathBuf,
    pub template: Option<Template>,
    pub clone: Option<CloneMethod>,
    pub clone_ms: u128,
    /// Where `--keep-disks` put the image, once the run ended.
    pub kept: Option<PathBuf>,
}

/// The run's disks; their images are deleted when this is dropped, unless kept.
#[derive(Default)]
pub struct RunDisks {
    pub disks: Vec<RunDisk>,
}

impl RunDisks {
    /// Templates (built once), then a fresh image for each disk.
    pub fn prepare(
        specs: &[DiskSpec],
        engine: &dyn VmEngine,
        kernel: &KernelEntry,
        progress: &mut dyn FnMut(&str),
    ) -> anyhow::Result<RunDisks> {
        let names = names(specs).map_err(crate::usage::UsageError)?;
        let root = disks_dir();
        let mut out = RunDisks::default();
        if specs.is_empty() {
            return Ok(out);
        }
        let clones = clones_dir(&root);
        std::fs::create_dir_all(&clones).with_context(|| format!("create {}", clones.display()))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        for (spec, name) in specs.iter().zip(names) {
            let image = clones.join(format!("{}-{stamp}-{name}.img", std::process::id()));
            let mut started = Instant::now();
            let (template, clone) = if spec.fs == Filesystem::None {
                std::fs::File::create_new(&image)
                    .and_then(|f| f.set_len(spec.size_bytes))
                    .with_context(|| format!("create {}", image.display()))?;
                (None, None)
            } else {
                // The lock stays held until the clone is made.
                let (t, _lock) = template::get_or_build(
                    &root,
                    spec.fs,
                    spec.size_bytes,
                    engine,
                    kernel,
                    progress,
                )?;
                // The clone's own time, not the template's build.
                started = Instant::now();
                let method = clone::clone_file(&t.image, &image).with_context(|| {
                    format!("clone {} to {}", t.image.display(), image.display())
                })?;
                (Some(t), Some(method))
            };
            out.disks.push(RunDisk {
                name,
                spec: spec.clone(),
                image,
                template,
                clone,
                clone_ms: started.elapsed().as_millis(),
                kept: None,
            });
        }
        if out.disks.iter().any(|d| d.clone == Some(CloneMethod::SparseCopy)) {
            progress(&format!(
                "note: disks are sparse copies, as {} has no reflinks; put KTSTR_DISK_CACHE_DIR \
                 (or KTSTR_CACHE_DIR) on btrfs or XFS for instant clones",
                root.display()
            ));
        }
        for d in &out.disks {
            progress(&format!("disk {}: {}", d.name, d.origin()));
        }
        Ok(out)
    }

    pub fn vm_disks(&self) -> Vec<VmDisk> {
        self.disks
            .iter()
            .map(|d| VmDisk {
                path: d.image.clone(),
                read_only: d.spec.read_only,
                serial: serial(&d.name),
                iops: d.spec.iops,
                bps: d.spec.bps,
            })
            .collect()
    }

    /// What the guest does with each: find it, mount it (no formatting: the
    /// template is formatted already).
    pub fn plans(&self) -> Vec<DiskPlan> {
        self.disks
            .iter()
            .map(|d| DiskPlan {
                name: d.name.clone(),
                serial: serial(&d.name),
                fs: d.spec.fs,
                read_only: d.spec.read_only,
                mount_at: d.spec.mount_point(&d.name),
                mkfs: None,
            })
            .collect()
    }

    /// Moves each image into `dir` (`--keep-disks`).
    pub fn keep_in(&mut self, dir: &Path) -> anyhow::Result<()> {
        if !self.disks.is_empty() {
            std::fs::create_dir_all(dir)?;
        }
        for d in &mut self.disks {
            let to = dir.join(format!("{}.img", d.name));
            if std::fs::rename(&d.image, &to).is_err() {
                // Another filesystem: copy (a reflink where it can), then drop ours.
                clone::clone_file(&d.image, &to)
                    .with_context(|| format!("keep {} as {}", d.image.display(), to.display()))?;
                let _ = std::fs::remove_file(&d.image);
            }
            d.kept = Some(to);
        }
        Ok(())
    }

    /// Each disk for `--json`: the host's side and what the guest reported.
    pub fn to_json(&self, reports: &[DiskReport]) -> serde_json::Value {
        let disks: Vec<serde_json::Value> = self
            .disks
            .iter()
            .map(|d| {
                let seen = reports.iter().find(|r| r.name == d.name);
                json!({
                    "name": d.name,
                    "requested": {
                        "size_bytes": d.spec.size_bytes, "fs": d.spec.fs,
                        "read_only": d.spec.read_only, "mount": d.spec.mount,
                        "iops": d.spec.iops, "bps": d.spec.bps,
                    },
                    "device": seen.map(|r| &r.device),
                    "size_bytes": seen.map(|r| r.size_bytes),
                    "fs": seen.and_then(|r| r.fs.as_ref()),
                    "fs_magic": seen.and_then(|r| r.fs_magic).map(|m| format!("{m:#x}")),
                    "mount": seen.and_then(|r| r.mount.as_ref()),
                    "template": d.template.as_ref().map(|t| json!({
                        "key": t.meta.key, "image": t.image,
                        "cache": if t.hit { "hit" } else { "built" },
                        "build_ms": t.meta.build_ms, "mkfs_version": t.meta.mkfs_version,
                    })),
                    "clone": d.clone.map(CloneMethod::as_str),
                    "clone_ms": d.clone_ms,
                    "kept": d.kept,
                })
            })
            .collect();
        json!(disks)
    }
}

impl RunDisk {
    /// `btrfs template cache hit, reflink in 2 ms`, for the summary.
    pub fn origin(&self) -> String {
        match (&self.template, self.clone) {
            (Some(t), Some(m)) => format!(
                "{} template {} (built in {:.1} s), {} in {} ms",
                t.meta.fs,
                if t.hit { "cache hit" } else { "built now" },
                t.meta.build_ms as f64 / 1000.0,
                m.as_str(),
                self.clone_ms
            ),
            _ => format!("blank {}", template::human_size(self.spec.size_bytes)),
        }
    }
}

impl Drop for RunDisks {
    fn drop(&mut self) {
        for d in self.disks.iter().filter(|d| d.kept.is_none()) {
            let _ = std::fs::remove_file(&d.image);
        }
    }
}
