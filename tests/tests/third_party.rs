//! A third-party plugin suite as its author would build it: out of tree,
//! against the API crate as `cargo package` makes it, run in a real VM.

use ktstr_tests::{
    build_example_against_packaged_api, build_out_of_tree, ktstr_run, metric, plugin_dir_with,
    vm_tests_enabled, workspace_root,
};

#[test]
fn the_primes_suite_runs_to_pass_beside_libraries_that_crash_or_hang() {
    if !vm_tests_enabled("primes_suite") {
        return;
    }
    let primes = build_example_against_packaged_api("primes");
    let crashy = build_out_of_tree(&workspace_root().join("tests/fixtures/plugins/crashy"));
    let dir =
        plugin_dir_with(&crashy, &["libsegv_manifest.so", "libabort_ctor.so", "libhang_ctor.so"]);
    std::fs::copy(primes.join("libprimes.so"), dir.path().join("libprimes.so")).unwrap();
    let (code, doc, out) = ktstr_run(&[
        "--plugin-dir",
        dir.path().to_str().unwrap(),
        "--plugin",
        "primes",
        "--topology",
        "1n1l2c1t",
        "--arg=--seconds",
        "--arg=1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code, 0, "{doc:#}\n{stderr}");
    assert_eq!(doc["verdict"], "PASS");
    // The payload and the extractor of one library both ran in the guest.
    assert!(metric(&doc, "primes").unwrap() >= 1.0, "{doc:#}");
    assert_eq!(metric(&doc, "cpus"), Some(2.0), "the run context told it the guest's CPUs");
}
