//! The fio extractor on real fio 3.33 output and variants of it.

use ktstr_extract_fio::extract_fio;
use ktstr_plugin_api::Metric;
use serde_json::Value;

const FIXTURE: &str = include_str!("../../../tests/fixtures/outputs/fio/randread-psync.json");

fn value(metrics: &[Metric], name: &str) -> Option<f64> {
    metrics.iter().find(|m| m.name.as_str() == name).map(|m| m.value)
}

fn unit(metrics: &[Metric], name: &str) -> String {
    metrics.iter().find(|m| m.name.as_str() == name).unwrap().unit.to_string()
}

/// The fixture with its single job replaced by copies named `names`.
fn with_jobs(names: &[&str]) -> String {
    let mut doc: Value = serde_json::from_str(FIXTURE).unwrap();
    let job = doc["jobs"][0].clone();
    doc["jobs"] = names
        .iter()
        .map(|n| {
            let mut j = job.clone();
            j["jobname"] = (*n).into();
            j
        })
        .collect();
    doc.to_string()
}

#[test]
fn randread_psync() {
    let m = extract_fio(FIXTURE).unwrap();
    assert!((value(&m, "read/iops").unwrap() - 23307.846077).abs() < 1e-6);
    assert_eq!(value(&m, "read/bw_kib"), Some(93231.0));
    assert_eq!(value(&m, "job/randread/read/clat_p99_ns"), Some(64256.0));
    assert_eq!(value(&m, "job/randread/read/clat_p99.9_ns"), Some(97792.0));
    assert_eq!(value(&m, "job/randread/read/clat_p99.99_ns"), Some(156672.0));
    assert_eq!(value(&m, "job/randread/read/clat_p50_ns"), Some(39680.0));
    assert_eq!(value(&m, "job/randread/read/clat_p5_ns"), Some(36608.0));
    assert_eq!(value(&m, "job/randread/read/clat_mean_ns"), Some(42191.048028));
    assert_eq!(value(&m, "job/randread/read/lat_mean_ns"), Some(42207.76391));
    assert_eq!(value(&m, "job/randread/read/runtime_ms"), Some(2001.0));
    assert_eq!(value(&m, "job/randread/read/total_ios"), Some(46639.0));
    // One job: the totals carry its percentiles too.
    assert_eq!(value(&m, "read/clat_p99_ns"), Some(64256.0));
    assert_eq!(value(&m, "read/total_ios"), Some(46639.0));
    assert!(
        !m.iter().any(|x| x.name.contains("write/") || x.name.contains("trim/")),
        "idle directions leak: {m:?}"
    );
    assert_eq!(unit(&m, "read/iops"), "ops/s");
    assert_eq!(unit(&m, "read/bw_kib"), "KiB/s");
    assert_eq!(unit(&m, "read/clat_p99_ns"), "ns");
    assert_eq!(unit(&m, "job/randread/read/runtime_ms"), "ms");
    assert_eq!(unit(&m, "read/total_ios"), "count");
}

#[test]
fn skips_warnings_before_the_json() {
    let text = format!("fio: this platform does not support process shared mutexes\n{FIXTURE}");
    assert_eq!(value(&extract_fio(&text).unwrap(), "read/bw_kib"), Some(93231.0));
}

#[test]
fn several_jobs_sum_and_drop_percentile_totals() {
    let m = extract_fio(&with_jobs(&["a", "b/c"])).unwrap();
    assert_eq!(value(&m, "read/bw_kib"), Some(2.0 * 93231.0));
    assert_eq!(value(&m, "read/total_ios"), Some(2.0 * 46639.0));
    assert_eq!(value(&m, "read/clat_p99_ns"), None);
    assert_eq!(value(&m, "job/a/read/clat_p99_ns"), Some(64256.0));
    assert_eq!(value(&m, "job/b~1c/read/clat_p99_ns"), Some(64256.0));
}

#[test]
fn jobs_sharing_a_name_are_numbered() {
    let m = extract_fio(&with_jobs(&["r", "r", "w"])).unwrap();
    assert!(value(&m, "job/r#0/read/iops").is_some());
    assert!(value(&m, "job/r#1/read/iops").is_some());
    assert!(value(&m, "job/w/read/iops").is_some());
    assert_eq!(value(&m, "job/r/read/iops"), None);
}

#[test]
fn errors_and_empty_output() {
    assert!(extract_fio("").unwrap().is_empty());
    assert!(extract_fio("fio: file not found\n").unwrap().is_empty());
    let err = extract_fio("{\"fio version\": \"fio-3.33\"}").unwrap_err();
    assert!(err.contains("\"jobs\""), "{err}");
    let err = extract_fio(&FIXTURE[..FIXTURE.len() / 2]).unwrap_err();
    assert!(err.contains("malformed JSON"), "{err}");
}

#[test]
fn manifest_names_the_extractor() {
    use ktstr_plugin_api::Plugin;
    let m = ktstr_extract_fio::Fio::manifest();
    assert_eq!(m.name.as_str(), ktstr_extract_fio::NAME);
    assert_eq!(m.extractor.unwrap().formats[0].as_str(), "fio-json");
}
