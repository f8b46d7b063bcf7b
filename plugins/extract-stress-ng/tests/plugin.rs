//! The stress-ng extractor through its public entry point: both formats,
//! and the real stress-ng when installed.

use std::process::Command;

use ktstr_extract_stress_ng::{extract, StressNg, NAME};
use ktstr_plugin_api::{Metric, Plugin};
use ktstr_plugin_support::tool::require_tool;

fn value(m: &[Metric], name: &str) -> Option<f64> {
    m.iter().find(|x| x.name.as_str() == name).map(|x| x.value)
}

#[test]
fn dispatches_on_the_format() {
    let yaml =
        extract(include_str!("../../../tests/fixtures/outputs/stress-ng/cpu2.yaml")).unwrap();
    assert_eq!(value(&yaml, "cpu/bogo_ops_per_sec_real"), Some(4359.071454));
    let brief = extract(include_str!(
        "../../../tests/fixtures/outputs/stress-ng/cpu2.metrics-brief.stderr.txt"
    ))
    .unwrap();
    assert_eq!(value(&brief, "cpu/bogo_ops_per_sec_real"), Some(4359.07));
    assert!(extract("").unwrap().is_empty());
    assert_eq!(StressNg::manifest().name.as_str(), NAME);
}

#[test]
fn real_stress_ng_cpu() {
    let Some(stress_ng) = require_tool("stress-ng") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("out.yaml");
    let out = Command::new(stress_ng)
        .args(["--cpu", "1", "--timeout", "1", "--metrics-brief", "--yaml"])
        .arg(&yaml)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stress-ng failed:\n{stderr}");
    for (what, text) in
        [("--yaml", std::fs::read_to_string(&yaml).unwrap()), ("stderr", stderr.to_string())]
    {
        let m = extract(&text).unwrap();
        assert!(
            value(&m, "cpu/bogo_ops").is_some_and(|v| v > 0.0),
            "no positive cpu/bogo_ops from {what}: {m:?}\n{text}"
        );
    }
}
