//! Runs the real fio (when installed) and reads its output back.

use std::process::Command;

use ktstr_extract_fio::extract_fio;
use ktstr_plugin_support::tool::require_tool;

#[test]
fn real_fio_randread() {
    let Some(fio) = require_tool("fio") else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fio.dat");
    let out = Command::new(fio)
        .args([
            "--name=t",
            "--rw=randread",
            "--size=4M",
            "--bs=4k",
            "--runtime=1",
            "--time_based",
            "--ioengine=psync",
        ])
        .arg(format!("--filename={}", file.display()))
        .arg("--output-format=json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "fio failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let metrics = extract_fio(&stdout).unwrap();
    let iops = metrics.iter().find(|m| m.name.as_str() == "read/iops").map(|m| m.value);
    assert!(iops.is_some_and(|v| v > 0.0), "no positive read/iops in {metrics:?}");
    assert!(metrics.iter().any(|m| m.name.as_str() == "job/t/read/clat_p99_ns"));
}
