//! `ktstr disk list|clean`: the disk cache's templates and leftover clones.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::template::{read_meta, templates_dir, Meta};
use super::{clones_dir, disks_dir};
use crate::exit;

#[derive(Subcommand, Debug)]
pub enum DiskCmd {
    /// List the disk templates (and clones left by killed runs).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove every template not in use, and clones whose run has ended.
    Clean {
        /// Print what was removed as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub const DISK_HELP: &str = "\
Disks come from `ktstr run --disk SIZE,fs=btrfs|ext4|xfs|none`. Each filesystem
and size is formatted once, by the guest's own mkfs in a one-shot VM, into a
template under $KTSTR_DISK_CACHE_DIR (default $KTSTR_CACHE_DIR/disks, i.e.
~/.cache/ktstr/disks); every run clones it (a reflink on btrfs/XFS, a sparse
copy elsewhere). A template is rebuilt only when its key changes: filesystem,
size, mkfs's version or binary.";

pub fn run(cmd: DiskCmd) -> Result<i32> {
    let root = disks_dir();
    match cmd {
        DiskCmd::List { json } => list(&root, json),
        DiskCmd::Clean { json } => clean(&root, json),
    }
}

/// Every template (its image and metadata) in the cache.
fn templates(root: &Path) -> Vec<(PathBuf, Option<Meta>)> {
    let mut out: Vec<(PathBuf, Option<Meta>)> = entries(&templates_dir(root))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "img"))
        .map(|p| {
            let meta = read_meta(&p.with_extension("json"));
            (p, meta)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Clones whose run is gone (their name starts with the run's pid).
fn stale_clones(root: &Path) -> Vec<PathBuf> {
    entries(&clones_dir(root))
        .into_iter()
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let pid = name.split('-').next().and_then(|s| s.parse::<u32>().ok());
            pid.is_none_or(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .collect()
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// Bytes a file really takes on disk (templates are sparse).
fn allocated(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.blocks() * 512)
}

fn list(root: &Path, as_json: bool) -> Result<i32> {
    let ts = templates(root);
    let stale = stale_clones(root);
    if as_json {
        let items: Vec<serde_json::Value> = ts
            .iter()
            .map(|(p, m)| json!({"image": p, "allocated_bytes": allocated(p), "meta": m}))
            .collect();
        let doc = json!({"dir": root, "templates": items, "stale_clones": stale});
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(exit::PASS);
    }
    println!("disk cache: {}", root.display());
    if ts.is_empty() {
        println!("  no templates (a run with --disk builds them)");
    }
    for (p, m) in &ts {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        let used = allocated(p) >> 20;
        match m {
            Some(m) => println!(
                "  {name}  {}  {used} MiB on disk  {}  built in {:.1} s",
                m.fs,
                m.mkfs_version,
                m.build_ms as f64 / 1000.0
            ),
            None => println!("  {name}  (no metadata: an interrupted build; `ktstr disk clean`)"),
        }
    }
    for p in &stale {
        println!("  leftover clone of an ended run: {}", p.display());
    }
    Ok(exit::PASS)
}

fn clean(root: &Path, as_json: bool) -> Result<i32> {
    let mut removed = Vec::new();
    for (image, _) in templates(root) {
        // A run building or cloning it holds its lock.
        let lock = std::fs::File::open(image.with_extension("lock"));
        if lock.as_ref().is_ok_and(|l| l.try_lock().is_err()) {
            eprintln!("[ktstr] {} is in use; kept", image.display());
            continue;
        }
        for p in [image.clone(), image.with_extension("json"), image.with_extension("lock")] {
            if std::fs::remove_file(&p).is_ok() {
                removed.push(p);
            }
        }
    }
    // Half-built templates of killed builds.
    for p in entries(&templates_dir(root)) {
        if p.to_string_lossy().contains(".img.tmp-") && std::fs::remove_file(&p).is_ok() {
            removed.push(p);
        }
    }
    for p in stale_clones(root) {
        if std::fs::remove_file(&p).is_ok() {
            removed.push(p);
        }
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&json!({ "removed": removed }))?);
    } else {
        println!("removed {} file(s) from {}", removed.len(), root.display());
    }
    Ok(exit::PASS)
}
