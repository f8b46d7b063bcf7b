//! Test kernels: build one from source with ktstr's sched_ext fragment,
//! cache it by key, list and clean the cache, and resolve the kernel a boot
//! should use.
//!
//! Layout under [`cache_dir`]`/kernels`:
//! - `<key>/` one finished entry: `bzImage`, `vmlinux`, `config`,
//!   `schedulers/`, `build.log`, `metadata.json`. It appears by rename only,
//!   so an entry that exists is complete. `vmlinux.boot` (see `boot_elf`)
//!   and `symbols.map` (see `symbols`) are made in it when first needed.
//! - `.tmp-<key>-<pid>/` a build in progress (or killed); ignored by `list`.
//! - `.locks/<key>.lock` flock(2) files serialising builds of one key.
//! - `failed-<key>.log` the log of the last failed build of a key.

pub mod boot_elf;
mod build;
mod cache;
mod cli;
mod config;
mod metadata;
mod progress;
mod resolve;
mod schedulers;
mod source;
pub mod symbols;
mod tools;

use std::path::PathBuf;

#[allow(unused_imports)] // used by the run engine
pub use cache::{cache_dir, hex, sha256_hex, write_atomic};
pub use cli::{run, KernelCmd};
#[allow(unused_imports)]
pub use resolve::{resolve, KernelEntry};

/// Schedulers available from the kernel a plain boot would use
/// (`$KTSTR_KERNEL`, else the default cache entry): (name, path).
pub fn available_schedulers() -> Vec<(String, PathBuf)> {
    resolve(None).map(|k| k.schedulers()).unwrap_or_default()
}
