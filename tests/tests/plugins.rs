//! Plugin discovery, ABI checks and `list-plugins` through the real binary.

use ktstr_tests::{
    build_out_of_tree, build_out_of_tree_with_cfg, ktstr, plugin_dir_with, stdout_json,
    workspace_root,
};
use serde_json::Value;

fn names_of_kind(v: &Value, kind: &str) -> Vec<String> {
    v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == kind)
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn first_party_plugins_are_all_listed_and_load() {
    let out = ktstr(&["list-plugins", "--json"]);
    assert!(out.status.success());
    let v = stdout_json(&out);
    let mut payloads = names_of_kind(&v, "payload");
    payloads.sort();
    assert_eq!(payloads, ["exec", "fio", "schbench", "stress-ng", "workers"]);
    let mut extractors = names_of_kind(&v, "extractor");
    extractors.sort();
    assert_eq!(extractors, ["fio", "json", "schbench", "stress-ng"]);
    let mut schedulers = names_of_kind(&v, "scheduler");
    schedulers.sort();
    assert_eq!(schedulers, ["eevdf", "scx"]);
    assert_eq!(v["broken"].as_array().unwrap().len(), 0, "{:#}", v["broken"]);
    for p in v["plugins"].as_array().unwrap() {
        assert_eq!(p["abi_status"], "ok");
        assert!(p["path"].as_str().unwrap().ends_with(".so"));
    }
    // The built-in workers need no binary; payloads that do say where it is.
    let workers = v["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "workers").unwrap();
    assert!(workers["payload"]["binary"].is_null());
    let sched = v["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "scx").unwrap();
    assert_eq!(sched["binary_status"]["status"], "any");
}

#[test]
fn kind_filter_and_human_table() {
    let out = ktstr(&["list-plugins", "--kind", "scheduler"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("eevdf") && text.contains("scx"), "{text}");
    assert!(!text.contains("payload"), "{text}");
}

#[test]
fn broken_plugins_are_listed_with_file_and_reason_and_others_still_load() {
    let oot =
        |name: &str| build_out_of_tree(&workspace_root().join("tests/fixtures/plugins").join(name));
    let panicky = oot("panicky");
    let old_abi = build_out_of_tree_with_cfg(
        &workspace_root().join("tests/fixtures/plugins/old-abi"),
        Some("ktstr_abi_mismatch"),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(panicky.join("libpanicky_plugin.so"), dir.path().join("libpanicky_plugin.so"))
        .unwrap();
    std::fs::copy(old_abi.join("libold_abi_plugin.so"), dir.path().join("libold_abi_plugin.so"))
        .unwrap();
    std::fs::write(dir.path().join("libnot_a_library.so"), b"this is text, not ELF").unwrap();

    let out = ktstr(&["list-plugins", "--json", "--plugin-dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "broken plugins do not fail list-plugins without --strict");
    let v = stdout_json(&out);
    let broken = v["broken"].as_array().unwrap();
    let reason = |file: &str| -> String {
        broken
            .iter()
            .find(|b| b["path"].as_str().unwrap().ends_with(file))
            .unwrap_or_else(|| panic!("{file} not listed as broken: {broken:#?}"))["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let r = reason("libpanicky_plugin.so");
    assert!(
        r.contains("panicked in manifest()") && r.contains("deliberate panic in the test fixture"),
        "{r}"
    );
    let r = reason("libold_abi_plugin.so");
    assert!(
        r.contains("incompatible plugin ABI") && r.contains("9.0.0") && r.contains("1.0.0"),
        "{r}"
    );
    let r = reason("libnot_a_library.so");
    assert!(r.contains("cannot open the library"), "{r}");
    // The first-party plugins still loaded.
    assert_eq!(names_of_kind(&v, "payload").len(), 5);

    let strict = ktstr(&["list-plugins", "--strict", "--plugin-dir", dir.path().to_str().unwrap()]);
    assert_eq!(strict.status.code(), Some(5));
    let text = String::from_utf8_lossy(&strict.stdout);
    assert!(text.contains("Broken plugins (3)"), "{text}");
}

#[test]
fn libraries_that_crash_or_hang_when_opened_are_broken_and_the_rest_works() {
    let built = build_out_of_tree(&workspace_root().join("tests/fixtures/plugins/crashy"));
    let dir =
        plugin_dir_with(&built, &["libsegv_manifest.so", "libabort_ctor.so", "libhang_ctor.so"]);
    let d = dir.path().to_str().unwrap();
    let out = ktstr(&["list-plugins", "--json", "--plugin-dir", d]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    let broken = v["broken"].as_array().unwrap();
    let reason = |file: &str| -> String {
        let b = broken.iter().find(|b| b["path"].as_str().unwrap().ends_with(file));
        b.unwrap_or_else(|| panic!("{file} not listed as broken: {broken:#?}"))["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(reason("libsegv_manifest.so").contains("crashed with SIGSEGV"));
    assert!(reason("libabort_ctor.so").contains("crashed with SIGABRT"));
    assert!(reason("libhang_ctor.so").contains("did not answer within"));
    assert_eq!(names_of_kind(&v, "payload").len(), 5, "the first-party plugins still load");

    // `extract` still works beside them (its extractor runs contained too).
    let sample = dir.path().join("out.json");
    std::fs::write(&sample, r#"{"a": 1, "b": {"c": 2.5}}"#).unwrap();
    let out = ktstr(&[
        "extract",
        "--plugin-dir",
        d,
        "--plugin",
        "json",
        "--stdout",
        sample.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout_json(&out)["metrics"][1]["value"], 2.5);
}

#[test]
fn third_party_example_is_discovered_and_its_extractor_works() {
    let built = build_out_of_tree(&workspace_root().join("examples/primes"));
    let dir = plugin_dir_with(&built, &["libprimes.so"]);
    let d = dir.path().to_str().unwrap();
    let v = stdout_json(&ktstr(&["list-plugins", "--json", "--plugin-dir", d]));
    // One library, two plugins, each listed with the same file.
    let primes: Vec<&Value> =
        v["plugins"].as_array().unwrap().iter().filter(|p| p["name"] == "primes").collect();
    assert_eq!(primes.len(), 2, "{primes:#?}");
    assert_eq!(primes[0]["path"], primes[1]["path"]);
    assert!(names_of_kind(&v, "payload").contains(&"primes".to_string()));
    assert!(names_of_kind(&v, "extractor").contains(&"primes".to_string()));

    let out_file = dir.path().join("out.txt");
    std::fs::write(&out_file, "primes: 1229\nrate: 614.5/s\n").unwrap();
    let out = ktstr(&[
        "extract",
        "--plugin-dir",
        d,
        "--plugin",
        "primes",
        "--stdout",
        out_file.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    assert_eq!(v["extractor"], "primes");
    assert_eq!(v["metrics"][0]["name"], "primes");
    assert_eq!(v["metrics"][0]["value"], 1229.0);
    assert_eq!(v["metrics"][0]["stream"], "stdout");
}

#[test]
fn a_plugin_dir_given_first_shadows_the_built_in_one() {
    let built = ktstr_tests::ensure_built();
    let dir = plugin_dir_with(built, &["libktstr_sched_eevdf.so"]);
    let v = stdout_json(&ktstr(&[
        "list-plugins",
        "--json",
        "--plugin-dir",
        dir.path().to_str().unwrap(),
    ]));
    let eevdf = v["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "eevdf").unwrap();
    assert!(eevdf["path"].as_str().unwrap().starts_with(dir.path().to_str().unwrap()));
    let shadowed = v["shadowed"].as_array().unwrap();
    assert_eq!(shadowed.len(), 1, "{shadowed:#?}");
    assert_eq!(shadowed[0]["name"], "eevdf");
}

#[test]
fn unknown_plugin_and_missing_input_are_usage_errors() {
    let out = ktstr(&["extract", "--plugin", "nope", "--stdout", "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no extractor plugin named `nope`"));
    let out = ktstr(&["extract", "--plugin", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ktstr(&["extract", "--plugin", "json", "--stdout", "/nonexistent/file"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/file"));
}

#[test]
fn manifests_are_cached_and_a_changed_library_is_probed_again() {
    let built = ktstr_tests::ensure_built();
    let dir = plugin_dir_with(built, &["libktstr_sched_eevdf.so"]);
    // A library changed in the last 2 s is probed but not cached (the
    // runner's stamp::SETTLE): this copy must settle first.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let cache = tempfile::tempdir().unwrap();
    let list = || {
        let out = std::process::Command::new(ktstr_tests::ktstr_bin())
            .args(["list-plugins", "--json", "--plugin-dir", dir.path().to_str().unwrap()])
            .env_remove("KTSTR_PLUGIN_PATH")
            .env("KTSTR_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        stdout_json(&out)
    };
    let first = list();
    let file = cache.path().join("plugin-manifests.json");
    let cached: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let lib = dir.path().join("libktstr_sched_eevdf.so");
    assert!(cached["entries"][lib.to_str().unwrap()].is_object(), "{cached:#}");
    assert_eq!(list()["plugins"], first["plugins"], "a warm listing says the same");
    // Same path, other content: the cache must not answer for it.
    std::fs::copy(built.join("libktstr_extract_json.so"), &lib).unwrap();
    let changed = list();
    let at_lib: Vec<&Value> = changed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["path"] == lib.to_str().unwrap())
        .collect();
    assert_eq!(at_lib.len(), 1, "{changed:#}");
    assert_eq!(at_lib[0]["name"], "json");
}

/// `ktstr list-plugins | head -0`: stdout's reader is gone before the
/// first line; ktstr ends quietly with 141 (as a writer into `head` does),
/// not with a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    ktstr_tests::ensure_built();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(ktstr_tests::ktstr_bin())
        .arg("list-plugins")
        .env_remove("KTSTR_PLUGIN_PATH")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
