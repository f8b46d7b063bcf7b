//! For tests that run a real benchmark binary (fio, stress-ng).
//!
//! A missing tool fails the test loudly, so CI can never pass without having
//! run it; `KTSTR_SKIP_TOOL_TESTS=1` turns that into a loud skip for
//! machines that knowingly lack the tools.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable that lets tool tests skip when a tool is missing.
pub const SKIP_ENV: &str = "KTSTR_SKIP_TOOL_TESTS";

/// The path of `name` on `PATH`, if there is an executable file by that name.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// The tool to run, or `None` (after printing a SKIPPED line) when it is
/// missing and `KTSTR_SKIP_TOOL_TESTS=1`.
///
/// # Panics
/// When the tool is missing and skipping was not asked for.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    if let Some(p) = find_on_path(name) {
        return Some(p);
    }
    if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
        // Written to the stderr handle, not with eprintln!, which the test
        // harness captures and shows only for failing tests.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: `{name}` is not on PATH and {SKIP_ENV}=1; this test did NOT run the real tool"
        );
        return None;
    }
    panic!(
        "`{name}` is not on PATH: install it (e.g. `apt-get install {name}`) or set \
        {SKIP_ENV}=1 to skip"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_but_not_nonsense() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("ktstr-no-such-tool-xyz").is_none());
    }
}
