//! `ktstr compare` end to end: a configuration against itself finds no
//! difference, a known difference is found with an interval that excludes
//! zero, a seeded regression fails its gate, and saved results compare again.

use std::path::Path;

use ktstr_tests::{ktstr, vm_tests_enabled};

/// stress-ng on one CPU until it has done as many bogo-ops as a side asks
/// (`--cpu-ops`): a metric that does not depend on timing, so a known
/// difference is the same every run and the test never rests on the host's
/// speed (which a busy 2-core host does not keep steady).
const STRESS: [&str; 7] = [
    "--plugin",
    "stress-ng",
    "--arg=--cpu",
    "--arg=1",
    "--arg=--timeout",
    "--arg=60",
    "--arg=--metrics-brief",
];

fn compare(out: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let json = out.join("doc.json");
    let mut all = vec!["compare", "--out", out.to_str().unwrap(), "--json", json.to_str().unwrap()];
    all.extend_from_slice(args);
    let run = ktstr(&all);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let why = format!("stdout:\n{}\nstderr:\n{}", text(&run.stdout), text(&run.stderr));
    let doc = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no JSON ({e}):\n{why}"));
    (run.status.code().unwrap_or(-1), serde_json::from_str(&doc).unwrap(), why)
}

fn metric<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    let metrics = doc["metrics"].as_array().unwrap();
    metrics.iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("no {name}: {doc:#}"))
}

/// One at a time: a comparison takes the whole host by design.
static HOST: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A against A on a metric that does not depend on timing (stress-ng
/// stopping after 100 bogo-ops): the same value every run, so "no
/// significant difference" is the only right answer, every time.
#[test]
fn a_configuration_against_itself_shows_no_significant_difference() {
    if !vm_tests_enabled("compare_a_a") {
        return;
    }
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let side = "--topology 1n1l1c1t --scheduler eevdf";
    let fixed = [
        "--plugin",
        "stress-ng",
        "--arg=--cpu",
        "--arg=1",
        "--arg=--cpu-ops",
        "--arg=100",
        "--arg=--timeout",
        "--arg=60",
        "--arg=--metrics-brief",
    ];
    let ab = ["--noise-check", "--a", side, "--b", side, "--"];
    let (code, doc, why) = compare(dir.path(), &[&ab[..], &fixed].concat());
    assert_eq!(code, 0, "{why}");
    let m = metric(&doc, "cpu/bogo_ops");
    assert_eq!(m["verdict"], "no significant difference", "{m:#}\n{why}");
    assert_eq!((m["n_a"].as_u64(), m["n_b"].as_u64()), (Some(5), Some(5)), "{why}");
    assert_eq!(m["a"]["median"], m["b"]["median"], "{m:#}");
    assert!(m["ci_rel"][0].as_f64().unwrap() <= 0.0 && m["ci_rel"][1].as_f64().unwrap() >= 0.0);
    assert!(dir.path().join("compare.svg").is_file());
    // --noise-check: a second A, five runs, and A against it is no difference either.
    assert_eq!(doc["noise"]["runs"].as_array().unwrap().len(), 5, "{why}");
    let noise = doc["noise"]["metrics"].as_array().unwrap();
    let bogo = noise.iter().find(|m| m["name"] == "cpu/bogo_ops").expect("the noise of bogo_ops");
    assert_eq!(bogo["verdict"], "no significant difference", "{why}");
    assert!(why.contains("noise floor (A against a second A, interleaved):"), "{why}");
}

/// B asks for twice A's bogo-ops: "better" (higher is better), with an
/// interval that excludes zero; the same runs the other way round are a
/// regression that fails a 5% gate.
#[test]
fn a_known_difference_is_found_and_a_seeded_regression_fails_its_gate() {
    if !vm_tests_enabled("compare_known_difference") {
        return;
    }
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let side = |ops: u32| format!("--topology 1n1l1c1t --arg=--cpu-ops --arg={ops}");
    let (a, b) = (side(100), side(200));
    let args = ["--a", a.as_str(), "--b", b.as_str(), "--"];
    let (code, doc, why) = compare(dir.path(), &[&args[..], &STRESS].concat());
    assert_eq!(code, 0, "{why}");
    let m = metric(&doc, "cpu/bogo_ops");
    assert_eq!(m["verdict"], "better", "{m:#}\n{why}");
    assert_eq!((m["a"]["median"].as_f64(), m["b"]["median"].as_f64()), (Some(100.0), Some(200.0)));
    assert!(m["ci_rel"][0].as_f64().unwrap() > 0.0, "the interval excludes zero: {m:#}");
    // The same runs, saved, compared the other way round: half the bogo-ops
    // is a regression of far more than 5%, and the gate fails.
    let again = tempfile::tempdir().unwrap();
    let saved_a = dir.path().join("saved-a");
    let saved_b = dir.path().join("saved-b");
    for (side, saved) in [("a", &saved_a), ("b", &saved_b)] {
        std::fs::create_dir_all(saved).unwrap();
        for k in 1..=5 {
            let from = dir.path().join(format!("{side}-{k}"));
            std::fs::rename(&from, saved.join(format!("{side}-{k}"))).unwrap();
        }
    }
    let from = |p: &Path| p.to_str().unwrap().to_string();
    let (fa, fb) = (from(&saved_b), from(&saved_a));
    let gate = ["--from", &fa, "--from", &fb, "--gate", "cpu/bogo_ops:5%"];
    let (code, doc, why) = compare(again.path(), &gate);
    assert_eq!(code, 1, "{why}");
    assert_eq!(metric(&doc, "cpu/bogo_ops")["verdict"], "worse", "{why}");
    assert!(doc["gates_failed"][0].as_str().unwrap().starts_with("cpu/bogo_ops: -"), "{why}");
    let (code, _, why) =
        compare(again.path(), &["--from", &fb, "--from", &fa, "--gate", "cpu/bogo_ops:5%"]);
    assert_eq!(code, 0, "an improvement passes the gate: {why}");
}

#[test]
fn bad_input_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().to_str().unwrap();
    for (args, needle) in [
        (vec!["--a", "", "--b", "", "--gate", "ops"], "expected NAME:PCT%"),
        (vec!["--a", "", "--b", "", "--runs", "1"], "--runs must be at least 2"),
        (vec!["--a", "'open", "--b", ""], "unbalanced quotes"),
        (vec!["--from", empty], "--from takes two directories"),
        (vec!["--from", empty, "--from", empty], "no run results (result.json)"),
    ] {
        let out = ktstr(&[&["compare", "--out", empty][..], &args].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
