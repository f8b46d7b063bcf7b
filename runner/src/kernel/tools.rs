//! Host tools a kernel build needs, checked before anything starts so a
//! missing one is reported by name with the command that installs it,
//! rather than minutes later as a make error. Also the compiler versions
//! that go into the cache key.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use super::source::Source;

/// The clang the sched_ext example schedulers are built with.
pub const CLANG: &str = "clang-19";

/// One requirement: what is looked for, and the Debian package that has it.
struct Need {
    what: &'static str,
    package: &'static str,
    kind: Kind,
}

enum Kind {
    Command,
    /// Any of these headers (paths under /usr/include).
    Header(&'static [&'static str]),
}

const NEEDS: &[Need] = &[
    Need { what: "make", package: "build-essential", kind: Kind::Command },
    Need { what: "gcc", package: "build-essential", kind: Kind::Command },
    Need { what: "strip", package: "binutils", kind: Kind::Command },
    Need { what: "flex", package: "flex", kind: Kind::Command },
    Need { what: "bison", package: "bison", kind: Kind::Command },
    Need { what: "bc", package: "bc", kind: Kind::Command },
    Need { what: "pahole", package: "dwarves", kind: Kind::Command },
    // The fragment's CONFIG_KERNEL_LZ4 compresses the bzImage with it.
    Need { what: "lz4", package: "lz4", kind: Kind::Command },
    Need { what: CLANG, package: "clang-19", kind: Kind::Command },
    Need { what: "libelf.h", package: "libelf-dev", kind: Kind::Header(&["libelf.h", "gelf.h"]) },
    Need {
        what: "openssl headers",
        package: "libssl-dev",
        kind: Kind::Header(&["openssl/opensslv.h"]),
    },
    Need { what: "zlib.h", package: "zlib1g-dev", kind: Kind::Header(&["zlib.h"]) },
];

/// Fails listing every missing tool and how to install them all.
pub fn check(source: &Source) -> Result<()> {
    let mut missing: Vec<(&str, &str)> =
        NEEDS.iter().filter(|n| !present(n)).map(|n| (n.what, n.package)).collect();
    match source {
        Source::Tarball(p) => {
            if !on_path("tar") {
                missing.push(("tar", "tar"));
            }
            if p.to_string_lossy().ends_with(".xz") && !on_path("xz") {
                missing.push(("xz", "xz-utils"));
            }
        }
        Source::Git(_) if !on_path("git") => missing.push(("git", "git")),
        _ => {}
    }
    if missing.is_empty() {
        return Ok(());
    }
    bail!("{}", missing_message(&missing))
}

fn missing_message(missing: &[(&str, &str)]) -> String {
    let mut packages: Vec<&str> = Vec::new();
    for (_, pkg) in missing {
        if !packages.contains(pkg) {
            packages.push(pkg);
        }
    }
    let list: Vec<String> =
        missing.iter().map(|(what, pkg)| format!("  {what} (Debian package {pkg})")).collect();
    format!(
        "missing host tools for building a kernel:\n{}\ninstall them with:\n  sudo apt-get \
            install -y {}\nor install everything ktstr needs:\n  scripts/setup.sh",
        list.join("\n"),
        packages.join(" ")
    )
}

fn present(need: &Need) -> bool {
    match need.kind {
        Kind::Command => on_path(need.what),
        Kind::Header(names) => names.iter().any(|h| Path::new("/usr/include").join(h).is_file()),
    }
}

/// Whether an executable `name` is on `$PATH`.
pub fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path).any(|d| {
        d.join(name).metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// First `--version` line of gcc and clang: a compiler upgrade must not
/// reuse objects built by the old one.
pub fn compiler_versions() -> Vec<String> {
    ["gcc", CLANG]
        .iter()
        .map(|c| {
            let line = Command::new(c)
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_string)
                });
            line.unwrap_or_else(|| format!("{c}: missing"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_tools_and_install_command() {
        let msg = missing_message(&[("pahole", "dwarves"), (CLANG, "clang-19")]);
        assert!(msg.contains("pahole (Debian package dwarves)"), "{msg}");
        assert!(msg.contains("sudo apt-get install -y dwarves clang-19"), "{msg}");
        assert!(msg.contains("scripts/setup.sh"), "{msg}");
    }

    #[test]
    fn finds_sh_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("ktstr-no-such-tool"));
    }
}
