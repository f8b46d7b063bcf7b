//! `ktstr kernel build|list|clean`: arguments and output. The work lives in
//! `build.rs` and `cache.rs`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::{Args, Subcommand};

use super::build::{self, BuildOpts};
use super::cache::{cache_dir, Cache};
use super::metadata::Metadata;
use super::progress::fmt_duration;
use crate::exit;

#[derive(Subcommand, Debug)]
pub enum KernelCmd {
    /// Build (or reuse from the cache) a sched_ext test kernel and the
    /// in-tree example schedulers (scx_simple, scx_qmap, scx_central, scx_flatcg).
    #[command(after_help = BUILD_HELP)]
    Build(BuildArgs),
    /// List cached kernels, newest first.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove cached kernels (and leftovers of killed builds).
    Clean {
        /// Keep the N newest kernels, and (N > 0) the one runs boot when none
        /// is named (`*` in `ktstr kernel list`) even when it is older.
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep: usize,
        /// Print what was removed as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Kernel source: a git tree, an unpacked source tree, or a release
    /// tarball (.tar.xz, .tar.gz…). Default: the newest
    /// /usr/src/linux-source-*.tar.* (Debian's linux-source-6.12).
    #[arg(long, value_name = "DIR|TARBALL")]
    pub source: Option<PathBuf>,
    /// Parallel make jobs (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Rebuild even when the cache has this kernel.
    #[arg(long)]
    pub force: bool,
    /// Print the entry's metadata as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

const BUILD_HELP: &str = "\
The kernel is `make tinyconfig` plus ktstr's sched_ext fragment (every option is
verified after olddefconfig). Entries live in $KTSTR_CACHE_DIR/kernels/<key>
(default ~/.cache/ktstr), keyed by the source (tarball path+size+mtime, or git
HEAD + uncommitted changes), the fragment and the compiler versions; building
the same key again is a cache hit. Host packages: scripts/setup.sh.

EXAMPLES:
    ktstr kernel build
    ktstr kernel build --source ~/src/linux --jobs 8
    ktstr kernel build --source linux-6.12.tar.xz --json";

pub fn run(cmd: KernelCmd) -> Result<i32> {
    match cmd {
        KernelCmd::Build(args) => build_cmd(&args),
        KernelCmd::List { json } => list_cmd(json),
        KernelCmd::Clean { keep, json } => clean_cmd(keep, json),
    }
}

fn build_cmd(args: &BuildArgs) -> Result<i32> {
    let started = std::time::Instant::now();
    let outcome = build::build(&BuildOpts {
        source: args.source.clone(),
        jobs: args.jobs,
        force: args.force,
    })?;
    let (dir, meta) = (&outcome.dir, &outcome.meta);
    if args.json {
        let mut v = meta.to_json(dir);
        v["cache_hit"] = outcome.hit.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::PASS);
    }
    if outcome.hit {
        eprintln!(
            "[kernel] cache hit ({}; built {} ago)",
            fmt_duration(started.elapsed()),
            ago(meta.created_unix)
        );
    }
    print_entry(dir, meta);
    Ok(exit::PASS)
}

fn print_entry(dir: &std::path::Path, meta: &Metadata) {
    println!(
        "kernel {}  key {}  (built in {})",
        meta.kernel_version,
        meta.key,
        fmt_duration(Duration::from_secs_f64(meta.build_seconds))
    );
    println!("  bzImage     {}", dir.join(&meta.paths.bzimage).display());
    if let Some(v) = &meta.paths.vmlinux {
        println!("  vmlinux     {}", dir.join(v).display());
    }
    if let Some(c) = &meta.paths.config {
        println!("  config      {}", dir.join(c).display());
    }
    println!("  schedulers  {}", meta.paths.schedulers.join(" "));
    println!("  source      {}", meta.source);
}

fn list_cmd(json: bool) -> Result<i32> {
    let cache = Cache::new(&cache_dir());
    let entries = cache.entries();
    let fragment = super::config::fragment_hash();
    let default =
        super::resolve::default_entry(&entries, &fragment).map(|((_, m), _)| m.key.clone());
    if json {
        let v: Vec<serde_json::Value> = entries
            .iter()
            .map(|(d, m)| {
                let mut v = m.to_json(d);
                v["this_ktstrs_fragment"] = (m.fragment_hash == fragment).into();
                v["default_for_boots"] = (default.as_deref() == Some(m.key.as_str())).into();
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::PASS);
    }
    if entries.is_empty() {
        println!(
            "no cached kernels in {} (build one with `ktstr kernel build`)",
            cache.root().display()
        );
        return Ok(exit::PASS);
    }
    println!(
        "  {:<16}  {:<10}  {:>9}  {:>7}  {:<10}  {:<9}  SOURCE",
        "KEY", "VERSION", "CREATED", "BUILD", "SCHEDULERS", "FRAGMENT"
    );
    for (_, m) in &entries {
        let mark = if default.as_deref() == Some(m.key.as_str()) { "*" } else { " " };
        let made_with = if m.fragment_hash == fragment { "this" } else { "another" };
        println!(
            "{mark} {:<16}  {:<10}  {:>9}  {:>7}  {:<10}  {made_with:<9}  {}",
            m.key,
            m.kernel_version,
            format!("{} ago", ago(m.created_unix)),
            fmt_duration(Duration::from_secs_f64(m.build_seconds)),
            m.paths.schedulers.len(),
            m.source
        );
    }
    println!(
        "({} in {}; * boots when no kernel is named: the newest built with this \
         ktstr's kconfig fragment, else the newest)",
        entries.len(),
        cache.root().display()
    );
    Ok(exit::PASS)
}

fn clean_cmd(keep: usize, json: bool) -> Result<i32> {
    let cache = Cache::new(&cache_dir());
    let entries = if keep > 0 { cache.entries() } else { Vec::new() };
    let default = super::resolve::default_entry(&entries, &super::config::fragment_hash())
        .map(|((_, m), _)| m.key.clone());
    let report = cache.clean(keep, default.as_deref())?;
    if json {
        let shown = |paths: &[std::path::PathBuf]| -> Vec<String> {
            paths.iter().map(|p| p.display().to_string()).collect()
        };
        let v = serde_json::json!({
            "removed": shown(&report.removed),
            "skipped_building": shown(&report.skipped),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::PASS);
    }
    for p in &report.removed {
        println!("removed {}", p.display());
    }
    for p in &report.skipped {
        println!("kept {} (a build of it is running)", p.display());
    }
    println!("{} removed, {} kernel(s) left", report.removed.len(), cache.entries().len());
    Ok(exit::PASS)
}

/// Coarse age: `3d`, `5h`, `12m`, `40s`.
fn ago(unix: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let s = now.saturating_sub(unix);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}
