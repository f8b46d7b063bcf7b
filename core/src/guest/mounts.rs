//! The filesystems the init needs, and the cgroup tree the payload runs in.

use anyhow::Context;
use nix::mount::{mount, MsFlags};

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Mounts what a run needs. The essential ones fail the run; tracing, debug
/// and PTY filesystems are best-effort (only some runs need them).
pub fn mount_all() -> anyhow::Result<()> {
    let essential: [(&str, &str, &str); 6] = [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
        ("tmpfs", "/tmp", "tmpfs"),
        ("tmpfs", "/run", "tmpfs"),
        ("cgroup2", CGROUP_ROOT, "cgroup2"),
    ];
    for (src, target, fstype) in essential {
        std::fs::create_dir_all(target).ok();
        match mount(Some(src), target, Some(fstype), MsFlags::empty(), None::<&str>) {
            Ok(()) | Err(nix::errno::Errno::EBUSY) => {}
            Err(e) => return Err(e).with_context(|| format!("mount {fstype} on {target}")),
        }
    }
    // devpts: the PTY of an interactive shell (`ktstr shell`).
    for (src, target, fstype) in [
        ("debugfs", "/sys/kernel/debug", "debugfs"),
        ("tracefs", "/sys/kernel/tracing", "tracefs"),
        ("devpts", "/dev/pts", "devpts"),
    ] {
        std::fs::create_dir_all(target).ok();
        let _ = mount(Some(src), target, Some(fstype), MsFlags::empty(), None::<&str>);
    }
    // What udev or systemd would create: payloads write to /dev/stdout.
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let _ = std::os::unix::fs::symlink(target, link);
    }
    Ok(())
}

/// Creates `cgroup` (relative to the cgroup2 root) with cpu and cpuset
/// enabled on the way down, and returns its absolute path.
pub fn make_cgroup(cgroup: &str) -> anyhow::Result<String> {
    let mut path = CGROUP_ROOT.to_string();
    for part in cgroup.split('/') {
        // Enabling controllers for children must happen in the parent.
        let control = format!("{path}/cgroup.subtree_control");
        std::fs::write(&control, "+cpu +cpuset")
            .with_context(|| format!("enable cpu and cpuset in {control}"))?;
        path = format!("{path}/{part}");
        std::fs::create_dir_all(&path).with_context(|| format!("create cgroup {path}"))?;
    }
    Ok(path)
}
