//! A run's private copy of a template: a reflink (`FICLONE`, instant, shares
//! blocks until written) where the filesystem has them, else a sparse copy
//! that skips the template's holes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneMethod {
    Reflink,
    SparseCopy,
}

impl CloneMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CloneMethod::Reflink => "reflink",
            CloneMethod::SparseCopy => "sparse copy",
        }
    }
}

/// Copies `src` to the new file `dst` (which must not exist).
pub fn clone_file(src: &Path, dst: &Path) -> io::Result<CloneMethod> {
    let s = File::open(src)?;
    let d = OpenOptions::new().write(true).create_new(true).open(dst)?;
    let made = reflink(&s, &d).map(|()| CloneMethod::Reflink).or_else(|e| {
        // Filesystems without reflinks (ext4, tmpfs) or across filesystems.
        let unsupported = [libc::EOPNOTSUPP, libc::EXDEV, libc::EINVAL, libc::ENOTTY, libc::ENOSYS];
        if unsupported.contains(&e.raw_os_error().unwrap_or(0)) {
            sparse_copy(&s, &d).map(|()| CloneMethod::SparseCopy)
        } else {
            Err(e)
        }
    });
    if made.is_err() {
        let _ = std::fs::remove_file(dst);
    }
    made
}

fn reflink(src: &File, dst: &File) -> io::Result<()> {
    // SAFETY: FICLONE takes the source fd as its argument; both fds are open.
    let rc = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Copies the data extents (SEEK_DATA/SEEK_HOLE) and leaves the holes.
fn sparse_copy(src: &File, dst: &File) -> io::Result<()> {
    let len = src.metadata()?.len();
    dst.set_len(len)?;
    let mut off = 0u64;
    while off < len {
        let Some(data) = seek(src, off, libc::SEEK_DATA)? else { break };
        let hole = seek(src, data, libc::SEEK_HOLE)?.unwrap_or(len);
        copy_range(src, dst, data, hole - data)?;
        off = hole;
    }
    // No fsync (cp does none either): the VM reads the copy through the
    // same page cache, and a run's disk needs no durability.
    Ok(())
}

/// `lseek(fd, off, whence)`; None past the last data (ENXIO).
fn seek(f: &File, off: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    // SAFETY: a plain syscall on an open fd.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off as libc::off_t, whence) };
    if r >= 0 {
        return Ok(Some(r as u64));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENXIO) {
        Ok(None)
    } else {
        Err(e)
    }
}

fn copy_range(src: &File, dst: &File, at: u64, len: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < len {
        let n = ((len - done) as usize).min(buf.len());
        src.read_exact_at(&mut buf[..n], at + done)?;
        dst.write_all_at(&buf[..n], at + done)?;
        done += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileExt, MetadataExt};

    #[test]
    fn a_sparse_copy_keeps_data_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("t.img"), dir.path().join("c.img"));
        let f = File::create(&src).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(b"superblock", 1024).unwrap();
        f.write_all_at(b"the end", (64 << 20) - 7).unwrap();
        drop(f);
        let method = clone_file(&src, &dst).unwrap();
        let got = std::fs::read(&dst).unwrap();
        assert_eq!(got.len(), 64 << 20);
        assert_eq!(&got[1024..1034], b"superblock");
        assert_eq!(&got[(64 << 20) - 7..], b"the end");
        if method == CloneMethod::SparseCopy {
            let blocks = std::fs::metadata(&dst).unwrap().blocks();
            assert!(blocks * 512 < 8 << 20, "the holes stayed holes ({blocks} blocks)");
        }
        let err = clone_file(&src, &dst).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "never overwrites");
    }
}
