//! `--disk`, in real VMs under QEMU: a template formatted once by the
//! guest's mkfs, a fresh clone per run (a reflink on btrfs, a sparse copy on
//! the default ext4), mounted before the payload, reported in `--json`; fio
//! measuring the virtio disk. ktstr-vmm's disks are tested in nested.rs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ktstr_tests::{
    build_out_of_tree, ktstr_bin, metric, plugin_dir_with, vm_tests_enabled, workspace_root,
};
use serde_json::Value;

/// The disk-probe fixture's plugin directory.
fn probe_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let so = build_out_of_tree(&workspace_root().join("tests/fixtures/plugins/disk-probe"));
        plugin_dir_with(&so, &["libdisk_probe_plugin.so"])
    })
    .path()
}

/// `ktstr run --vmm qemu ARGS --json -` with the disk cache at `cache`:
/// the exit code, the document and stderr (the progress).
fn run(cache: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(ktstr_bin())
        .args(["run", "--vmm", "qemu", "--topology", "1n1l2c1t", "--plugin-dir"])
        .arg(probe_dir())
        .args(args)
        .args(["--json", "-"])
        .env_remove("KTSTR_PLUGIN_PATH")
        .env("KTSTR_DISK_CACHE_DIR", cache)
        .output()
        .expect("run ktstr");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("no JSON ({e}):\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout))
    });
    (out.status.code().unwrap_or(-1), doc, stderr)
}

/// A btrfs filesystem on a loop device, mounted at a fresh directory, for
/// a disk cache with reflinks; unmounted and detached when dropped.
struct LoopBtrfs {
    mnt: tempfile::TempDir,
    _image: tempfile::TempDir,
}

impl LoopBtrfs {
    fn new() -> LoopBtrfs {
        let image_dir = tempfile::tempdir().unwrap();
        let image = image_dir.path().join("cache.btrfs");
        std::fs::File::create(&image).unwrap().set_len(1 << 30).unwrap();
        sh("mkfs.btrfs", &["-q", image.to_str().unwrap()]);
        let mnt = tempfile::tempdir().unwrap();
        // mount -o loop attaches a loop device and detaches it at umount.
        sh("mount", &["-o", "loop", image.to_str().unwrap(), mnt.path().to_str().unwrap()]);
        LoopBtrfs { mnt, _image: image_dir }
    }
}

impl Drop for LoopBtrfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.mnt.path()).status();
    }
}

fn sh(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn disk(doc: &Value) -> &Value {
    let disks = doc["disks"].as_array().unwrap_or_else(|| panic!("no disks: {doc:#}"));
    assert_eq!(disks.len(), 1, "{doc:#}");
    &disks[0]
}

/// Skips, loudly, where loop mounts need a root this process is not.
fn root_or_skip(test: &str) -> bool {
    let id = Command::new("id").arg("-u").output().map(|o| o.stdout).unwrap_or_default();
    if id.trim_ascii() == b"0" {
        return true;
    }
    ktstr_tests::skip(test, "loop-mounting a btrfs cache needs root");
    false
}

#[test]
fn a_btrfs_disk_is_a_fresh_reflink_of_a_template_built_once() {
    if !vm_tests_enabled("disks_btrfs_reflink") || !root_or_skip("disks_btrfs_reflink") {
        return;
    }
    let cache = LoopBtrfs::new();
    let args = ["--plugin", "disk-probe", "--disk", "256M,fs=btrfs"];

    let (code, first, stderr) = run(cache.mnt.path(), &args);
    let why = format!("{first:#}\n{stderr}");
    assert_eq!((code, first["verdict"].as_str()), (0, Some("PASS")), "{why}");
    let d = disk(&first);
    assert_eq!((d["fs"].as_str(), d["fs_magic"].as_str()), (Some("btrfs"), Some("0x9123683e")));
    assert_eq!((d["device"].as_str(), d["mount"].as_str()), (Some("/dev/vda"), Some("/mnt/disk0")));
    assert_eq!(d["size_bytes"], 256 << 20, "{why}");
    assert_eq!(d["template"]["cache"], "built", "{why}");
    assert_eq!(d["clone"], "reflink", "{why}");
    assert_eq!(metric(&first, "on_disk"), Some(1.0), "the payload wrote on the disk: {why}");
    assert_eq!(metric(&first, "sentinel_found"), Some(0.0), "{why}");
    assert_eq!(metric(&first, "readback_ok"), Some(1.0), "{why}");

    let (code, second, stderr) = run(cache.mnt.path(), &args);
    let why = format!("{second:#}\n{stderr}");
    assert_eq!(code, 0, "{why}");
    assert_eq!(metric(&second, "sentinel_found"), Some(0.0), "a fresh clone: {why}");
    let d = disk(&second);
    assert_eq!(d["template"]["cache"], "hit", "{why}");
    assert_eq!(d["template"]["key"], disk(&first)["template"]["key"], "{why}");
    assert!(stderr.contains("template cache hit"), "{why}");
    assert!(!stderr.contains("building the"), "not rebuilt: {why}");
    let clones: Vec<PathBuf> = std::fs::read_dir(cache.mnt.path().join("clones"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(clones.is_empty(), "each run deletes its clone: {clones:?}");
}

/// On the default ext4 cache (no reflinks) each run gets a sparse copy, and
/// says how to get reflinks; fio measures the disk with O_DIRECT.
#[test]
fn fio_measures_an_ext4_disk_copied_where_there_are_no_reflinks() {
    if !vm_tests_enabled("disks_ext4_fio") {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let kept = tempfile::tempdir().unwrap();
    let art = kept.path().to_str().unwrap();
    let args = ["--plugin", "fio", "--disk", "64M,fs=ext4,name=data", "--duration", "2"];
    let (code, doc, stderr) =
        run(cache.path(), &[&args[..], &["--artifacts", art, "--keep-disks"]].concat());
    let why = format!("{doc:#}\n{stderr}");
    assert_eq!((code, doc["verdict"].as_str()), (0, Some("PASS")), "{why}");
    let d = disk(&doc);
    assert_eq!((d["fs"].as_str(), d["mount"].as_str()), (Some("ext4"), Some("/mnt/data")), "{why}");
    assert_eq!(d["clone"], "sparse copy", "{why}");
    assert!(stderr.contains("has no reflinks") && stderr.contains("KTSTR_DISK_CACHE_DIR"), "{why}");
    let command = doc["payload"]["command"].as_str().unwrap_or_default();
    assert!(
        command.contains("--filename=/mnt/data/ktstr-fio.dat") && command.contains("--direct=1"),
        "{why}"
    );
    for m in ["read/iops", "write/iops"] {
        assert!(metric(&doc, m).is_some_and(|v| v > 0.0), "{m}: {why}");
    }
    // --keep-disks: the image stays with the artifacts, holding fio's file.
    let image = kept.path().join("disks/data.img");
    assert!(image.is_file(), "{why}");
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 64 << 20);
}

#[test]
fn bad_disk_specs_are_usage_errors() {
    for (spec, words) in [
        ("lots", "bad size `lots`"),
        ("12", "ext4 needs at least 16 MiB"),
        ("64M,fs=zfs", "unknown filesystem `zfs`"),
        ("64M,fs=btrfs", "btrfs needs at least 128 MiB"),
        ("64M,colour=red", "unknown option `colour=red`"),
        ("64M,name=a/b", "disk name `a/b`"),
    ] {
        let out = Command::new(ktstr_bin())
            .args(["run", "--plugin", "fio", "--disk", spec])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {stderr}");
        assert!(stderr.contains(words), "{spec}: {stderr}");
    }
}
