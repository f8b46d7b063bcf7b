//! How a run treats its payload, in real VMs: `--duration` is the run
//! length, output stays line-buffered, time limits give PAYLOAD_TIMEOUT,
//! checks range over families with evidence, requirements refuse bad runs
//! before boot. The `forker` fixture library (tests/fixtures/plugins/forker)
//! runs a C program compiled here, since stdio buffering is the point.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use ktstr_tests::{
    build_out_of_tree, ktstr_bin, metric, stdout_json, target_dir, vm_tests_enabled, workspace_root,
};
use serde_json::Value;

/// The fixture library's directory and the compiled forker binary.
fn forker() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let fixture = workspace_root().join("tests/fixtures/plugins/forker");
        let libs = build_out_of_tree(&fixture);
        let dir = target_dir().join("forker/plugins");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(libs.join("libforker_plugins.so"), dir.join("libforker_plugins.so")).unwrap();
        let bin = target_dir().join("forker/ktstr-forker");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        let status = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&bin)
            .arg(fixture.join("forker.c"))
            .status()
            .expect("run cc (build-essential)");
        assert!(status.success(), "cc forker.c failed");
        (dir, bin)
    })
}

/// `ktstr run --plugin-dir FORKER ARGS --json -` with `$KTSTR_FORKER` set.
fn run(args: &[&str]) -> (i32, Value, String) {
    let (dir, bin) = forker();
    let out = Command::new(ktstr_bin())
        .arg("run")
        .arg("--plugin-dir")
        .arg(dir)
        .args(args)
        .args(["--json", "-"])
        .env_remove("KTSTR_PLUGIN_PATH")
        .env("KTSTR_FORKER", bin)
        .output()
        .expect("run ktstr");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code().unwrap_or(-1);
    if code == 2 {
        return (code, Value::Null, stderr);
    }
    (code, stdout_json(&out), stderr)
}

fn check<'a>(doc: &'a Value, text: &str) -> &'a Value {
    let checks = doc["checks"].as_array().unwrap();
    checks.iter().find(|c| c["check"] == text).unwrap_or_else(|| panic!("no check {text}: {doc:#}"))
}

#[test]
fn duration_is_how_long_stress_ng_fio_and_the_workers_run() {
    if !vm_tests_enabled("duration_is_the_run_length") {
        return;
    }
    let out =
        ktstr_tests::ktstr(&["run", "--plugin", "stress-ng", "--duration", "5", "--json", "-"]);
    let doc = stdout_json(&out);
    assert_eq!(doc["verdict"], "PASS", "{doc:#}");
    let wall = metric(&doc, "cpu/wall_clock_s").expect("stress-ng reports its wall clock");
    assert!(wall >= 4.5, "stress-ng ran {wall} s of a 5 s --duration");
    assert!(doc["payload"]["command"].as_str().unwrap().contains("--timeout 5s"));
    // Its YAML report (to /dev/stdout) is what was read, not the stderr table.
    let m = doc["metrics"].as_array().unwrap();
    assert!(m.iter().all(|m| m["stream"] == "stdout"), "{m:#?}");

    // fio by its own job runtime, the workers by the guest's clock.
    let out = ktstr_tests::ktstr(&["run", "--plugin", "fio", "--duration", "4", "--json", "-"]);
    let doc = stdout_json(&out);
    assert_eq!(doc["verdict"], "PASS", "{doc:#}");
    let runtime = metric(&doc, "read/runtime_ms").expect("fio reports its job runtime");
    assert!(runtime >= 3600.0, "fio ran {runtime} ms of a 4 s --duration");
    let out = ktstr_tests::ktstr(&["run", "--plugin", "workers", "--duration", "4", "--json", "-"]);
    let doc = stdout_json(&out);
    assert_eq!(doc["verdict"], "PASS", "{doc:#}");
    assert_eq!(metric(&doc, "duration_s"), Some(4.0));
    let ran = doc["payload"]["end"]["duration_ms"].as_u64().unwrap();
    assert!(ran >= 4000, "the workers ran {ran} ms of a 4 s --duration");
}

#[test]
fn each_result_once_families_checked_and_failed_checks_carry_evidence() {
    if !vm_tests_enabled("each_result_once") {
        return;
    }
    let (code, doc, stderr) = run(&[
        "--plugin",
        "forker",
        "--check",
        "count(result/*)>=3",
        "--check",
        "all(result/*)>=1",
        "--check",
        "result/0>=5",
    ]);
    assert_eq!(code, 1, "{doc:#}\n{stderr}");
    assert_eq!(doc["verdict"], "CHECK_FAILED");
    let names: Vec<&str> =
        doc["metrics"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["result/0", "result/1", "result/2"], "line-buffered: each result once");
    assert_eq!(check(&doc, "count(result/*)>=3")["passed"], true);
    assert_eq!(check(&doc, "all(result/*)>=1")["passed"], true);
    let failed = check(&doc, "result/0>=5");
    let detail = failed["detail"].as_str().unwrap();
    assert!(detail.contains("forker wrote 3 results"), "the extractor's note: {detail}");
    assert!(detail.contains("forker: done after 3 results"), "the stderr tail: {detail}");
    // The hint named a glob; it reached every matching metric.
    assert!(doc["metrics"].as_array().unwrap().iter().all(|m| m["better"] == "higher"));
    // What it left in $KTSTR_OUT_DIR came back with the artifacts.
    let artifacts = PathBuf::from(doc["artifacts"].as_str().unwrap());
    let report = std::fs::read_to_string(artifacts.join("out/forker/report.txt")).unwrap();
    assert_eq!(report, "results=3\n");
}

#[test]
fn buffered_output_printed_twice_is_an_extract_error_naming_the_duplicate() {
    if !vm_tests_enabled("duplicates_are_an_extract_error") {
        return;
    }
    let (code, doc, stderr) = run(&["--plugin", "forker-raw"]);
    assert_eq!(code, 1, "{doc:#}\n{stderr}");
    let detail = check(&doc, "extract")["detail"].as_str().unwrap();
    assert!(detail.contains("metric `result/0` appears more than once"), "{detail}");
}

#[test]
fn a_fixed_length_payload_past_its_limit_times_out_rather_than_failing_a_check() {
    if !vm_tests_enabled("payload_timeout") {
        return;
    }
    let (code, doc, stderr) = run(&["--plugin", "forker-suite", "--duration", "3"]);
    assert_eq!(code, 4, "{doc:#}\n{stderr}");
    assert_eq!(doc["verdict"], "PAYLOAD_TIMEOUT");
    let reason = doc["reason"].as_str().unwrap();
    assert!(reason.contains("timed out after") && reason.contains("fixed-length"), "{reason}");
    assert_eq!(doc["payload"]["end"]["timed_out"], true);
}

#[test]
fn a_payload_for_eevdf_only_is_refused_under_a_sched_ext_scheduler_before_boot() {
    let (code, _, stderr) = run(&["--plugin", "eevdf-only", "--scheduler", "scx_simple"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("payload `eevdf-only` runs under EEVDF only"), "{stderr}");
    assert!(!stderr.contains("booting"), "refused before boot: {stderr}");
}

#[test]
fn a_payload_whose_default_check_does_not_parse_is_listed_as_broken() {
    let (dir, _) = forker();
    let d = dir.to_str().unwrap();
    let v = stdout_json(&ktstr_tests::ktstr(&["list-plugins", "--json", "--plugin-dir", d]));
    let broken = v["broken"].as_array().unwrap();
    let reason =
        broken.iter().find_map(|b| b["error"].as_str().filter(|e| e.contains("bad-check")));
    let reason = reason.unwrap_or_else(|| panic!("bad-check is not listed as broken: {v:#}"));
    assert!(reason.contains("default check") && reason.contains("result/0 >> 1"), "{reason}");
    let names: Vec<&str> =
        v["plugins"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"forker") && !names.contains(&"bad-check"), "{names:?}");
}
