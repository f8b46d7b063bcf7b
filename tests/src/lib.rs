//! Helpers for ktstr's end-to-end tests: build the workspace once, run the
//! real `ktstr` binary, build out-of-tree plugins.

mod test_scheduler;
pub mod tmux;
pub use test_scheduler::build_test_scheduler;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// `release` or `debug`, matching the profile these tests were built with.
pub fn profile() -> &'static str {
    let exe = std::env::current_exe().expect("current exe");
    if exe.components().any(|c| c.as_os_str() == "release") {
        "release"
    } else {
        "debug"
    }
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds the whole workspace (the `ktstr` binary and every plugin cdylib)
/// once per test process, in this test's profile.
pub fn ensure_built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cmd = cargo();
        cmd.current_dir(workspace_root()).args(["build", "--workspace", "--quiet"]);
        if profile() == "release" {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build of the workspace failed");
        target_dir().join(profile())
    })
}

/// The `ktstr` binary, built.
pub fn ktstr_bin() -> PathBuf {
    ensure_built().join("ktstr")
}

/// Runs `ktstr` with `args` and no plugin path from the environment.
pub fn ktstr(args: &[&str]) -> Output {
    Command::new(ktstr_bin())
        .args(args)
        .env_remove("KTSTR_PLUGIN_PATH")
        .output()
        .expect("run ktstr")
}

/// Builds an out-of-tree Cargo project (release) into a shared target dir
/// and returns the directory holding its `.so` files.
pub fn build_out_of_tree(manifest_dir: &Path) -> PathBuf {
    build_out_of_tree_with_cfg(manifest_dir, None)
}

/// Like [`build_out_of_tree`], with `--cfg CFG` for every crate (how the
/// tests build the API crate as "ABI 1.1" or as another major), in a target
/// dir of its own so the two builds never invalidate each other.
pub fn build_out_of_tree_with_cfg(manifest_dir: &Path, cfg: Option<&str>) -> PathBuf {
    let target = target_dir().join(match cfg {
        None => "out-of-tree".to_string(),
        Some(c) => format!("out-of-tree-{c}"),
    });
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(manifest_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if let Some(c) = cfg {
        cmd.env("RUSTFLAGS", format!("--cfg {c}"));
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "cargo build of {} failed", manifest_dir.display());
    target.join("release")
}

/// Copies the named `.so` files of `from` into a fresh directory, so a
/// test's `--plugin-dir` sees exactly them.
pub fn plugin_dir_with(from: &Path, libs: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for lib in libs {
        std::fs::copy(from.join(lib), dir.path().join(lib))
            .unwrap_or_else(|e| panic!("copy {lib}: {e}"));
    }
    dir
}

/// Parses stdout as JSON, with the whole output in the panic message.
pub fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Whether VM tests can run: a cached kernel and QEMU. Without them the test
/// FAILS with the reason, unless `KTSTR_SKIP_VM_TESTS=1` says to skip (then
/// it prints a loud SKIPPED line and returns false).
pub fn vm_tests_enabled(test: &str) -> bool {
    let missing = vm_prerequisite_missing();
    match missing {
        None => true,
        Some(why) if std::env::var_os("KTSTR_SKIP_VM_TESTS").is_some_and(|v| v == "1") => {
            skip(test, &format!("{why} (KTSTR_SKIP_VM_TESTS=1)"));
            false
        }
        Some(why) => panic!("{test} needs a VM: {why}. Run scripts/setup.sh and `ktstr kernel build`, or set KTSTR_SKIP_VM_TESTS=1 to skip VM tests"),
    }
}

fn vm_prerequisite_missing() -> Option<String> {
    let out = ktstr(&["kernel", "list", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.trim() == "[]" || text.trim().is_empty() {
        return Some("no cached kernel (`ktstr kernel build` makes one)".into());
    }
    let qemu = std::env::var_os("KTSTR_QEMU")
        .map(PathBuf::from)
        .unwrap_or_else(|| "qemu-system-x86_64".into());
    if Command::new(&qemu).arg("--version").output().is_err() {
        return Some(format!(
            "{} is not installed (apt-get install qemu-system-x86)",
            qemu.display()
        ));
    }
    None
}

/// Runs `ktstr run` with `args` plus `--json -`, returning the exit code and
/// the result document.
pub fn ktstr_run(args: &[&str]) -> (i32, serde_json::Value, Output) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "-"]);
    let out = ktstr(&all);
    let code = out.status.code().unwrap_or(-1);
    let doc = stdout_json(&out);
    (code, doc, out)
}

/// `ktstr run ARGS --artifacts DIR --json DIR/doc.json`: the exit code, the
/// document, the human summary (stdout) and the progress (stderr).
pub fn ktstr_run_into(dir: &Path, args: &[&str]) -> (i32, serde_json::Value, String, String) {
    let json = dir.join("doc.json");
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--artifacts", dir.to_str().unwrap()]);
    all.extend_from_slice(&["--json", json.to_str().unwrap()]);
    let out = ktstr(&all);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let doc = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
        .unwrap_or_else(|e| panic!("no result document ({e}):\n{}", text(&out.stderr)));
    (out.status.code().unwrap_or(-1), doc, text(&out.stdout), text(&out.stderr))
}

/// The shortest real job: the workers payload spinning for one second.
pub const SPIN_1S: [&str; 6] =
    ["--plugin", "workers", "--arg=--work", "--arg=spin", "--arg=--duration", "--arg=1"];

/// The value of metric `name` in a result document.
pub fn metric(doc: &serde_json::Value, name: &str) -> Option<f64> {
    doc["metrics"].as_array()?.iter().find(|m| m["name"] == name)?["value"].as_f64()
}

/// Runs `ktstr nested ARGS`, one at a time per test process (each L1 is a
/// whole emulated machine on this machine's few cores). When the emulated L1
/// host's own kernel crashes — a fault of the emulation, not of what runs
/// inside it — or an L2 guest triple-faults inside it (QEMU-KVM's guests fail
/// the same way there), the run is retried once, loudly: on stderr, and as
/// a line in `notes_log()`, which `.ci/run` prints in its final summary. Any
/// other failure inside L1 is never retried.
///
/// L1's KVM shadows L2's page tables (`kvm_amd.npt=0`, `ktstr nested`'s
/// default under TCG): under TCG's emulated nested paging a few L2 boots in
/// a hundred died with corrupt state under either VM engine. What is tested,
/// our VMM inside a real /dev/kvm, is the same either way.
pub fn ktstr_nested(args: &[&str]) -> Output {
    let _turn = nested_turn();
    let mut all = vec!["nested"];
    all.extend_from_slice(args);
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let out = ktstr(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    note_nudges(&test, &stderr);
    let Some(why) = emulated_host_failure(&stdout, &stderr) else { return out };
    eprintln!("\n!!! RETRYING `ktstr {}`: {why}:\n{stdout}\n{stderr}\n", all.join(" "));
    record_note(&format!("RETRIED {test}: {}", why.trim()));
    let again = ktstr(&all);
    note_nudges(&test, &String::from_utf8_lossy(&again.stderr));
    again
}

/// An L1 that waits on an interrupt its emulator lost is sent an NMI by
/// `ktstr nested`, which says so: each one is noted, passing or not.
fn note_nudges(test: &str, stderr: &str) {
    for line in stderr.lines().filter(|l| l.contains("the emulated L1 host lost an interrupt")) {
        eprintln!("\n!!! {test}: {line}\n");
        record_note(&format!("NUDGED {test}: {}", line.trim()));
    }
}

/// One nested run at a time: two L1s would share the host's two cores.
pub fn nested_turn() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records a loud retry of `test` (stderr and `notes_log()`).
pub fn note_retry(test: &str, why: &str, evidence: &str) {
    eprintln!("\n!!! RETRYING {test}: {why}:\n{evidence}\n");
    record_note(&format!("RETRIED {test}: {}", why.trim()));
}

/// Why a nested run failed because of the emulated L1 host (the failures
/// `ktstr_nested` retries once, loudly), if it did.
pub fn emulated_host_failure(stdout: &str, stderr: &str) -> Option<String> {
    let why = match stderr.lines().find(|l| l.contains("the emulated L1 host crashed")) {
        Some(l) => l.to_string(),
        // An L2 that triple-faults during boot inside the emulated L1: QEMU-KVM
        // guests die the same way at the same boot stage in the same L1s
        // (README, Performance), so it is counted as the emulated host's.
        None if stdout.contains("triple fault (KVM_EXIT_SHUTDOWN)") => {
            "L2 triple fault (KVM_EXIT_SHUTDOWN) inside the emulated L1".to_string()
        }
        // The same boot-time L2 failure seen once in CI: /init's first user
        // pages (ld.so's code) read as zeros and it segfaults at start-up.
        None if stdout.contains("Attempted to kill init")
            && stdout.contains("segfault at")
            && stdout.contains("in ld-linux") =>
        {
            "L2 init segfaulted in ld.so at start-up inside the emulated L1".to_string()
        }
        None => return None,
    };
    Some(why)
}

/// Where skipped VM tests and retried nested runs are listed, a line each,
/// so that the end of `.ci/run` can show them (cargo's own summary cannot).
pub fn notes_log() -> PathBuf {
    std::env::var_os("KTSTR_TEST_NOTES")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("ktstr-test-notes.log"))
}

/// Skips `test` loudly: on stderr and in `notes_log()`, so the end of
/// `.ci/run` lists it.
pub fn skip(test: &str, why: &str) {
    eprintln!("\n!!! SKIPPED {test}: {why}\n");
    record_note(&format!("SKIPPED {test}: {why}"));
}

fn record_note(line: &str) {
    use std::io::Write;
    let log = notes_log();
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&log);
    if let Err(e) = file.and_then(|mut f| writeln!(f, "{line}")) {
        eprintln!("!!! could not record the retry in {}: {e}", log.display());
    }
}

/// The API crate as `cargo package` makes it (what the registry would
/// serve), unpacked; built once per test process.
pub fn packaged_api() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = target_dir().join("packaged-api");
        let status = cargo()
            .current_dir(workspace_root())
            .args(["package", "--quiet", "--no-verify", "--allow-dirty", "-p"])
            .arg("ktstr-plugin-api")
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo package");
        assert!(status.success(), "cargo package -p ktstr-plugin-api failed");
        let crate_file = std::fs::read_dir(target.join("package"))
            .expect("cargo package wrote target/package")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "crate"))
            .expect("a .crate file");
        let unpacked = target.join("unpacked");
        let _ = std::fs::remove_dir_all(&unpacked);
        std::fs::create_dir_all(&unpacked).expect("mkdir");
        let status = Command::new("tar")
            .arg("xzf")
            .arg(&crate_file)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .expect("run tar");
        assert!(status.success(), "cannot unpack {}", crate_file.display());
        let stem = crate_file.file_stem().expect("a file name").to_owned();
        unpacked.join(stem)
    })
}

/// Copies the out-of-tree example `examples/NAME` to a fresh directory with
/// its `[patch]` pointed at [`packaged_api`], as a third party building
/// against the published crate would, builds it and returns its release dir.
pub fn build_example_against_packaged_api(name: &str) -> PathBuf {
    let src = workspace_root().join("examples").join(name);
    let dst = target_dir().join("examples-packaged").join(name);
    let _ = std::fs::remove_dir_all(&dst);
    copy_tree(&src, &dst);
    let manifest = dst.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("read the example's Cargo.toml");
    let patched = text.replace(
        r#"path = "../../plugin-api""#,
        &format!("path = {:?}", packaged_api().display().to_string()),
    );
    assert_ne!(text, patched, "the example's Cargo.toml patches ktstr-plugin-api by path");
    std::fs::write(&manifest, patched).expect("write Cargo.toml");
    build_out_of_tree(&dst)
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read_dir").flatten() {
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        if entry.file_name() == "target" {
            continue;
        }
        if from.is_dir() {
            copy_tree(&from, &to);
        } else {
            std::fs::copy(&from, &to).expect("copy");
        }
    }
}
