//! Locating the host binaries that payloads and schedulers need in the guest.

use std::path::{Path, PathBuf};

use ktstr_core::plugin::BinaryLocator;
use serde::Serialize;

/// Where a binary was found, and by which rule.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    pub path: PathBuf,
    pub via: String,
}

/// The env override first (it must exist), then `PATH`, then `extra_dirs`
/// (e.g. the kernel cache entry's schedulers). The error says what was tried
/// and how to install it.
pub fn locate(bin: &BinaryLocator, extra_dirs: &[PathBuf]) -> Result<Located, String> {
    if let Some(var) = &bin.env_override {
        if let Some(value) = std::env::var_os(var) {
            let path = PathBuf::from(&value);
            return if is_executable(&path) {
                Ok(Located { path, via: format!("${var}") })
            } else {
                Err(format!(
                    "${var} is set to {} but that is not an executable file",
                    path.display()
                ))
            };
        }
    }
    if let Some(path) = find_in_path(&bin.name) {
        return Ok(Located { path, via: "PATH".into() });
    }
    for dir in extra_dirs {
        let path = dir.join(&bin.name);
        if is_executable(&path) {
            return Ok(Located { path, via: dir.display().to_string() });
        }
    }
    let var =
        bin.env_override.as_ref().map(|v| format!(", or set ${v} to its path")).unwrap_or_default();
    Err(format!("`{}` not found on PATH{var}; {}", bin.name, bin.install_hint))
}

/// A name with a `/` is a path; otherwise it is looked up on `PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
