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

/// How [`locate`] says it found a binary in the plugin library's directory.
pub const BESIDE_THE_PLUGIN: &str = "beside the plugin";

/// The env override first (it must exist), then `PATH`, then the directory
/// of `plugin`, the library that needs it: a plugin crate's own `[[bin]]`
/// lands beside its `.so` in `target/release`, and an install may keep them
/// together too. The error says what was tried and how to install it.
pub fn locate(bin: &BinaryLocator, plugin: &Path) -> Result<Located, String> {
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
    let beside = plugin.parent().filter(|_| !bin.name.contains('/'));
    if let Some(path) = beside.map(|dir| dir.join(&bin.name)).filter(|p| is_executable(p)) {
        return Ok(Located { path, via: BESIDE_THE_PLUGIN.into() });
    }
    let var =
        bin.env_override.as_ref().map(|v| format!(", or set ${v} to its path")).unwrap_or_default();
    let dir = beside.map(|d| format!(" nor beside the plugin in {}", d.display()));
    Err(format!(
        "`{}` not found on PATH{}{var}; {}",
        bin.name,
        dir.unwrap_or_default(),
        bin.install_hint
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn exe(path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_binary_beside_the_plugin_library_is_found_after_path() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libmine.so");
        let name = "ktstr-test-binary-beside-the-plugin";
        exe(&dir.path().join(name));
        let found = locate(&BinaryLocator::new(name, None, "hint"), &lib).unwrap();
        assert_eq!((found.path, found.via.as_str()), (dir.path().join(name), BESIDE_THE_PLUGIN));
        // PATH wins over the plugin's directory (`sh` is not beside it).
        let sh = locate(&BinaryLocator::new("sh", None, "hint"), &lib).unwrap();
        assert_eq!(sh.via, "PATH");
    }

    #[test]
    fn a_missing_binary_names_every_place_tried_and_the_hint() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libmine.so");
        let bin = BinaryLocator::new("ktstr-no-such-binary", Some("KTSTR_NO_SUCH"), "get it");
        let e = locate(&bin, &lib).unwrap_err();
        assert!(e.contains("not found on PATH nor beside the plugin in"), "{e}");
        assert!(e.contains("$KTSTR_NO_SUCH") && e.ends_with("get it"), "{e}");
    }
}
