//! Builds a sched_ext scheduler of the tests' own (tests/fixtures/schedulers)
//! the way `ktstr kernel build` builds the in-tree examples: with the
//! kernel source's tools/sched_ext, against the cached kernel's BTF. The
//! source subtrees it needs are taken from the kernel's source (the
//! linux-source tarball, or a source directory) once per kernel key.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{ktstr, target_dir, workspace_root};

/// What tools/sched_ext's Makefile reads of the kernel tree: itself,
/// libbpf and bpftool (tools/), their uapi headers and the BPF
/// disassembler bpftool compiles in.
const SUBTREES: [&str; 6] =
    ["tools", "scripts", "include/uapi", "arch/x86/include/uapi", "kernel/bpf", "Makefile"];

/// Builds `name` (`tests/fixtures/schedulers/NAME.bpf.c` and `NAME.c`) and
/// returns the binary; panics with the build log when it fails.
pub fn build_test_scheduler(name: &str) -> PathBuf {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (key, source, vmlinux) = newest_kernel();
    let root = target_dir().join("test-schedulers").join(&key);
    let tree = root.join("src");
    if !tree.join("tools/sched_ext/Makefile").is_file() {
        copy_subtrees(&source, &tree);
    }
    let sched_ext = tree.join("tools/sched_ext");
    for ext in ["bpf.c", "c"] {
        let file = format!("{name}.{ext}");
        let from = workspace_root().join("tests/fixtures/schedulers").join(&file);
        std::fs::copy(&from, sched_ext.join(&file)).unwrap_or_else(|e| panic!("{from:?}: {e}"));
    }
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let log = root.join(format!("{name}.log"));
    let status = Command::new("make")
        .arg("-C")
        .arg(&sched_ext)
        .args(["-j2", "CLANG=clang-19", &format!("c-sched-targets={name}")])
        .arg(format!("VMLINUX_BTF={}", vmlinux.display()))
        .arg(format!("O={}", out.display()))
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .status()
        .expect("run make");
    let built = out.join("build/bin").join(name);
    if !status.success() || !built.is_file() {
        let err = std::fs::read_to_string(log.with_extension("err")).unwrap_or_default();
        panic!("building {name} failed (log {}):\n{err}", log.display());
    }
    built
}

/// The newest cached kernel: its key, source (tarball or directory) and vmlinux.
fn newest_kernel() -> (String, PathBuf, PathBuf) {
    let out = ktstr(&["kernel", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kernel list JSON");
    let entry = &list[0];
    let source = entry["source"].as_str().expect("a cached kernel");
    // `tarball PATH`, or `KIND PATH` for a source directory.
    let path = source.split_once(' ').map_or(source, |(_, p)| p);
    let vmlinux = entry["paths"]["vmlinux"].as_str().expect("the entry keeps vmlinux");
    (entry["key"].as_str().unwrap().to_string(), path.into(), vmlinux.into())
}

/// The needed subtrees of a tarball (`linux-source-*/…`) or a directory into `tree`.
fn copy_subtrees(source: &Path, tree: &Path) {
    let staging = tree.with_extension("partial");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).unwrap();
    let ok = if source.is_dir() {
        SUBTREES.iter().all(|sub| {
            let to = staging.join(sub);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            Command::new("cp").arg("-a").arg(source.join(sub)).arg(&to).status().unwrap().success()
        })
    } else {
        let patterns: Vec<String> = SUBTREES.iter().map(|s| format!("*/{s}")).collect();
        Command::new("tar")
            .arg("-xf")
            .arg(source)
            .arg("-C")
            .arg(&staging)
            .args(["--strip-components=1", "--wildcards", "--no-wildcards-match-slash"])
            .args(&patterns)
            .status()
            .unwrap()
            .success()
    };
    assert!(ok, "could not copy the kernel source's {SUBTREES:?} from {}", source.display());
    std::fs::rename(&staging, tree).unwrap();
}
