//! The run's disks, before the scheduler starts: find each by its serial,
//! format it if the plan says so (a template build), mount it, and report
//! what the guest sees (device, size, statfs magic).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::mount::{mount, MsFlags};

use super::Channel;
use crate::disk::{DiskPlan, DiskReport, Filesystem};
use crate::protocol::Message;

/// How long the guest waits for a disk's device to appear (virtio-blk
/// probes while the kernel boots; a PCI one may come a little later).
const APPEAR_DEADLINE: Duration = Duration::from_secs(10);
/// mkfs's output kept for an error message.
const OUTPUT_TAIL: usize = 2000;

pub fn prepare(disks: &[DiskPlan], ch: &mut Channel) -> anyhow::Result<()> {
    for disk in disks {
        let report = prepare_one(disk, ch).with_context(|| format!("disk `{}`", disk.name))?;
        ch.send(&Message::Disk(report));
    }
    Ok(())
}

fn prepare_one(disk: &DiskPlan, ch: &mut Channel) -> anyhow::Result<DiskReport> {
    let block = find_by_serial(Path::new("/sys/block"), &disk.serial, APPEAR_DEADLINE)?;
    let device = format!("/dev/{block}");
    let sectors = read_trim(&format!("/sys/block/{block}/size")).parse::<u64>().unwrap_or(0);
    if let Some((mkfs, args)) = &disk.mkfs {
        let started = Instant::now();
        let out = std::process::Command::new(mkfs)
            .args(args)
            .arg(&device)
            .output()
            .with_context(|| format!("run {mkfs}"))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
            let tail = &text[text.len().saturating_sub(OUTPUT_TAIL)..];
            bail!("{mkfs} {device} failed ({}): {}", out.status, tail.trim());
        }
        ch.log(format!(
            "{mkfs} made {} on {device} in {:.2} s",
            disk.fs,
            started.elapsed().as_secs_f64()
        ));
    }
    let (mut fs_magic, mut fs) = (None, None);
    if let Some(at) = &disk.mount_at {
        std::fs::create_dir_all(at).with_context(|| format!("create {at}"))?;
        let flags = if disk.read_only { MsFlags::MS_RDONLY } else { MsFlags::empty() };
        mount(Some(device.as_str()), at.as_str(), Some(disk.fs.name()), flags, None::<&str>)
            .with_context(|| format!("mount {device} ({}) on {at}", disk.fs))?;
        let st = nix::sys::statfs::statfs(at.as_str()).with_context(|| format!("statfs {at}"))?;
        let magic = st.filesystem_type().0 as u64;
        fs_magic = Some(magic);
        fs = Some(
            Filesystem::from_magic(magic).map_or_else(|| format!("{magic:#x}"), |f| f.to_string()),
        );
    }
    Ok(DiskReport {
        name: disk.name.clone(),
        device,
        size_bytes: sectors * 512,
        read_only: disk.read_only,
        mount: disk.mount_at.clone(),
        fs_magic,
        fs,
    })
}

/// The block device (`vda`…) whose serial is `serial`, waiting for it to
/// appear; the error lists the serials that are there.
pub fn find_by_serial(
    sys_block: &Path,
    serial: &str,
    deadline: Duration,
) -> anyhow::Result<String> {
    let started = Instant::now();
    loop {
        let seen = serials(sys_block);
        if let Some((dev, _)) = seen.iter().find(|(_, s)| s == serial) {
            return Ok(dev.clone());
        }
        if started.elapsed() >= deadline {
            let list: Vec<String> = seen.iter().map(|(d, s)| format!("{d}={s}")).collect();
            bail!(
                "no block device with serial `{serial}` after {} s (seen: {})",
                deadline.as_secs(),
                if list.is_empty() { "none".into() } else { list.join(", ") }
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serials(sys_block: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(sys_block) else { return Vec::new() };
    let mut out: Vec<(String, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let dev = e.file_name().to_string_lossy().into_owned();
            let serial = std::fs::read_to_string(e.path().join("serial")).ok()?;
            Some((dev, serial.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string()))
        })
        .collect();
    out.sort();
    out
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_are_found_by_serial() {
        let dir = tempfile::tempdir().unwrap();
        for (dev, serial) in [("vda", "ktstr-disk0\n"), ("vdb", "ktstr-logs")] {
            std::fs::create_dir_all(dir.path().join(dev)).unwrap();
            std::fs::write(dir.path().join(dev).join("serial"), serial).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("loop0")).unwrap(); // no serial
        let zero = Duration::ZERO;
        assert_eq!(find_by_serial(dir.path(), "ktstr-logs", zero).unwrap(), "vdb");
        assert_eq!(find_by_serial(dir.path(), "ktstr-disk0", zero).unwrap(), "vda");
        let err = find_by_serial(dir.path(), "ktstr-x", zero).unwrap_err().to_string();
        assert!(err.contains("seen: vda=ktstr-disk0, vdb=ktstr-logs"), "{err}");
    }
}
