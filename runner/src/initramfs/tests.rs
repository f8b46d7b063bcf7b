//! Whole-module tests: ELF closures placed in an archive, and the empirical
//! check that the guest layout works with no ld.so.cache.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use super::*;

fn file_entry<'s>(spec: &'s ArchiveSpec, guest: &str) -> Option<&'s Entry> {
    spec.entries().find(|e| e.guest_path() == guest)
}

#[test]
fn initramfs_elf_closure_is_placed_in_the_lib_dir() {
    let mut spec = ArchiveSpec::default();
    spec.add_elf_with_deps("/bin/ls", "/bin/ls").unwrap();
    assert!(matches!(file_entry(&spec, "/bin/ls"), Some(Entry::File { mode: 0o755, .. })));
    assert!(matches!(file_entry(&spec, "/lib64/ld-linux-x86-64.so.2"), Some(Entry::File { .. })));
    assert!(matches!(
        file_entry(&spec, "/lib/x86_64-linux-gnu/libc.so.6"),
        Some(Entry::File { .. })
    ));
    // Dedupe: a second binary with the same libraries adds only itself.
    let before = spec.entries().count();
    spec.add_elf_with_deps("/bin/ls", "/bin/ls2").unwrap();
    assert_eq!(spec.entries().count(), before + 1);
    // The implied directories are in the archive, before their contents.
    let mut buf = Vec::new();
    write_newc(&spec, &mut buf).unwrap();
    let names: Vec<String> = cpio::parse(&buf).unwrap().into_iter().map(|m| m.name).collect();
    let pos = |n: &str| {
        names.iter().position(|x| x == n).unwrap_or_else(|| panic!("{n} missing from {names:?}"))
    };
    assert!(pos("lib") < pos("lib/x86_64-linux-gnu"));
    assert!(pos("lib/x86_64-linux-gnu") < pos("lib/x86_64-linux-gnu/libc.so.6"));
    assert!(pos("lib64") < pos("lib64/ld-linux-x86-64.so.2"));
}

#[test]
fn initramfs_same_library_under_two_names_is_one_file() {
    let mut spec = ArchiveSpec::default();
    spec.place_lib(Path::new("/lib/x86_64-linux-gnu/libc.so.6"), "/lib/x86_64-linux-gnu/libc.so.6")
        .unwrap();
    spec.place_lib(
        Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6"),
        "/lib/x86_64-linux-gnu/libc-alias.so",
    )
    .unwrap();
    assert_eq!(
        file_entry(&spec, "/lib/x86_64-linux-gnu/libc-alias.so"),
        Some(&Entry::Symlink {
            guest_path: "/lib/x86_64-linux-gnu/libc-alias.so".into(),
            target: "/lib/x86_64-linux-gnu/libc.so.6".into()
        })
    );
}

#[test]
fn initramfs_missing_library_names_it_and_the_needing_object() {
    // A copy of /bin/ls whose DT_NEEDED libselinux.so.1 now names a library
    // that exists nowhere (same length, so the string table stays valid).
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("needs-missing");
    let mut data = std::fs::read("/bin/ls").unwrap();
    let (from, to) = (b"libselinux.so.1", b"libktstrnope.so");
    let Some(at) = data.windows(from.len()).position(|w| w == from) else {
        eprintln!(
            "SKIP initramfs_missing_library_names_it_and_the_needing_object: \
             /bin/ls does not need libselinux.so.1 here"
        );
        return;
    };
    data[at..at + to.len()].copy_from_slice(to);
    std::fs::write(&fake, data).unwrap();

    let err = ArchiveSpec::default().add_elf_with_deps(&fake, "/bin/x").unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("libktstrnope.so"), "{msg}");
    assert!(msg.contains(&fake.display().to_string()), "{msg}");
    assert!(msg.contains("/usr/lib/x86_64-linux-gnu"), "should list the dirs searched: {msg}");
}

#[test]
fn initramfs_bad_guest_paths_fail_on_write() {
    let mut spec = ArchiveSpec::default();
    spec.add_bytes("/a/../etc/passwd", b"x".to_vec(), 0o644);
    let err = write_newc(&spec, &mut Vec::new()).unwrap_err();
    assert!(format!("{err}").contains(".."), "{err}");
}

#[test]
fn initramfs_concat_keeps_both_archives_and_rejects_misalignment() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, out) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("out"));
    let mut s1 = ArchiveSpec::default();
    s1.add_bytes("/one", b"1".to_vec(), 0o644);
    let mut s2 = ArchiveSpec::default();
    s2.add_bytes("/ktstr/plan.json", b"{}".to_vec(), 0o644);
    write_newc(&s1, &mut File::create(&a).unwrap()).unwrap();
    write_newc(&s2, &mut File::create(&b).unwrap()).unwrap();
    concat(&[&a, &b], &out).unwrap();
    let all = std::fs::read(&out).unwrap();
    assert_eq!(all.len() as u64, a.metadata().unwrap().len() + b.metadata().unwrap().len());
    let first = cpio::parse(&all).unwrap();
    assert_eq!(first[0].name, "one");
    let second = cpio::parse(&all[a.metadata().unwrap().len() as usize..]).unwrap();
    assert_eq!(second.last().unwrap().name, "ktstr/plan.json");

    std::fs::write(&a, b"abc").unwrap();
    let err = concat(&[&a, &b], &out).unwrap_err();
    assert!(format!("{err}").contains("multiple of 4"), "{err}");
}

/// The archive works as a root filesystem: extract it with the system cpio
/// and run the binary chrooted — no /etc/ld.so.cache, so the loader must
/// find every library through its built-in directories alone.
#[test]
fn initramfs_chroot_runs_packed_stress_ng() {
    let bin = "/usr/bin/stress-ng";
    if !Path::new(bin).exists() {
        eprintln!("SKIP initramfs_chroot_runs_packed_stress_ng: {bin} is not installed");
        return;
    }
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        eprintln!(
            "SKIP initramfs_chroot_runs_packed_stress_ng: NOT ROOT, chroot needs root \
             — the guest loader layout is UNVERIFIED here"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("base.cpio");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut spec = ArchiveSpec::default();
    spec.add_elf_with_deps(bin, bin).unwrap();
    write_newc(&spec, &mut File::create(&archive).unwrap()).unwrap();

    let st = match Command::new("cpio")
        .args(["-idm", "--quiet", "-D"])
        .arg(&root)
        .stdin(File::open(&archive).unwrap())
        .status()
    {
        Ok(st) => st,
        Err(e) => {
            eprintln!(
                "SKIP initramfs_chroot_runs_packed_stress_ng: system cpio unavailable ({e}) \
                 — the guest loader layout is UNVERIFIED here"
            );
            return;
        }
    };
    assert!(st.success(), "cpio -idm failed");
    assert!(!root.join("etc/ld.so.cache").exists());

    let out = Command::new("chroot")
        .arg(&root)
        .args([bin, "--version"])
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && text.contains("stress-ng"),
        "chrooted stress-ng failed: {text}"
    );

    // And the loader's own view inside: every library from the lib dir.
    let out = Command::new("chroot")
        .arg(&root)
        .args(["/lib64/ld-linux-x86-64.so.2", "--list", bin])
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ld.so --list: {text}{}", String::from_utf8_lossy(&out.stderr));
    for line in text.lines().filter(|l| l.contains("=>")) {
        assert!(
            line.contains(&format!("=> {GUEST_LIB_DIR}/")),
            "resolved outside {GUEST_LIB_DIR}: {line}"
        );
    }
}
