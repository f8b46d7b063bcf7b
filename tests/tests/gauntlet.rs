//! `ktstr gauntlet` end to end: real cells (QEMU VMs), their JUnit parsed
//! back, shards that together run each cell once, a failing cell and its
//! rerun; and `--topology-from` a real two-socket machine's capture.
//!
//! One test at a time: a gauntlet takes the whole host by design.

use std::path::Path;
use std::process::Output;
use std::sync::Mutex;

use ktstr_tests::{ktstr, vm_tests_enabled, workspace_root, SPIN_1S};
use quick_junit::{NonSuccessKind, Report, TestCaseStatus};

static HOST: Mutex<()> = Mutex::new(());

/// `ktstr gauntlet ARGS --out DIR --junit DIR/junit.xml --json DIR/all.json`.
fn gauntlet(dir: &Path, args: &[&str]) -> (i32, Report, serde_json::Value, Output) {
    let (junit, json) = (dir.join("junit.xml"), dir.join("all.json"));
    let mut all = vec!["gauntlet"];
    all.extend_from_slice(args);
    all.extend(["--out", dir.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    all.extend(["--json", json.to_str().unwrap()]);
    let out = ktstr(&all);
    let explain = || format!("stdout:\n{}\nstderr:\n{}", text(&out.stdout), text(&out.stderr));
    let xml =
        std::fs::read_to_string(&junit).unwrap_or_else(|e| panic!("no JUnit ({e})\n{}", explain()));
    let report =
        Report::deserialize_from_str(&xml).unwrap_or_else(|e| panic!("bad JUnit ({e}):\n{xml}"));
    let doc = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (out.status.code().unwrap_or(-1), report, doc, out)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn case_names(report: &Report) -> Vec<String> {
    report.test_suites.iter().flat_map(|s| &s.test_cases).map(|c| c.name.to_string()).collect()
}

#[test]
fn a_matrix_of_three_topologies_passes_with_a_testcase_per_cell() {
    if !vm_tests_enabled("gauntlet_matrix") {
        return;
    }
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let args = ["--scheduler", "scx_simple", "--plugin", "workers"];
    let (code, report, doc, out) = gauntlet(
        dir.path(),
        &[&args[..], &["--topology", "1n1l2c1t,1n2l2c1t,2n1l1c2t", "-j", "2"]].concat(),
    );
    assert_eq!(code, 0, "{doc:#}\n{}", text(&out.stderr));
    assert_eq!(
        case_names(&report),
        [
            "1n1l2c1t-scx_simple-workers",
            "1n2l2c1t-scx_simple-workers",
            "2n1l1c2t-scx_simple-workers"
        ]
    );
    let cases = &report.test_suites[0].test_cases;
    for case in cases {
        assert!(matches!(case.status, TestCaseStatus::Success { .. }), "{case:?}");
        let summary = case.system_out.as_ref().expect("the run's summary").to_string();
        assert!(
            summary.contains("ktstr: PASS") && summary.contains("guest sees exactly this"),
            "{summary}"
        );
    }
    // Each cell is an ordinary run with its own artifacts and verdict.
    for cell in doc["cells"].as_array().unwrap() {
        let dir = Path::new(cell["dir"].as_str().unwrap());
        let result: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap())
                .unwrap();
        assert_eq!(result["topology"]["requested"], cell["cell"]["topology"]);
        assert_eq!(result["scheduler"]["ready"]["ops"], "simple", "{result:#}");
        assert!(dir.join("artifacts/console.log").is_file());
        assert!(
            cell["headline"].as_array().unwrap().iter().any(|m| m[0] == "work_units"),
            "{cell:#}"
        );
    }
    let table = text(&out.stdout);
    assert!(table.contains("3 cells: 3 passed, 0 did not pass, 0 not run"), "{table}");
}

#[test]
fn a_failing_cell_fails_the_gauntlet_and_rerun_failed_runs_only_it() {
    if !vm_tests_enabled("gauntlet_failing_cell") {
        return;
    }
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // One worker thread per CPU, and a check only a one-CPU guest meets.
    let args = [
        "--topology",
        "1n1l1c1t,1n1l2c1t",
        "--plugin",
        "workers",
        "--arg=--work",
        "--arg=spin",
        "--arg=--threads",
        "--arg={nr_cpus}",
        "--arg=--duration",
        "--arg=1",
        "--check",
        "threads<=1",
    ];
    let (code, report, doc, out) = gauntlet(dir.path(), &args);
    assert_eq!(code, 1, "{doc:#}\n{}", text(&out.stderr));
    let cases = &report.test_suites[0].test_cases;
    assert_eq!(case_names(&report), ["1n1l1c1t-eevdf-workers", "1n1l2c1t-eevdf-workers"]);
    assert!(matches!(cases[0].status, TestCaseStatus::Success { .. }), "{:?}", cases[0]);
    match &cases[1].status {
        TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, message, ty, .. } => {
            let message = message.as_ref().unwrap().to_string();
            assert!(
                message.starts_with("CHECK_FAILED: ") && message.contains("threads<=1"),
                "{message}"
            );
            assert_eq!(ty.as_ref().unwrap().as_str(), "CHECK_FAILED");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(doc["cells"][1]["exit_code"], 1, "the cell's own exit code");

    let again = tempfile::tempdir().unwrap();
    let from = dir.path().to_str().unwrap();
    let (code, report, _, out) = gauntlet(again.path(), &["--rerun-failed", from]);
    assert_eq!(code, 1, "{}", text(&out.stderr));
    assert_eq!(case_names(&report), ["1n1l2c1t-eevdf-workers"], "only the failed cell ran again");
}

#[test]
fn shards_together_run_every_cell_exactly_once() {
    if !vm_tests_enabled("gauntlet_shards") {
        return;
    }
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let matrix =
        [&["--topology", "1n1l1c1t", "--scheduler", "eevdf,scx_simple,scx_qmap"][..], &SPIN_1S]
            .concat();
    let plan = ktstr(&[&["gauntlet", "--dry-run"][..], &matrix].concat());
    let mut all: Vec<String> =
        text(&plan.stdout).lines().map(|l| l.split('\t').next().unwrap().to_string()).collect();
    assert_eq!(all.len(), 3, "{}", text(&plan.stdout));
    let mut ran = Vec::new();
    for shard in ["1/2", "2/2"] {
        let dir = tempfile::tempdir().unwrap();
        let (code, report, doc, out) =
            gauntlet(dir.path(), &[&matrix[..], &["--shard", shard]].concat());
        assert_eq!(code, 0, "{doc:#}\n{}", text(&out.stderr));
        assert_eq!(doc["shard"], shard);
        ran.extend(case_names(&report));
    }
    assert_eq!(ran.len(), 3, "{ran:?}");
    ran.sort();
    all.sort();
    assert_eq!(ran, all);
}

#[test]
fn topology_from_a_two_socket_smt_machine_boots_that_shape() {
    if !vm_tests_enabled("topology_from") {
        return;
    }
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let capture = workspace_root().join("tests/fixtures/machines/xeon-e5-2687w-v4-2s-smt.lscpu");
    let dir = tempfile::tempdir().unwrap();
    let from = ["--topology-from", capture.to_str().unwrap()];
    let (code, doc, _, stderr) =
        ktstr_tests::ktstr_run_into(dir.path(), &[&SPIN_1S[..], &from].concat());
    assert_eq!(code, 0, "{doc:#}\n{stderr}");
    // Two nodes of twelve SMT-2 cores, 48 CPUs, each where the capture has it
    // (the guest's own sysfs compared, as for every run).
    assert_eq!(doc["topology"]["requested"], "2n1l12c2t", "{doc:#}");
    assert_eq!(doc["topology"]["mismatches"], serde_json::json!([]), "{doc:#}");
    assert_eq!(doc["topology"]["seen"]["online"].as_array().unwrap().len(), 48);
    assert!(doc["topology"]["from"].as_str().unwrap().ends_with("xeon-e5-2687w-v4-2s-smt.lscpu"));
    let notes = doc["topology"]["approximated"].as_array().unwrap();
    assert!(
        notes.len() == 1 && notes[0].as_str().unwrap().starts_with("CPU numbers differ"),
        "{notes:?}"
    );
    assert!(
        stderr.contains("approximated: CPU numbers differ"),
        "the renumbering is said:\n{stderr}"
    );
}

#[test]
fn bad_input_is_a_usage_error_before_any_cell_runs() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "not a topology").unwrap();
    let junk = junk.to_str().unwrap();
    let missing = dir.path().join("nothing-here");
    for (args, needle) in [
        (vec!["--plugin", "workers", "--topology", "1n2x"], "a preset or set"),
        (
            vec!["--plugin", "workers", "--topology", "tiny", "--shard", "3/2"],
            "--shard 3/2: expected I/N",
        ),
        (vec!["--topology", "tiny"], "no job: give --plugin or --scenario"),
        (vec!["--plugin", "workers"], "no topology"),
        (vec!["--plugin", "workers", "--topology-from", junk], "neither `lscpu -p"),
        (vec!["--rerun-failed", missing.to_str().unwrap()], "is it a gauntlet's --out?"),
    ] {
        let out = ktstr(&[&["gauntlet"][..], &args].concat());
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let out = ktstr(&["gauntlet", "--list-presets"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("numa-smt-16  2n2l2c2t   16 CPUs"), "{}", text(&out.stdout));
}

#[test]
fn fail_fast_stops_starting_cells_and_says_so() {
    if !vm_tests_enabled("gauntlet_fail_fast") {
        return;
    }
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let args = [&SPIN_1S[..], &["--topology", "1n1l1c1t", "--repeat", "2", "-j", "1"]].concat();
    let args = [&args[..], &["--check", "work_units<=0", "--fail-fast"]].concat();
    let (code, report, doc, out) = gauntlet(dir.path(), &args);
    assert_eq!(code, 1, "{doc:#}\n{}", text(&out.stderr));
    let cases = &report.test_suites[0].test_cases;
    assert!(matches!(cases[0].status, TestCaseStatus::NonSuccess { .. }), "{:?}", cases[0]);
    assert!(matches!(cases[1].status, TestCaseStatus::Skipped { .. }), "{:?}", cases[1]);
    assert_eq!(doc["cells"][1]["verdict"], "NOT_RUN");
    assert!(doc["cells"][1]["reason"].as_str().unwrap().contains("--fail-fast"), "{doc:#}");
}

#[test]
fn sigterm_stops_the_running_cells_and_still_writes_every_result() {
    if !vm_tests_enabled("gauntlet_sigterm") {
        return;
    }
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let junit = dir.path().join("junit.xml");
    let child = std::process::Command::new(ktstr_tests::ktstr_bin())
        .args(["gauntlet", "--topology", "1n1l1c1t", "--plugin", "workers", "--repeat", "3"])
        .args(["--arg=--work", "--arg=sleep", "--arg=--duration", "--arg=600", "--duration", "600"])
        .args(["-j", "1", "--out", out_dir, "--junit", junit.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first cell's payload to run.
    let progress = dir.path().join("1n1l1c1t-eevdf-workers/progress.log");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&progress)
        .unwrap_or_default()
        .contains("payload workers started")
    {
        assert!(started.elapsed().as_secs() < 120, "the first cell never started its payload");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let term = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(term.unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("gauntlet.json")).unwrap())
            .unwrap();
    let verdicts: Vec<&str> =
        doc["cells"].as_array().unwrap().iter().map(|c| c["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["INTERRUPTED", "NOT_RUN", "NOT_RUN"], "{doc:#}");
    let report = Report::deserialize_from_str(&std::fs::read_to_string(&junit).unwrap()).unwrap();
    assert_eq!(report.tests, 3);
    // The interrupted cell's own artifacts are kept.
    assert!(dir.path().join("1n1l1c1t-eevdf-workers/artifacts/console.log").is_file());
}
