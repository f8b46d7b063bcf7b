//! cpio "newc" (070701) writer, the format the kernel's initramfs unpacker
//! reads. Reproducible: inodes numbered in order, mtime 0, uid/gid 0.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

use anyhow::{bail, Context, Result};

use super::{ArchiveSpec, Entry};

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;
const TRAILER: &str = "TRAILER!!!";
/// GNU cpio pads archives to 512-byte blocks; harmless to the kernel, which
/// skips zeros between concatenated archives.
const BLOCK: u64 = 512;

/// Writes `spec` as one newc archive, parent directories before contents.
pub fn write_newc(spec: &ArchiveSpec, out: &mut impl Write) -> Result<()> {
    let mut w = Counting { inner: BufWriter::new(out), written: 0 };
    for (i, entry) in spec.resolved()?.iter().enumerate() {
        let ino = i as u32 + 1;
        // The kernel creates entries relative to "/", so names carry no
        // leading slash, like GNU cpio's.
        let name = entry.guest_path().trim_start_matches('/');
        match entry {
            Entry::Dir { mode, .. } => header(&mut w, ino, S_IFDIR | (mode & 0o7777), 2, 0, name)?,
            Entry::Symlink { target, .. } => {
                header(&mut w, ino, S_IFLNK | 0o777, 1, target.len() as u64, name)?;
                w.write_all(target.as_bytes())?;
                pad(&mut w, 4)?;
            }
            Entry::Bytes { data, mode, .. } => {
                header(&mut w, ino, S_IFREG | (mode & 0o7777), 1, data.len() as u64, name)?;
                w.write_all(data)?;
                pad(&mut w, 4)?;
            }
            Entry::File { host_path, mode, .. } => {
                let f = File::open(host_path).with_context(|| {
                    format!("open {} (for {})", host_path.display(), entry.guest_path())
                })?;
                let size = f.metadata()?.len();
                header(&mut w, ino, S_IFREG | (mode & 0o7777), 1, size, name)?;
                let copied = io::copy(&mut f.take(size), &mut w)?;
                if copied != size {
                    bail!(
                        "{} shrank while being archived ({copied} of {size} bytes)",
                        host_path.display()
                    );
                }
                pad(&mut w, 4)?;
            }
        }
    }
    header(&mut w, 0, 0, 1, 0, TRAILER)?;
    pad(&mut w, BLOCK)?;
    w.flush()?;
    Ok(())
}

fn header(
    w: &mut Counting<impl Write>,
    ino: u32,
    mode: u32,
    nlink: u32,
    size: u64,
    name: &str,
) -> Result<()> {
    let size = u32::try_from(size)
        .with_context(|| format!("{name}: {size} bytes is too large for newc (4 GiB limit)"))?;
    // The name's size counts its NUL.
    let namesize = name.len() as u32 + 1;
    // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
    // rdevmajor, rdevminor, namesize, check
    let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, namesize, 0];
    let mut h = String::with_capacity(110);
    h.push_str("070701");
    for f in fields {
        h.push_str(&format!("{f:08X}"));
    }
    w.write_all(h.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    pad(w, 4)
}

/// Zero-fills up to the next multiple of `to`.
fn pad(w: &mut Counting<impl Write>, to: u64) -> Result<()> {
    let n = (to - w.written % to) % to;
    w.write_all(&vec![0u8; n as usize])?;
    Ok(())
}

/// Tracks the offset for the alignment rules.
struct Counting<W: Write> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A parsed member, for tests.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub ino: u32,
    pub mode: u32,
    pub nlink: u32,
    pub data: Vec<u8>,
    /// Offset of the header in the archive.
    pub offset: usize,
}

/// Strict reader used by the tests: checks magic, alignment and the trailer.
#[cfg(test)]
pub fn parse(archive: &[u8]) -> Result<Vec<Member>> {
    let mut out = Vec::new();
    let mut off = 0usize;
    let align = |x: usize| (x + 3) & !3;
    loop {
        if off & 3 != 0 {
            bail!("header at {off} not 4-byte aligned");
        }
        let h = archive.get(off..off + 110).context("truncated header")?;
        if &h[..6] != b"070701" {
            bail!("bad magic at {off}");
        }
        let field = |i: usize| {
            u32::from_str_radix(std::str::from_utf8(&h[6 + i * 8..14 + i * 8]).unwrap(), 16)
                .unwrap()
        };
        let (ino, mode, nlink, size, namesize) =
            (field(0), field(1), field(4), field(6) as usize, field(11) as usize);
        let name_bytes = &archive[off + 110..off + 110 + namesize];
        if name_bytes.last() != Some(&0) {
            bail!("name at {off} not NUL-terminated");
        }
        let name = String::from_utf8(name_bytes[..namesize - 1].to_vec())?;
        let data_at = align(off + 110 + namesize);
        let data = archive.get(data_at..data_at + size).context("truncated data")?.to_vec();
        if name == TRAILER {
            return Ok(out);
        }
        out.push(Member { name, ino, mode, nlink, data, offset: off });
        off = align(data_at + size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ArchiveSpec {
        let mut s = ArchiveSpec::default();
        s.add_bytes("/ktstr/plan.json", b"{\"a\":1}".to_vec(), 0o644)
            .add_bytes("/x", b"12345".to_vec(), 0o600)
            .add_symlink("/usr/lib", "../lib")
            .add_dir("/tmp", 0o1777)
            .add_file("/etc/hostname", "/etc/hn", 0o644);
        s
    }

    fn build(spec: &ArchiveSpec) -> Vec<u8> {
        let mut buf = Vec::new();
        write_newc(spec, &mut buf).unwrap();
        buf
    }

    #[test]
    fn initramfs_cpio_round_trip_and_alignment() {
        let buf = build(&sample());
        assert_eq!(buf.len() % 512, 0);
        let m = parse(&buf).unwrap();
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["etc", "etc/hn", "ktstr", "ktstr/plan.json", "tmp", "usr", "usr/lib", "x"]
        );
        let get = |n: &str| m.iter().find(|m| m.name == n).unwrap();
        assert_eq!(get("x").data, b"12345");
        assert_eq!(get("x").mode, S_IFREG | 0o600);
        assert_eq!(get("tmp").mode, S_IFDIR | 0o1777);
        assert_eq!(get("etc").mode, S_IFDIR | 0o755);
        assert_eq!(get("etc").nlink, 2);
        assert_eq!(get("usr/lib").mode, S_IFLNK | 0o777);
        assert_eq!(get("usr/lib").data, b"../lib");
        assert_eq!(get("etc/hn").data, std::fs::read("/etc/hostname").unwrap());
        // Unique, nonzero inode numbers.
        let mut inos: Vec<u32> = m.iter().map(|m| m.ino).collect();
        inos.dedup();
        assert_eq!(inos.len(), m.len());
        assert!(inos.iter().all(|&i| i != 0));
    }

    #[test]
    fn initramfs_cpio_is_reproducible() {
        assert_eq!(build(&sample()), build(&sample()));
    }

    #[test]
    fn initramfs_cpio_system_cpio_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.cpio");
        std::fs::write(&path, build(&sample())).unwrap();
        let out =
            std::process::Command::new("cpio").args(["-t", "--quiet", "-F"]).arg(&path).output();
        let Ok(out) = out else {
            eprintln!("SKIP: system cpio not installed");
            return;
        };
        assert!(out.status.success(), "cpio -t: {}", String::from_utf8_lossy(&out.stderr));
        let listed: Vec<String> =
            String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
        assert_eq!(
            listed,
            ["etc", "etc/hn", "ktstr", "ktstr/plan.json", "tmp", "usr", "usr/lib", "x"]
        );
    }

    #[test]
    fn initramfs_cpio_file_under_non_directory_is_an_error() {
        let mut s = ArchiveSpec::default();
        s.add_bytes("/a", b"file".to_vec(), 0o644).add_bytes("/a/b", b"".to_vec(), 0o644);
        let err = write_newc(&s, &mut Vec::new()).unwrap_err();
        assert!(format!("{err}").contains("/a is not a directory"), "{err}");
    }
}
