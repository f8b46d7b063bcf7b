//! `ktstr extract` on the real outputs in tests/fixtures/outputs.

use ktstr_tests::{ktstr, stdout_json, workspace_root};

fn fixture(rel: &str) -> String {
    workspace_root().join("tests/fixtures/outputs").join(rel).to_string_lossy().into_owned()
}

fn extract(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["extract", "--json"];
    all.extend_from_slice(args);
    let out = ktstr(&all);
    assert!(out.status.success(), "{:?}: {}", args, String::from_utf8_lossy(&out.stderr));
    stdout_json(&out)
}

fn value(doc: &serde_json::Value, name: &str) -> f64 {
    doc["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {doc:#}"))["value"]
        .as_f64()
        .unwrap()
}

#[test]
fn schbench_stderr_text_via_the_payload_plugin() {
    let doc =
        extract(&["--plugin", "schbench", "--stderr", &fixture("schbench/m1-t2-r3.stderr.txt")]);
    assert_eq!(doc["extractor"], "schbench");
    assert_eq!(value(&doc, "wakeup_latency_p99"), 28.0);
    assert_eq!(value(&doc, "request_latency_p99"), 5528.0);
    assert_eq!(value(&doc, "rps_p50"), 463.0);
    assert_eq!(value(&doc, "average_rps"), 471.0);
    // stdout was empty, so the metrics came from stderr.
    assert_eq!(doc["metrics"][0]["stream"], "stderr");
}

#[test]
fn schbench_json() {
    let doc = extract(&["--plugin", "schbench", "--stdout", &fixture("schbench/m1-t2-r2.json")]);
    assert_eq!(value(&doc, "wakeup_latency_p99"), 27.0);
    assert_eq!(value(&doc, "request_latency_p99.9"), 10160.0);
    assert_eq!(doc["metrics"][0]["stream"], "stdout");
}

#[test]
fn generic_json_keeps_dotted_keys_unambiguous() {
    let doc = extract(&["--plugin", "json", "--stdout", &fixture("schbench/m1-t2-r2.json")]);
    assert_eq!(value(&doc, "int/wakeup_latency_pct99.0"), 27.0);
    assert_eq!(value(&doc, "int/wakeup_latency_pct99.9"), 64.0);
}

#[test]
fn fio_json() {
    let doc = extract(&["--plugin", "fio", "--stdout", &fixture("fio/randread-psync.json")]);
    assert!((value(&doc, "read/iops") - 23307.846077).abs() < 1e-6);
    assert_eq!(value(&doc, "job/randread/read/clat_p99_ns"), 64256.0);
    assert_eq!(value(&doc, "read/bw_kib"), 93231.0);
}

#[test]
fn stress_ng_yaml_and_metrics_brief() {
    let doc = extract(&["--plugin", "stress-ng", "--stdout", &fixture("stress-ng/cpu2.yaml")]);
    assert_eq!(value(&doc, "cpu/bogo_ops"), 8723.0);
    assert!((value(&doc, "cpu/bogo_ops_per_sec_real") - 4359.071454).abs() < 1e-9);
    let doc = extract(&[
        "--plugin",
        "stress-ng",
        "--stderr",
        &fixture("stress-ng/cpu2.metrics-brief.stderr.txt"),
    ]);
    assert_eq!(value(&doc, "cpu/bogo_ops"), 8723.0);
    assert_eq!(value(&doc, "cpu/bogo_ops_per_sec_real"), 4359.07);
    assert_eq!(value(&doc, "cpu/bogo_ops_per_sec_usr_sys"), 2185.94);
}

#[test]
fn stdout_wins_over_stderr_and_they_are_never_merged() {
    let doc = extract(&[
        "--plugin",
        "stress-ng",
        "--stdout",
        &fixture("stress-ng/cpu2.yaml"),
        "--stderr",
        &fixture("stress-ng/cpu2.metrics-brief.stderr.txt"),
    ]);
    let streams: Vec<&str> =
        doc["metrics"].as_array().unwrap().iter().map(|m| m["stream"].as_str().unwrap()).collect();
    assert!(streams.iter().all(|s| *s == "stdout"), "{streams:?}");
    // The YAML value has more precision than the brief table's.
    assert!((value(&doc, "cpu/bogo_ops_per_sec_real") - 4359.071454).abs() < 1e-9);
}

#[test]
fn human_table_output() {
    let out = ktstr(&[
        "extract",
        "--plugin",
        "schbench",
        "--stderr",
        &fixture("schbench/m1-t2-r3.stderr.txt"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("wakeup_latency_p99 ")
            && l.contains(" 28 ")
            && l.contains("us")),
        "{text}"
    );
}
