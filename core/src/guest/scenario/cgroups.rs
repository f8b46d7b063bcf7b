//! The scenario's cgroup tree on disk: every path is under one root, so the
//! executor can run against the guest's cgroup2 mount, a host's, or (in
//! tests) a plain directory standing in for one.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::topology::format_cpulist;

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// How long a just-emptied cgroup may stay busy before removal gives up.
const REMOVE_RETRY: Duration = Duration::from_secs(2);

pub(super) struct CgroupTree {
    root: PathBuf,
    /// Why enabling cpu/cpuset failed somewhere, reported once.
    pub(super) controller_warning: Option<String>,
}

impl CgroupTree {
    /// Creates `rel` (e.g. `ktstr/scenario`) under the cgroup2 `mount`, with
    /// cpu and cpuset enabled on the way down.
    pub(super) fn create_root(mount: &Path, rel: &str) -> anyhow::Result<CgroupTree> {
        let mut tree = CgroupTree { root: mount.to_path_buf(), controller_warning: None };
        let mut path = mount.to_path_buf();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            tree.enable_controllers(&path);
            path.push(part);
            std::fs::create_dir_all(&path)
                .with_context(|| format!("create cgroup {}", path.display()))?;
        }
        tree.root = path;
        Ok(tree)
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Children get cpu and cpuset only if their parent enables them. Best
    /// effort: without them, cgroups still group tasks; a cpuset write will
    /// then fail with its own error.
    fn enable_controllers(&mut self, parent: &Path) {
        let control = parent.join("cgroup.subtree_control");
        if let Err(e) = std::fs::write(&control, "+cpu +cpuset") {
            self.controller_warning.get_or_insert_with(|| {
                format!("could not enable cpu and cpuset in {}: {e}", control.display())
            });
        }
    }

    /// Creates the cgroup `name` (its parent exists; validation saw to it).
    pub(super) fn create(&mut self, name: &str) -> anyhow::Result<()> {
        let path = self.path(name);
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
        self.enable_controllers(&parent);
        std::fs::create_dir(&path).with_context(|| format!("create cgroup {}", path.display()))
    }

    /// Removes the cgroup `name`, retrying while the kernel still counts
    /// just-reaped tasks in it.
    pub(super) fn remove(&self, name: &str) -> anyhow::Result<()> {
        remove_dir(&self.path(name))
    }

    pub(super) fn set_cpus(&self, name: &str, cpus: &[u32]) -> anyhow::Result<()> {
        let file = self.path(name).join("cpuset.cpus");
        std::fs::write(&file, format_cpulist(cpus))
            .with_context(|| format!("write \"{}\" to {}", format_cpulist(cpus), file.display()))
    }

    /// An empty cpuset means "inherit the parent's" in cgroup v2.
    pub(super) fn clear_cpus(&self, name: &str) -> anyhow::Result<()> {
        let file = self.path(name).join("cpuset.cpus");
        std::fs::write(&file, "\n").with_context(|| format!("clear {}", file.display()))
    }

    /// The pids in the cgroup's `cgroup.procs`.
    pub(super) fn procs(&self, name: &str) -> anyhow::Result<Vec<u32>> {
        let file = self.path(name).join("cgroup.procs");
        let text =
            std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        Ok(text.split_whitespace().filter_map(|p| p.parse().ok()).collect())
    }

    /// Moves one process; a process that exited meanwhile is not an error.
    pub(super) fn move_pid(&self, pid: u32, to: &str) -> anyhow::Result<()> {
        let file = self.path(to).join("cgroup.procs");
        match std::fs::write(&file, pid.to_string()) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            other => other.with_context(|| format!("move {pid} into {}", file.display())),
        }
    }
}

/// rmdir, retried while busy. A directory that is not on cgroupfs (a test
/// stand-in, where interface files are real files) is removed with its files.
pub(super) fn remove_dir(path: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + REMOVE_RETRY;
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && !on_cgroupfs(path) => {
                return std::fs::remove_dir_all(path)
                    .with_context(|| format!("remove {}", path.display()));
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(e).with_context(|| format!("remove cgroup {}", path.display())),
        }
    }
}

fn on_cgroupfs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: statfs fills our zeroed struct from a valid C string path.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == CGROUP2_SUPER_MAGIC
    }
}

/// The first cgroup2 mount in `/proc/self/mounts`, if any.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, dir, fstype) = (f.next()?, f.next()?, f.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(dir))
    })
}
