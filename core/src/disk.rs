//! Disks a run asks for (`--disk 256M,fs=btrfs,name=data`, or a scenario's
//! `[[disks]]`), what the guest is told to do with them, and what it reports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// At most this many disks a run (ktstr-vmm's virtio-mmio slots).
pub const MAX_DISKS: usize = 8;
/// A disk name: what `/mnt/NAME` and the guest's serial `ktstr-NAME` use.
pub const MAX_NAME: usize = 14;
const SERIAL_PREFIX: &str = "ktstr-";
const MAX_SIZE: u64 = 1 << 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filesystem {
    Btrfs,
    Ext4,
    Xfs,
    /// A blank device, not formatted or mounted.
    None,
}

impl Filesystem {
    pub const ALL: [Filesystem; 4] =
        [Filesystem::Btrfs, Filesystem::Ext4, Filesystem::Xfs, Filesystem::None];

    pub fn name(self) -> &'static str {
        match self {
            Filesystem::Btrfs => "btrfs",
            Filesystem::Ext4 => "ext4",
            Filesystem::Xfs => "xfs",
            Filesystem::None => "none",
        }
    }

    /// The host binary that makes it (packed into the template VM).
    pub fn mkfs(self) -> Option<&'static str> {
        match self {
            Filesystem::Btrfs => Some("mkfs.btrfs"),
            Filesystem::Ext4 => Some("mkfs.ext4"),
            Filesystem::Xfs => Some("mkfs.xfs"),
            Filesystem::None => None,
        }
    }

    /// mkfs's arguments before the device: quiet, no prompts, no discard
    /// (a sparse image has nothing to discard, and it is slow under TCG).
    pub fn mkfs_args(self) -> &'static [&'static str] {
        match self {
            Filesystem::Btrfs => &["-q", "-f", "--nodiscard"],
            // -t: the binary is mke2fs, whose default type is ext2.
            Filesystem::Ext4 => &["-q", "-F", "-t", "ext4", "-E", "nodiscard"],
            Filesystem::Xfs => &["-q", "-f", "-K"],
            Filesystem::None => &[],
        }
    }

    /// The smallest size its mkfs accepts (xfsprogs ≥ 5.19 refuses < 300 MB).
    pub fn min_bytes(self) -> u64 {
        match self {
            Filesystem::Btrfs => 128 << 20,
            Filesystem::Ext4 => 16 << 20,
            Filesystem::Xfs => 300 << 20,
            Filesystem::None => 1 << 20,
        }
    }

    /// `statfs(2)`'s f_type for it (linux/magic.h).
    pub fn statfs_magic(self) -> Option<u64> {
        match self {
            Filesystem::Btrfs => Some(0x9123_683e),
            Filesystem::Ext4 => Some(0xef53),
            Filesystem::Xfs => Some(0x5846_5342),
            Filesystem::None => None,
        }
    }

    /// The filesystem a statfs magic names, if it is one of ours.
    pub fn from_magic(magic: u64) -> Option<Filesystem> {
        Filesystem::ALL.into_iter().find(|f| f.statfs_magic() == Some(magic))
    }
}

impl fmt::Display for Filesystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Filesystem {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Filesystem::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown filesystem `{s}`: use btrfs, ext4, xfs or none"))
    }
}

/// One disk as the user declared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpec {
    pub size_bytes: u64,
    pub fs: Filesystem,
    /// `None`: `disk0`, `disk1`… by position.
    pub name: Option<String>,
    pub read_only: bool,
    /// Mount it at `/mnt/NAME` before the scheduler starts.
    pub mount: bool,
    pub iops: Option<u64>,
    pub bps: Option<u64>,
}

pub const SPEC_SYNTAX: &str =
    "SIZE[,fs=btrfs|ext4|xfs|none][,name=NAME][,ro][,mount=no][,iops=N][,bps=N]";

impl FromStr for DiskSpec {
    type Err = String;
    /// `SIZE[,fs=…][,name=…][,ro][,mount=no][,iops=N][,bps=N]`; the
    /// filesystem defaults to ext4.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split(',');
        let size = parts.next().unwrap_or_default();
        let mut d = DiskSpec {
            size_bytes: parse_size(size).map_err(|e| format!("--disk {s}: {e}"))?,
            fs: Filesystem::Ext4,
            name: None,
            read_only: false,
            mount: true,
            iops: None,
            bps: None,
        };
        for part in parts {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let bad = |e: String| format!("--disk {s}: {e}");
            match (key, value) {
                ("fs", v) => d.fs = v.parse().map_err(bad)?,
                ("name", v) => d.name = Some(v.to_string()),
                ("ro", "") => d.read_only = true,
                ("mount", "no") => d.mount = false,
                ("mount", "yes") => d.mount = true,
                ("iops", v) => d.iops = Some(parse_rate(v).map_err(bad)?),
                ("bps", v) => d.bps = Some(parse_size(v).map_err(bad)?),
                _ => {
                    return Err(format!(
                        "--disk {s}: unknown option `{part}`; syntax: {SPEC_SYNTAX}"
                    ))
                }
            }
        }
        d.check().map_err(|e| format!("--disk {s}: {e}"))?;
        Ok(d)
    }
}

impl DiskSpec {
    fn check(&self) -> Result<(), String> {
        if self.size_bytes < self.fs.min_bytes() {
            return Err(format!("{} needs at least {} MiB", self.fs, self.fs.min_bytes() >> 20));
        }
        if self.size_bytes > MAX_SIZE {
            return Err("at most 1 TiB".into());
        }
        if let Some(n) = &self.name {
            check_name(n)?;
        }
        Ok(())
    }

    /// Where the guest mounts it, if it does.
    pub fn mount_point(&self, name: &str) -> Option<String> {
        (self.mount && self.fs != Filesystem::None).then(|| format!("/mnt/{name}"))
    }
}

fn check_name(n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= MAX_NAME
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("disk name `{n}`: 1 to {MAX_NAME} letters, digits, `-` or `_`"))
    }
}

/// Each disk's name (given, or `diskN` by position), checked for clashes.
pub fn names(disks: &[DiskSpec]) -> Result<Vec<String>, String> {
    if disks.len() > MAX_DISKS {
        return Err(format!("{} disks given; at most {MAX_DISKS}", disks.len()));
    }
    let names: Vec<String> = disks
        .iter()
        .enumerate()
        .map(|(i, d)| d.name.clone().unwrap_or_else(|| format!("disk{i}")))
        .collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(format!("two disks are named `{n}`: give each its own name="));
        }
    }
    Ok(names)
}

/// The serial the guest finds disk `name` by (`/sys/block/vdX/serial`).
pub fn serial(name: &str) -> String {
    format!("{SERIAL_PREFIX}{name}")
}

/// `256M`, `1G`, `4096`, `512K` (binary units) → bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, shift) = match t.as_bytes().last() {
        Some(b'K' | b'k') => (&t[..t.len() - 1], 10),
        Some(b'M' | b'm') => (&t[..t.len() - 1], 20),
        Some(b'G' | b'g') => (&t[..t.len() - 1], 30),
        Some(b'T' | b't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("bad size `{s}`: a number with an optional K, M, G or T (256M)"))
}

fn parse_rate(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("bad rate `{s}`: a whole number above 0"))
}

/// A scenario's `[[disks]]` entry: `size = "256M"`, `fs = "btrfs"`,
/// `name`, `ro`, `mount`, `iops`, `bps` (the `--disk` options as keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskEntry {
    pub size: String,
    #[serde(default)]
    pub fs: Option<Filesystem>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub ro: bool,
    #[serde(default)]
    pub mount: Option<bool>,
    #[serde(default)]
    pub iops: Option<u64>,
    #[serde(default)]
    pub bps: Option<String>,
}

impl DiskEntry {
    pub fn to_spec(&self) -> Result<DiskSpec, String> {
        let d = DiskSpec {
            size_bytes: parse_size(&self.size)?,
            fs: self.fs.unwrap_or(Filesystem::Ext4),
            name: self.name.clone(),
            read_only: self.ro,
            mount: self.mount.unwrap_or(true),
            iops: self.iops.filter(|&n| n > 0),
            bps: self.bps.as_deref().map(parse_size).transpose()?,
        };
        d.check().map_err(|e| format!("[[disks]] size = {:?}: {e}", self.size))?;
        Ok(d)
    }
}

/// What the guest does with one disk, in the run plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskPlan {
    pub name: String,
    pub serial: String,
    pub fs: Filesystem,
    pub read_only: bool,
    pub mount_at: Option<String>,
    /// Format it first (a template build): the guest path of mkfs and its
    /// arguments before the device.
    pub mkfs: Option<(String, Vec<String>)>,
}

/// What the guest found and did, for the report and `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskReport {
    pub name: String,
    /// `/dev/vda`…
    pub device: String,
    pub size_bytes: u64,
    pub read_only: bool,
    pub mount: Option<String>,
    /// statfs's f_type of the mount, and the filesystem it names.
    pub fs_magic: Option<u64>,
    pub fs: Option<String>,
}

impl DiskReport {
    /// `/dev/vda (64 MiB), ext4 on /mnt/disk0`, or `…, not mounted`.
    pub fn describe(&self) -> String {
        let mount = match (&self.mount, &self.fs) {
            (Some(at), Some(fs)) => format!("{fs} on {at}"),
            _ => "not mounted".into(),
        };
        format!("{} ({} MiB), {mount}", self.device, self.size_bytes >> 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_defaults() {
        let d: DiskSpec = "256M,fs=btrfs".parse().unwrap();
        assert_eq!(
            (d.size_bytes, d.fs, d.mount, d.read_only),
            (256 << 20, Filesystem::Btrfs, true, false)
        );
        assert_eq!(d.mount_point("disk0").as_deref(), Some("/mnt/disk0"));
        let d: DiskSpec = "1G,fs=xfs,name=data,ro,mount=no,iops=100,bps=10M".parse().unwrap();
        assert_eq!(d.name.as_deref(), Some("data"));
        assert!(d.read_only && !d.mount);
        assert_eq!((d.iops, d.bps), (Some(100), Some(10 << 20)));
        assert_eq!(d.mount_point("data"), None);
        let d: DiskSpec = "64M".parse().unwrap();
        assert_eq!(d.fs, Filesystem::Ext4);
        let d: DiskSpec = "8M,fs=none".parse().unwrap();
        assert_eq!(d.mount_point("disk0"), None, "a blank disk is not mounted");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |s: &str| s.parse::<DiskSpec>().unwrap_err();
        assert!(err("lots").contains("bad size `lots`"));
        assert!(err("256M,fs=zfs").contains("use btrfs, ext4, xfs or none"));
        assert!(err("256M,fs=xfs").contains("xfs needs at least 300 MiB"));
        assert!(err("64M,fs=btrfs").contains("btrfs needs at least 128 MiB"));
        assert!(err("256M,color=red").contains("unknown option `color=red`"));
        assert!(err("256M,name=a/b").contains("disk name `a/b`"));
        assert!(err("256M,iops=0").contains("bad rate"));
        assert!(err("2T").contains("at most 1 TiB"));
        assert!(err("0").contains("bad size"));
    }

    #[test]
    fn names_default_by_position_and_must_differ() {
        let a: DiskSpec = "64M".parse().unwrap();
        let b: DiskSpec = "64M,name=logs".parse().unwrap();
        assert_eq!(names(&[a.clone(), b.clone()]).unwrap(), ["disk0", "logs"]);
        let clash: DiskSpec = "64M,name=disk0".parse().unwrap();
        assert!(names(&[a.clone(), clash]).unwrap_err().contains("two disks are named `disk0`"));
        assert!(names(&vec![a; 9]).unwrap_err().contains("at most 8"));
        assert!(serial("disk0").len() <= 20 && serial(&"x".repeat(MAX_NAME)).len() == 20);
    }

    #[test]
    fn scenario_entries_are_specs() {
        let e: DiskEntry =
            toml::from_str("size = \"256M\"\nfs = \"btrfs\"\nname = \"data\"").unwrap();
        let d = e.to_spec().unwrap();
        assert_eq!(
            (d.size_bytes, d.fs, d.name.as_deref(), d.mount),
            (256 << 20, Filesystem::Btrfs, Some("data"), true)
        );
        let small: DiskEntry = toml::from_str("size = \"10M\"\nfs = \"xfs\"").unwrap();
        assert!(small.to_spec().unwrap_err().contains("xfs needs at least 300 MiB"));
        assert!(toml::from_str::<DiskEntry>("size = \"1G\"\ncolour = 1").is_err());
    }

    #[test]
    fn magics_name_filesystems() {
        assert_eq!(Filesystem::from_magic(0x9123_683e), Some(Filesystem::Btrfs));
        assert_eq!(Filesystem::from_magic(0xef53), Some(Filesystem::Ext4));
        assert_eq!(Filesystem::from_magic(0x0102_1994), None, "tmpfs is not ours");
    }
}
