//! Values derived from files (a library's manifests, a file's hash), kept
//! in a JSON file and reused while each file's [`Stamp`] is unchanged. A
//! value of a file changed in the last [`super::SETTLE`] is not remembered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::Stamp;

#[derive(Serialize, Deserialize)]
struct Entry<V> {
    stamp: Stamp,
    value: V,
}

#[derive(Serialize, Deserialize)]
struct File<V> {
    /// Who wrote it: a memo written by another writer is not read.
    tag: String,
    entries: BTreeMap<PathBuf, Entry<V>>,
}

pub struct StampMemo<V> {
    /// Where the memo is kept; `None`: in memory only.
    path: Option<PathBuf>,
    file: File<V>,
    dirty: bool,
    /// What stamps are judged settled against.
    pub now: SystemTime,
}

impl<V: Serialize + DeserializeOwned> StampMemo<V> {
    /// The memo at `path` if `tag` wrote it, else an empty one.
    pub fn open(path: Option<PathBuf>, tag: String) -> StampMemo<V> {
        let file = path
            .as_deref()
            .and_then(crate::json_file::load::<File<V>>)
            .filter(|f| f.tag == tag)
            .unwrap_or(File { tag, entries: BTreeMap::new() });
        StampMemo { path, file, dirty: false, now: SystemTime::now() }
    }

    /// What is remembered of `file` while it has `stamp`.
    pub fn get(&self, file: &Path, stamp: &Stamp) -> Option<&V> {
        self.file.entries.get(file).filter(|e| e.stamp == *stamp).map(|e| &e.value)
    }

    /// Remembers `value` of `file`, unless the file changed too recently.
    pub fn put(&mut self, file: &Path, stamp: Stamp, value: V) {
        if stamp.settled(self.now) {
            self.file.entries.insert(file.to_path_buf(), Entry { stamp, value });
            self.dirty = true;
        }
    }

    /// Writes the memo back if it changed, forgetting files that no longer
    /// exist; a failure only costs speed.
    pub fn save(&mut self) {
        let Some(path) = &self.path else { return };
        if !self.dirty {
            return;
        }
        self.file.entries.retain(|p, _| p.exists());
        if let Err(e) = crate::json_file::save(path, &self.file) {
            tracing::debug!("cannot save {}: {e}", path.display());
        }
        self.dirty = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::SETTLE;

    #[test]
    fn a_value_is_reused_while_the_stamp_holds_and_only_once_settled() {
        let dir = tempfile::tempdir().unwrap();
        let (f, at) = (dir.path().join("f"), dir.path().join("memo.json"));
        std::fs::write(&f, b"v1").unwrap();
        let stamp = Stamp::of(&f).unwrap();
        let mut memo = StampMemo::<u32>::open(Some(at.clone()), "t".into());
        memo.put(&f, stamp.clone(), 1);
        assert_eq!(memo.get(&f, &stamp), None, "changed just now: not remembered");
        memo.now += SETTLE * 2;
        memo.put(&f, stamp.clone(), 1);
        memo.save();
        let again = StampMemo::<u32>::open(Some(at.clone()), "t".into());
        assert_eq!(again.get(&f, &stamp), Some(&1));
        assert_eq!(StampMemo::<u32>::open(Some(at), "other".into()).get(&f, &stamp), None);
        std::fs::write(&f, b"v2").unwrap();
        assert_eq!(again.get(&f, &Stamp::of(&f).unwrap()), None, "a rewrite is seen");
    }
}
