//! JSON files read whole or not at all (caches, run results, metadata), and
//! cache files replaced atomically (temp file + rename), so that concurrent
//! runs never read half of one.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// `path`'s value, or None when it is missing or not what it should be.
pub fn load<T: DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Replaces `path` with `value` (see [`crate::kernel::write_atomic`]),
/// creating its directory.
pub fn save<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    crate::kernel::write_atomic(path, &serde_json::to_vec(value)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_saved_value_loads_back_and_garbage_loads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/v.json");
        super::save(&p, &vec![1u32, 2]).unwrap();
        assert_eq!(super::load::<Vec<u32>>(&p), Some(vec![1, 2]));
        std::fs::write(&p, b"{").unwrap();
        assert_eq!(super::load::<Vec<u32>>(&p), None);
        assert_eq!(super::load::<Vec<u32>>(&dir.path().join("none")), None);
    }
}
