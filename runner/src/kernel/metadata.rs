//! `metadata.json` of a cache entry. Paths are stored relative to the
//! entry (entries are renamed into place and cache dirs get restored
//! elsewhere); [`Metadata::to_json`] resolves them for output.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Bump when the layout of an entry changes incompatibly.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metadata {
    pub format: u32,
    pub key: String,
    /// `include/config/kernel.release`, e.g. `6.12.117`.
    pub kernel_version: String,
    /// SHA-256 of the final `.config`.
    pub config_hash: String,
    /// SHA-256 of the kconfig fragment that was merged.
    pub fragment_hash: String,
    /// Human description of the source (`tarball /usr/src/…`).
    pub source: String,
    /// What the key was computed from (path, size, mtime / git HEAD…).
    pub source_identity: String,
    /// First `--version` line of each compiler.
    pub compilers: Vec<String>,
    pub jobs: usize,
    /// Wall time of the whole build, seconds.
    pub build_seconds: f64,
    /// Unix time the entry was finished.
    pub created_unix: u64,
    pub paths: Paths,
}

/// File names inside the entry directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Paths {
    pub bzimage: String,
    pub vmlinux: Option<String>,
    pub config: Option<String>,
    pub build_log: String,
    /// Scheduler binaries, in `schedulers/`.
    pub schedulers: Vec<String>,
}

impl Metadata {
    pub const FILE: &'static str = "metadata.json";

    pub fn read(entry_dir: &Path) -> Result<Metadata> {
        let path = entry_dir.join(Self::FILE);
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))
    }

    /// The metadata with `dir` added and every path made absolute.
    pub fn to_json(&self, entry_dir: &Path) -> serde_json::Value {
        let abs = |name: &str| entry_dir.join(name).display().to_string();
        let mut v = serde_json::to_value(self).expect("metadata serializes");
        v["dir"] = entry_dir.display().to_string().into();
        v["paths"] = serde_json::json!({
            "bzimage": abs(&self.paths.bzimage),
            "vmlinux": self.paths.vmlinux.as_deref().map(abs),
            "config": self.paths.config.as_deref().map(abs),
            "build_log": abs(&self.paths.build_log),
            "schedulers": self
                .paths
                .schedulers
                .iter()
                .map(|s| abs(&format!("schedulers/{s}")))
                .collect::<Vec<_>>(),
        });
        v
    }
}

#[cfg(test)]
pub fn sample(key: &str, created_unix: u64) -> Metadata {
    Metadata {
        format: FORMAT,
        key: key.to_string(),
        kernel_version: "6.12.117".into(),
        config_hash: "c".into(),
        fragment_hash: "f".into(),
        source: "tarball /x".into(),
        source_identity: "tarball /x size=1".into(),
        compilers: vec!["gcc 12".into()],
        jobs: 2,
        build_seconds: 1.5,
        created_unix,
        paths: Paths {
            bzimage: "bzImage".into(),
            vmlinux: Some("vmlinux".into()),
            config: Some("config".into()),
            build_log: "build.log".into(),
            schedulers: vec!["scx_simple".into()],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_absolute_paths() {
        let v = sample("abc", 5).to_json(Path::new("/c/kernels/abc"));
        assert_eq!(v["dir"], "/c/kernels/abc");
        assert_eq!(v["paths"]["bzimage"], "/c/kernels/abc/bzImage");
        assert_eq!(v["paths"]["schedulers"][0], "/c/kernels/abc/schedulers/scx_simple");
        assert_eq!(v["kernel_version"], "6.12.117");
    }
}
