//! A file's identity read from its metadata alone, so that caches keyed by
//! file contents need not read the files on every run: device, inode, size,
//! and modification and change times to the nanosecond, as git's index
//! trusts them. A user can set a file's mtime back but not its ctime, so a
//! rewrite or a restored backup is still seen. Timestamps tick at the
//! kernel's clock granularity, so a stamp is trusted only once the file has
//! been left alone for [`SETTLE`] (git's "racy" entries, handled the same way).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

mod memo;
pub use memo::StampMemo;

/// How long a file must have been unchanged before its stamp stands for it.
pub const SETTLE: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    pub fn of(path: &Path) -> std::io::Result<Stamp> {
        let m = std::fs::metadata(path)?;
        Ok(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime_ns: nanos(m.mtime(), m.mtime_nsec()),
            ctime_ns: nanos(m.ctime(), m.ctime_nsec()),
        })
    }

    /// Whether the file was last changed at least [`SETTLE`] before `now`:
    /// a change within the same clock tick could otherwise leave the stamp
    /// as it was.
    pub fn settled(&self, now: SystemTime) -> bool {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
        let last = self.mtime_ns.max(self.ctime_ns);
        now - last >= SETTLE.as_nanos() as i128
    }
}

fn nanos(secs: i64, nsecs: i64) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nsecs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_changes_the_stamp_even_with_the_old_size_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"aaaa").unwrap();
        let before = Stamp::of(&p).unwrap();
        assert_eq!(Stamp::of(&p).unwrap(), before, "an untouched file keeps its stamp");
        let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&p, b"bbbb").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(mtime).unwrap();
        let after = Stamp::of(&p).unwrap();
        assert_eq!(after.size, before.size);
        assert_eq!(after.mtime_ns, before.mtime_ns, "the mtime was put back");
        assert_ne!(after, before, "the ctime still moved");
    }

    #[test]
    fn a_fresh_file_is_not_settled_until_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        let s = Stamp::of(&p).unwrap();
        let now = SystemTime::now();
        assert!(!s.settled(now));
        assert!(s.settled(now + SETTLE));
    }
}
