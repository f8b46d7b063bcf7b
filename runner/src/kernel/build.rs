//! `ktstr kernel build`: key the request, reuse a cached entry or build one
//! in a private work dir and rename it into place.
//!
//! Steps: extract (tarballs) → `tinyconfig` → merge the fragment →
//! `olddefconfig` → verify the fragment → `bzImage` → the sched_ext example
//! schedulers → collect outputs → install. Everything builds out of tree
//! (`make O=`), so a user's git tree is never written to.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::cache::{self, cache_dir, Cache};
use super::config::{self, FRAGMENT};
use super::metadata::{self, Metadata, Paths};
use super::progress::{self, stage, StepFailed};
use super::schedulers;
use super::source::Source;
use super::tools;

pub struct BuildOpts {
    pub source: Option<PathBuf>,
    pub jobs: Option<usize>,
    pub force: bool,
}

pub struct Outcome {
    pub dir: PathBuf,
    pub meta: Metadata,
    /// Served from the cache without building.
    pub hit: bool,
}

pub fn build(opts: &BuildOpts) -> Result<Outcome> {
    let started = Instant::now();
    let source = Source::from_arg(opts.source.as_deref())?;
    let identity = source.identity()?;
    let compilers = tools::compiler_versions();
    let key = cache::key(&identity, FRAGMENT, &compilers);
    let root = cache_dir();
    tracing::debug!(%key, %identity, ?compilers, "kernel cache key");
    let cache = Cache::new(&root);
    let hit = |meta: Metadata| Outcome { dir: cache.entry_dir(&meta.key), meta, hit: true };
    if !opts.force {
        if let Some(meta) = cache.lookup(&key) {
            return Ok(hit(meta));
        }
    }

    tools::check(&source)?;
    std::fs::create_dir_all(cache.root())
        .with_context(|| format!("create {}", cache.root().display()))?;
    // Absolute paths from here on: make runs in other directories.
    let cache = Cache::new(&root.canonicalize()?);
    let _lock = match cache.lock(&key, false)? {
        Some(lock) => lock,
        None => {
            stage(&format!("another ktstr is building this kernel (key {key}); waiting for it…"));
            cache.lock(&key, true)?.expect("a blocking lock returns one")
        }
    };
    if !opts.force {
        if let Some(meta) = cache.lookup(&key) {
            return Ok(hit(meta)); // built while we waited
        }
    }
    cache.remove_stale_tmp(&key);

    let jobs = opts
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    stage(&format!("building kernel {key} from {} (jobs={jobs})", source.describe()));
    let tmp = cache.tmp_dir(&key);
    let out = tmp.join("out");
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let log = out.join("build.log");
    stage(&format!("build log: {}", log.display()));

    match build_in(&source, &tmp, &out, &log, jobs) {
        Ok(built) => {
            let meta = Metadata {
                format: metadata::FORMAT,
                key: key.clone(),
                kernel_version: built.version,
                config_hash: built.config_hash,
                fragment_hash: config::fragment_hash(),
                source: source.describe(),
                source_identity: identity,
                compilers,
                jobs,
                build_seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                created_unix: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs(),
                paths: Paths {
                    bzimage: "bzImage".into(),
                    vmlinux: Some("vmlinux".into()),
                    config: Some("config".into()),
                    build_log: "build.log".into(),
                    schedulers: built.schedulers,
                },
            };
            cache::write_atomic(&out.join(Metadata::FILE), &serde_json::to_vec_pretty(&meta)?)?;
            let dir = cache.install(&key, &out)?;
            let _ = std::fs::remove_file(cache.failed_log(&key));
            stage("removing the build tree…");
            remove_tree(&tmp);
            stage(&format!(
                "done in {}: {}",
                progress::fmt_duration(started.elapsed()),
                dir.display()
            ));
            Ok(Outcome { dir, meta, hit: false })
        }
        Err(err) => {
            let failed = cache.failed_log(&key);
            let kept = std::fs::rename(&log, &failed).is_ok();
            if kept && err.downcast_ref::<StepFailed>().is_some() {
                eprintln!("[kernel] last {} lines of the build log:", progress::TAIL_LINES);
                for line in progress::tail(&failed, progress::TAIL_LINES) {
                    eprintln!("    {line}");
                }
            }
            remove_tree(&tmp);
            let where_ = if kept {
                format!("full log: {}", failed.display())
            } else {
                format!("log was at {}", log.display())
            };
            Err(err.context(format!("kernel build failed (key {key}); {where_}")))
        }
    }
}

/// What a successful build produced beyond the files in `out`.
struct Built {
    version: String,
    config_hash: String,
    schedulers: Vec<String>,
}

fn build_in(source: &Source, tmp: &Path, out: &Path, log: &Path, jobs: usize) -> Result<Built> {
    let src = source.prepare(&tmp.join("src"), log)?;
    let obj = tmp.join("build");
    std::fs::create_dir_all(&obj)?;

    stage("configuring (tinyconfig + ktstr fragment)…");
    let t = Instant::now();
    progress::run_logged(kmake(&src, &obj).arg("tinyconfig"), "make tinyconfig", log)?;
    let fragment = tmp.join("fragment.config");
    std::fs::write(&fragment, FRAGMENT)?;
    // Run in the build dir: the script writes its temp file into the cwd.
    let mut merge = Command::new("bash");
    merge
        .arg(src.join("scripts/kconfig/merge_config.sh"))
        .args(["-m", ".config"])
        .arg(&fragment)
        .current_dir(&obj);
    progress::run_logged(&mut merge, "merging the fragment", log)?;
    progress::run_logged(kmake(&src, &obj).arg("olddefconfig"), "make olddefconfig", log)?;
    let config_text =
        std::fs::read_to_string(obj.join(".config")).context("read the final .config")?;
    config::verify(FRAGMENT, &config_text)?;
    stage(&format!(
        "configured in {}; every fragment option took effect",
        progress::fmt_duration(t.elapsed())
    ));

    let label = format!("building bzImage (jobs={jobs})");
    stage(&format!("{label}…"));
    let took = progress::run_logged(
        kmake(&src, &obj).arg(format!("-j{jobs}")).arg("bzImage"),
        &label,
        log,
    )?;
    stage(&format!("bzImage built in {}", progress::fmt_duration(took)));

    // Same filesystem: renames, not 100 MB copies.
    let vmlinux = out.join("vmlinux");
    std::fs::rename(obj.join("vmlinux"), &vmlinux).context("move vmlinux")?;
    std::fs::rename(obj.join("arch/x86/boot/bzImage"), out.join("bzImage"))
        .context("move bzImage")?;
    std::fs::write(out.join("config"), &config_text)?;
    let version = kernel_release(&src, &obj);

    stage("building the sched_ext example schedulers…");
    let schedulers =
        schedulers::build(&src, &vmlinux, &tmp.join("scx"), &out.join("schedulers"), jobs, log)?;
    super::boot_elf::ensure(out, &vmlinux)?;
    Ok(Built { version, config_hash: cache::sha256_hex(config_text.as_bytes()), schedulers })
}

/// `make -C <src> O=<obj> ARCH=x86_64` (ARCH matters: without it tinyconfig
/// can come out 32-bit).
fn kmake(src: &Path, obj: &Path) -> Command {
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(src).arg(format!("O={}", obj.display())).arg("ARCH=x86_64");
    // A stable banner: the build does not depend on who ran it where.
    cmd.env("KBUILD_BUILD_USER", "ktstr").env("KBUILD_BUILD_HOST", "ktstr").env("LC_ALL", "C");
    cmd
}

fn kernel_release(src: &Path, obj: &Path) -> String {
    if let Ok(r) = std::fs::read_to_string(obj.join("include/config/kernel.release")) {
        return r.trim().to_string();
    }
    Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(src)
        .arg("kernelversion")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Best effort: a leftover only costs disk, and `clean` removes it later.
fn remove_tree(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!("could not remove {}: {e}", dir.display());
    }
}
