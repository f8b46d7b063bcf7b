//! `ktstr plugin check` and `ktstr plugin new` through the real binary: the
//! check on first-party, broken and badly described plugins, generated
//! crates of each kind that build and pass it, the guide's examples, and
//! one VM run of a generated payload that ships its own binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use ktstr_tests::{
    build_out_of_tree, ensure_built, ktstr, ktstr_bin, ktstr_run, metric, stdout_json, target_dir,
    vm_tests_enabled, workspace_root,
};
use serde_json::Value;

/// `ktstr ARGS` with extra environment variables.
fn ktstr_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(ktstr_bin());
    cmd.args(args).env_remove("KTSTR_PLUGIN_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ktstr")
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn problems(v: &Value) -> Vec<String> {
    let list = v["problems"].as_array().expect("problems");
    list.iter().map(|p| format!("{}: {}; fix: {}", p["subject"], p["what"], p["fix"])).collect()
}

fn check_json(lib: &Path, extra: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut args = vec!["plugin", "check", lib.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = ktstr_env(&args, env);
    (out.status.code().unwrap_or(-1), stdout_json(&out))
}

#[test]
fn first_party_plugins_pass_and_a_missing_binary_is_a_problem() {
    let release = ensure_built();
    let schbench = release.join("libktstr_payload_schbench.so");
    // The env override makes the binary's presence deterministic either way.
    let (code, v) = check_json(&schbench, &[], &[("KTSTR_SCHBENCH", "/bin/true")]);
    assert_eq!((code, v["ok"].as_bool()), (0, Some(true)), "{:#?}", problems(&v));
    let notes = v["notes"].to_string();
    assert!(notes.contains("$KTSTR_SCHBENCH") && notes.contains("/ktstr/bin/true"), "{notes}");
    assert!(notes.contains("extractor `schbench` found on the search path"), "{notes}");

    let (code, v) = check_json(&schbench, &[], &[("KTSTR_SCHBENCH", "/nonexistent/schbench")]);
    assert_eq!(code, 1);
    let p = problems(&v);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].contains("$KTSTR_SCHBENCH is set to /nonexistent/schbench"), "{}", p[0]);

    for lib in ["libktstr_sched_eevdf.so", "libktstr_sched_scx.so", "libktstr_payload_workers.so"] {
        let out = ktstr(&["plugin", "check", release.join(lib).to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{lib}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("OK: no problems found"));
    }
}

#[test]
fn sample_runs_the_extractor_and_a_check_on_an_absent_metric_is_a_problem() {
    let json = ensure_built().join("libktstr_extract_json.so");
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("out.json");
    std::fs::write(&sample, r#"{"a": 1, "b": {"c": 2.5}}"#).unwrap();
    let check = |sample: &Path| {
        ktstr(&["plugin", "check", json.to_str().unwrap(), "--sample", sample.to_str().unwrap()])
    };
    let out = check(&sample);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sample, extractor json") && stdout.contains("b/c"), "{stdout}");

    // The primes example's default check `primes>=1` needs `primes`.
    let primes = build_out_of_tree(&workspace_root().join("examples/primes")).join("libprimes.so");
    std::fs::write(&sample, "rate: 5.5/s\ncpus: 2\n").unwrap();
    let (code, v) = check_json(&primes, &["--sample", sample.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    let p = problems(&v);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].contains("default check `primes>=1` reads `primes`, which matches no metric"),
        "{}",
        p[0]
    );
    assert_eq!(v["samples"][0]["metrics"][0]["name"], "rate");

    let out = check(&dir.path().join("nothing.txt"));
    assert_eq!(out.status.code(), Some(2), "an unreadable sample is a usage error");
}

#[test]
fn files_that_are_not_plugins_are_problems_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("libjunk.so");
    std::fs::write(&junk, b"this is text, not ELF").unwrap();
    let out = ktstr(&["plugin", "check", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("problem: libjunk.so: does not load"));
    let line = line.unwrap_or_else(|| panic!("no load problem: {stdout}"));
    assert!(line.contains("cannot open the library") && line.contains("fix: build it as a cdylib"));

    let named_wrong = dir.path().join("plugin.dll");
    std::fs::copy(ensure_built().join("libktstr_sched_eevdf.so"), &named_wrong).unwrap();
    let (code, v) = check_json(&named_wrong, &[], &[]);
    assert_eq!(code, 1);
    assert!(problems(&v)[0].contains("discovery only loads files named *.so"));

    let out = ktstr(&["plugin", "check", dir.path().join("absent.so").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn every_problem_of_a_bad_manifest_is_on_its_own_line() {
    let built = build_out_of_tree(&workspace_root().join("tests/fixtures/plugins/bad-manifest"));
    let lib = built.join("libbad_manifest_plugin.so");
    let out = ktstr(&["plugin", "check", lib.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("problem: ")).collect();
    let expect = [
        "default check does not parse: bad check `latency>>5`",
        "default arguments: argument `{seconds}`: unknown `{seconds}`",
        "names extractor `no-such-extractor`, which is neither in this library nor on",
        "binary `ktstr-fixture-no-such-binary` is not on PATH nor beside the plugin",
        "extra file `relative/data.txt` is not an absolute path",
        "extra file /nonexistent/ktstr-fixture-data.txt does not exist",
    ];
    assert_eq!(lines.len(), expect.len(), "{stdout}");
    for (line, want) in lines.iter().zip(expect) {
        assert!(line.contains(want) && line.contains("; fix: "), "{line}\nwanted: {want}");
    }
    assert!(stdout.ends_with("6 problems found\n"), "{stdout}");
}

/// `ktstr plugin new NAME --kind KIND --dir DIR EXTRA…`.
fn plugin_new(name: &str, kind: &str, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["plugin", "new", name, "--kind", kind, "--dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    ktstr(&args)
}

/// Writes a fresh crate of `kind` named `name` under the target dir.
fn generate(name: &str, kind: &str, extra: &[&str]) -> PathBuf {
    let dir = target_dir().join("plugin-tool").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let out = plugin_new(name, kind, &dir, extra);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    dir
}

const PAYLOAD: &str = "tool-payload";

/// The generated payload crate, built once per test process.
fn built_payload() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_out_of_tree(&generate(PAYLOAD, "payload", &[])))
}

#[test]
fn a_new_payload_builds_ships_its_binary_and_passes_check() {
    let built = built_payload();
    let lib = built.join("libtool_payload.so");
    let (code, v) = check_json(&lib, &[], &[]);
    assert_eq!(code, 0, "{:#?}", problems(&v));
    let notes = v["notes"].to_string();
    assert!(notes.contains("(beside the plugin), runs in the guest as /ktstr/bin/tool-payload"));
    assert!(notes.contains("extractor `tool-payload` found in this library"), "{notes}");

    // Its program's own output is a sample its extractor reads.
    let run = Command::new(built.join(PAYLOAD)).args(["--seconds", "0.2"]).output().unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let sample = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(sample.path(), &run.stdout).unwrap();
    let (code, v) = check_json(&lib, &["--sample", sample.path().to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{:#?}", problems(&v));
    let names: Vec<&str> = v["samples"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["loops", "rate", "elapsed"]);

    let out = ktstr(&["list-plugins", "--json", "--plugin-dir", built.to_str().unwrap()]);
    let v = stdout_json(&out);
    let mine = v["plugins"].as_array().unwrap().iter().find(|p| p["name"] == PAYLOAD).unwrap();
    assert_eq!(mine["binary_status"]["via"], "beside the plugin", "{mine:#}");
}

#[test]
fn a_new_extractor_and_a_new_scheduler_build_and_pass_check() {
    let api = workspace_root().join("plugin-api");
    let extractor = generate("tool-extractor", "extractor", &["--api-path", api.to_str().unwrap()]);
    let toml = std::fs::read_to_string(extractor.join("Cargo.toml")).unwrap();
    assert!(toml.contains("ktstr-plugin-api = \"1.0\""), "{toml}");
    let abs = api.canonicalize().unwrap();
    let patch = format!("ktstr-plugin-api = {{ path = \"{}\" }}", abs.display());
    assert!(toml.contains(&patch), "{toml}");
    let scheduler = generate("tool-sched", "scheduler", &[]);
    for (dir, lib) in [(extractor, "libtool_extractor.so"), (scheduler, "libtool_sched.so")] {
        let built = build_out_of_tree(&dir);
        let (code, v) = check_json(&built.join(lib), &[], &[]);
        assert_eq!(code, 0, "{lib}: {:#?}", problems(&v));
    }
}

#[test]
fn new_refuses_bad_names_and_directories_with_work_in_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.txt"), b"keep me").unwrap();
    let out = plugin_new("ok-name", "payload", dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(dir.path().join("mine.txt")).unwrap(), b"keep me");
    assert!(!dir.path().join("Cargo.toml").exists());
    for bad in ["9lives", "has space", "dots.not.ok", "fn"] {
        let target = dir.path().join("new");
        let out = plugin_new(bad, "extractor", &target, &[]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(!target.exists(), "{bad}: nothing is written");
    }
}

/// The guide shows the generated sources verbatim (so its examples are the
/// templates that the tests above build), and the primes example's payload.
#[test]
fn the_guide_shows_the_templates_and_the_inline_example_verbatim() {
    let guide = std::fs::read_to_string(workspace_root().join("docs/writing-plugins.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let examples =
        [("my-bench", "payload"), ("kv-lines", "extractor"), ("simple-fifo", "scheduler")];
    for (name, kind) in examples {
        let crate_dir = dir.path().join(name);
        let out = plugin_new(name, kind, &crate_dir, &[]);
        assert!(out.status.success(), "{}", text(&out));
        for entry in std::fs::read_dir(crate_dir.join("src")).unwrap() {
            let path = entry.unwrap().path();
            // The payload's extractor.rs is kv-lines' under another name: shown once.
            if kind == "payload" && path.ends_with("extractor.rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            assert!(guide.contains(&source), "the guide lacks {kind} {}, verbatim", path.display());
        }
    }
    let primes = workspace_root().join("examples/primes/src/payload.rs");
    assert!(guide.contains(&std::fs::read_to_string(primes).unwrap()), "the guide lacks primes");
}

#[test]
fn generated_payload_runs_its_own_binary_in_a_vm() {
    if !vm_tests_enabled("generated_payload_runs_its_own_binary_in_a_vm") {
        return;
    }
    let built = built_payload().to_str().unwrap();
    let args = ["--plugin-dir", built, "--plugin", PAYLOAD, "--topology", "1n1l2c1t"];
    let (code, doc, out) = ktstr_run(&args);
    assert_eq!(code, 0, "{doc:#}\n{}", text(&out));
    assert_eq!(doc["verdict"], "PASS");
    assert!(metric(&doc, "loops").unwrap() >= 1.0, "{:#}", doc["metrics"]);
    assert!(metric(&doc, "rate").unwrap() > 0.0, "{:#}", doc["metrics"]);
    // Its default `--seconds {duration}` got the payload's default of 5 s, and
    // KTSTR_NR_CPUS the guest's 2 CPUs.
    assert!(metric(&doc, "elapsed").unwrap() >= 4.9, "{:#}", doc["metrics"]);
    assert_eq!(metric(&doc, "cpus"), Some(2.0), "{:#}", doc["metrics"]);
}
