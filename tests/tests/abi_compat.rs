//! Plugin ABI compatibility across minor versions, with real libraries: a
//! plugin built against the frozen 1.0 API (tests/fixtures/abi-1.0), and a
//! plugin and a host built against the current API as "ABI 1.1"
//! (`--cfg ktstr_abi_next`: one more manifest field, one more function).
//! The other major (9.0) is refused in tests/tests/plugins.rs.

use std::path::{Path, PathBuf};
use std::process::Command;

use ktstr_tests::{
    build_out_of_tree, build_out_of_tree_with_cfg, ktstr, plugin_dir_with, stdout_json,
    workspace_root,
};
use serde_json::Value;

const NEXT: Option<&str> = Some("ktstr_abi_next");
const ABI_1_0_LIB: &str = "libabi_1_0_plugin.so";
const ABI_NEXT_LIB: &str = "libabi_next_plugin.so";

fn fixture(rel: &str) -> PathBuf {
    workspace_root().join("tests/fixtures").join(rel)
}

/// The directory holding the frozen-1.0 plugin library.
fn abi_1_0_plugin() -> PathBuf {
    build_out_of_tree(&fixture("plugins/abi-1.0-plugin"))
}

/// The directory holding the 1.1 plugin library.
fn abi_next_plugin() -> PathBuf {
    build_out_of_tree_with_cfg(&fixture("plugins/abi-next-plugin"), NEXT)
}

/// Runs the 1.1 host on `lib`, extracting from `text`; its JSON report.
fn abi_next_host(lib: &Path, text: &str) -> Value {
    let host = build_out_of_tree_with_cfg(&fixture("abi-host"), NEXT).join("abi-host");
    let out = Command::new(&host).arg(lib).arg(text).output().expect("run abi-host");
    assert!(
        out.status.success(),
        "abi-host failed on {}:\n{}{}",
        lib.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = stdout_json(&out);
    assert_eq!(doc["host_abi_version"], "1.1.0", "the host was not built as ABI 1.1");
    doc
}

/// `ktstr list-plugins --json` over `dir`: the plugins loaded from it, after
/// checking that nothing in it is broken.
fn listed_from(dir: &Path) -> Vec<Value> {
    let d = dir.to_str().unwrap();
    let out = ktstr(&["list-plugins", "--json", "--plugin-dir", d]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    let broken: Vec<&Value> = v["broken"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["path"].as_str().unwrap().starts_with(d))
        .collect();
    assert!(broken.is_empty(), "listed as broken: {broken:#?}");
    let plugins = v["plugins"].as_array().unwrap().iter();
    plugins.filter(|p| p["path"].as_str().unwrap().starts_with(d)).cloned().collect()
}

/// `ktstr extract` with the plugin `name` of `dir` on stdout `text`.
fn ktstr_extract(dir: &Path, name: &str, text: &str) -> Value {
    let sample = dir.join("stdout.txt");
    std::fs::write(&sample, text).unwrap();
    let out = ktstr(&[
        "extract",
        "--plugin-dir",
        dir.to_str().unwrap(),
        "--plugin",
        name,
        "--stdout",
        sample.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    stdout_json(&out)
}

#[test]
fn a_1_1_host_loads_a_1_0_plugin_and_sees_what_it_predates() {
    let doc = abi_next_host(&abi_1_0_plugin().join(ABI_1_0_LIB), "answer: 42\n");
    let plugins = doc["plugins"].as_array().unwrap();
    let kinds: Vec<&str> = plugins.iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["payload", "extractor"], "{doc:#}");
    for p in plugins {
        assert_eq!(p["name"], "answer");
        assert_eq!(p["abi_version"], "1.0.0");
        // Present as keys (a 1.1 host asked) but null: the plugin predates them.
        assert!(p.get("homepage").is_some_and(Value::is_null), "{p:#}");
        assert!(p.get("self_test").is_some_and(Value::is_null), "{p:#}");
    }
    let x = &doc["extract"];
    assert_eq!(x["plugin"], "answer", "{doc:#}");
    assert_eq!(x["metrics"][0]["name"], "answer");
    assert_eq!(x["metrics"][0]["value"], 42.0);
    let run = &doc["run_inline"];
    assert_eq!(run["exit_code"], 0, "{run:#}");
    let stdout = run["stdout"].as_str().unwrap();
    assert!(stdout.contains("answer: 42\n"), "{stdout}");
    let nr_cpus = std::thread::available_parallelism().unwrap().get();
    assert!(stdout.contains(&format!("cpus: {nr_cpus}\n")), "the RunContext reached it: {stdout}");
}

#[test]
fn a_1_1_host_sees_the_homepage_and_self_test_of_a_1_1_plugin() {
    let doc = abi_next_host(&abi_next_plugin().join(ABI_NEXT_LIB), "answer: 7\n");
    let plugins = doc["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 1, "{doc:#}");
    let p = &plugins[0];
    assert_eq!(p["name"], "abi-next");
    assert_eq!(p["kind"], "extractor");
    assert_eq!(p["abi_version"], "1.1.0");
    assert_eq!(p["homepage"], "https://example.invalid/abi-next");
    assert_eq!(p["self_test"]["ok"], "abi-next says hello from ABI 1.1.0", "{p:#}");
    assert_eq!(doc["extract"]["metrics"][0]["value"], 7.0, "{doc:#}");
    assert!(doc["run_inline"].is_null(), "no payload in this library");
}

#[test]
fn ktstr_a_1_0_host_lists_a_1_1_plugin_and_extracts_with_it() {
    let dir = plugin_dir_with(&abi_next_plugin(), &[ABI_NEXT_LIB]);
    let listed = listed_from(dir.path());
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let p = &listed[0];
    assert_eq!(p["name"], "abi-next");
    assert_eq!(p["kind"], "extractor");
    assert_eq!(p["abi_version"], "1.1.0");
    assert_eq!(p["abi_status"], "ok");

    let v = ktstr_extract(dir.path(), "abi-next", "noise\nanswer: 6\n");
    assert_eq!(v["extractor"], "abi-next");
    assert_eq!(v["metrics"][0]["name"], "answer");
    assert_eq!(v["metrics"][0]["value"], 6.0, "{v:#}");
}

#[test]
fn ktstr_lists_the_frozen_1_0_plugin_and_extracts_with_it() {
    let dir = plugin_dir_with(&abi_1_0_plugin(), &[ABI_1_0_LIB]);
    let listed = listed_from(dir.path());
    let mut kinds: Vec<&str> = listed.iter().map(|p| p["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["extractor", "payload"], "{listed:#?}");
    for p in &listed {
        assert_eq!(p["name"], "answer");
        assert_eq!(p["abi_version"], "1.0.0");
        assert_eq!(p["abi_status"], "ok");
    }
    let payload = listed.iter().find(|p| p["kind"] == "payload").unwrap();
    assert!(payload["payload"]["binary"].is_null(), "an inline payload: {payload:#}");

    let v = ktstr_extract(dir.path(), "answer", "answer: 42\ncpus: 4\n");
    assert_eq!(v["extractor"], "answer");
    assert_eq!(v["metrics"][0]["value"], 42.0, "{v:#}");
    assert_eq!(v["metrics"][1]["name"], "cpus");
}
