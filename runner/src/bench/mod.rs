//! `ktstr bench`: time-to-verdict and peak RSS of one trivial run per VM
//! engine, the engines interleaved in the same session, reported as medians
//! and as a ratio against the first engine's peer (see `report`).

pub mod report;
mod stages;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;
use serde::{Deserialize, Serialize};

use crate::cli::BenchArgs;
use crate::usage::UsageError;

/// The trivial job: boot, EEVDF, one second of spinning, verdict.
const TRIVIAL_RUN: [&str; 6] =
    ["--plugin", "workers", "--arg=--work", "--arg=spin", "--arg=--duration", "--arg=1"];

/// With `--emit-samples`, each sample is a line on stderr after this.
pub const SAMPLE_PREFIX: &str = "[bench] sample ";

/// One run of one engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub vmm: String,
    pub round: usize,
    pub wall_ms: u128,
    pub peak_rss_kib: Option<u64>,
    pub verdict: String,
    /// What the run reported about its engine (version, accelerator).
    pub description: String,
    /// The guest kernel's uptime when it started /init, in ms (from its console).
    #[serde(default)]
    pub init_ms: Option<u64>,
    /// The run's own timeline (`timeline` of its `--json`): where the time went.
    #[serde(default)]
    pub timeline: serde_json::Value,
}

/// The `ktstr run` flags the bench sets itself (clap's ids), refused in a job.
const BENCH_SETS: [&str; 5] = ["vmm", "topology", "memory", "json", "boot_vmlinux"];

/// A job (`-- RUN_ARGS`) must be arguments `ktstr run` takes, without the
/// flags the bench sets: refused here, before any run, rather than in each.
/// What clap parsed is asked, so `--arg --json` (a payload's argument) passes.
fn check_job(job: &[String]) -> Result<()> {
    let run = |extra: &[&str]| {
        let argv = ["ktstr", "run"].iter().chain(extra).map(|s| s.to_string());
        crate::cli::Cli::command().try_get_matches_from(argv.chain(job.iter().cloned()))
    };
    let refused = |e: clap::Error| {
        // clap's message up to its usage line: `error: …` and any list.
        let text = e.to_string();
        let lines = text.lines().take_while(|l| !l.is_empty() && !l.starts_with("Usage:"));
        let said = lines.map(str::trim).collect::<Vec<_>>().join(" ");
        let said = said.trim_start_matches("error: ").to_string();
        UsageError(format!("the job after `--` is not for `ktstr run`: {said}"))
    };
    let matches = run(&[]).map_err(refused)?;
    let run_matches = matches.subcommand_matches("run").context("`ktstr run` matches")?;
    let given =
        |id: &&&str| run_matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    if let Some(id) = BENCH_SETS.iter().find(given) {
        let flag = format!("--{}", id.replace('_', "-"));
        let why = format!(
            "the bench sets {flag} itself; give it to the bench (before `--`), not to the job"
        );
        return Err(UsageError(why).into());
    }
    // Then with what the bench adds, which the job may conflict with.
    run(&["--vmm", "kvm", "--topology", "1n1l1c1t", "--memory", "512"]).map_err(refused)?;
    Ok(())
}

/// The job's `ktstr run` arguments: the user's, or the trivial one.
pub(crate) fn job(args: &BenchArgs) -> Vec<String> {
    if args.job.is_empty() {
        TRIVIAL_RUN.iter().map(|s| s.to_string()).collect()
    } else {
        args.job.clone()
    }
}

/// The engines and the interleaved order of their runs.
#[derive(Clone, Debug)]
pub struct Plan {
    pub engines: Vec<String>,
    pub runs: usize,
}

impl Plan {
    pub fn new(args: &BenchArgs) -> Result<Plan> {
        if args.runs == 0 {
            return Err(UsageError("--runs must be at least 1".into()).into());
        }
        let engines: Vec<String> = args
            .vmm
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if let Some(bad) = engines.iter().find(|e| run_args(e).is_none()) {
            return Err(UsageError(format!(
                "--vmm {bad}: engines are `kvm`, `kvm-vmlinux` and `qemu`"
            ))
            .into());
        }
        if engines.is_empty() {
            return Err(UsageError("--vmm names no engine".into()).into());
        }
        check_job(&job(args))?;
        Ok(Plan { engines, runs: args.runs })
    }

    /// Every run as (round, engine), round by round so that drift in the
    /// machine's load hits every engine alike.
    pub fn sequence(&self) -> Vec<(usize, &str)> {
        (0..self.runs).flat_map(|r| self.engines.iter().map(move |e| (r, e.as_str()))).collect()
    }
}

pub fn execute(args: &BenchArgs) -> Result<i32> {
    let plan = Plan::new(args)?;
    crate::interrupt::install();
    let exe = std::env::current_exe().context("find the ktstr executable")?;
    let work = tempfile::Builder::new().prefix("ktstr-bench-").tempdir()?;
    let mut samples = Vec::new();
    for (round, vmm) in plan.sequence().into_iter().skip(args.skip) {
        if crate::interrupt::requested() {
            bail!("interrupted");
        }
        let json = work.path().join(format!("{vmm}-{round}.json"));
        let sample = one_run(&exe, vmm, round, args, &json)?;
        eprintln!(
            "[bench] {vmm} run {}/{}: {} in {} ms, peak RSS {}",
            round + 1,
            plan.runs,
            sample.verdict,
            sample.wall_ms,
            report::fmt_kib(sample.peak_rss_kib)
        );
        if sample.verdict != "PASS" {
            // Why, in the run's own words: its reason and last console lines.
            if let Some(doc) = result_doc(&json) {
                for line in failure_evidence(&doc) {
                    eprintln!("[bench]   {line}");
                }
                if args.emit_samples {
                    // Driven by `ktstr nested`: the run's artifacts die with L1, whose
                    // console the host keeps, so its logs go there whole (not relayed).
                    for line in inner_logs(&doc) {
                        eprintln!("{line}");
                    }
                }
            }
        }
        if args.emit_samples {
            eprintln!("{SAMPLE_PREFIX}{}", serde_json::to_string(&sample)?);
        }
        samples.push(sample);
    }
    report::print(&plan, &samples, None, args)
}

/// The `ktstr run` arguments that pick a bench engine: `kvm-vmlinux` is
/// ktstr-vmm booting the cache entry's uncompressed vmlinux.
fn run_args(engine: &str) -> Option<&'static [&'static str]> {
    match engine {
        "kvm" => Some(&["--vmm", "kvm"]),
        "kvm-vmlinux" => Some(&["--vmm", "kvm", "--boot-vmlinux"]),
        "qemu" => Some(&["--vmm", "qemu"]),
        _ => None,
    }
}

/// Runs `ktstr run` once as a child, so its wall time covers everything a user waits for.
fn one_run(exe: &Path, vmm: &str, round: usize, args: &BenchArgs, json: &Path) -> Result<Sample> {
    let started = Instant::now();
    let status = Command::new(exe)
        .arg("run")
        .args(run_args(vmm).context("a bench engine")?)
        .args(["--topology", &args.topology, "--memory", &args.memory])
        .args(job(args))
        .arg("--json")
        .arg(json)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("run ktstr")?;
    let wall_ms = started.elapsed().as_millis();
    let doc: serde_json::Value = match std::fs::read_to_string(json) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("read {}", json.display()))?
        }
        Err(_) => bail!(
            "`ktstr run --vmm {vmm}` wrote no result (exit {:?}); run it by hand to see why",
            status.code()
        ),
    };
    Ok(Sample {
        vmm: vmm.to_string(),
        round,
        wall_ms,
        peak_rss_kib: doc["engine"]["peak_rss_kib"].as_u64(),
        verdict: doc["verdict"].as_str().unwrap_or("?").to_string(),
        description: doc["engine"]["description"].as_str().unwrap_or_default().to_string(),
        // The kernel log the init streamed; the console only has the line
        // when the boot's info messages go to it (`--kernel-arg loglevel=7`).
        init_ms: doc["artifacts"].as_str().and_then(|dir| {
            ["kmsg.log", "console.log"].iter().find_map(|f| {
                init_uptime_ms(&std::fs::read_to_string(Path::new(dir).join(f)).ok()?)
            })
        }),
        timeline: doc["timeline"].clone(),
    })
}

/// `[    1.424274] Run /init as init process` → 1424.
fn init_uptime_ms(console: &str) -> Option<u64> {
    let line = console.lines().find(|l| l.contains("] Run /init as init process"))?;
    let stamp = line.trim_start().strip_prefix('[')?.split(']').next()?.trim();
    let secs: f64 = stamp.parse().ok()?;
    Some((secs * 1000.0).round() as u64)
}

/// A run's `--json` result, if it wrote one that parses.
fn result_doc(json: &Path) -> Option<serde_json::Value> {
    crate::json_file::load(json)
}

/// The reason and console tail of a failed run's result, for the log.
fn failure_evidence(doc: &serde_json::Value) -> Vec<String> {
    let mut out = vec![format!("reason: {}", doc["reason"].as_str().unwrap_or("?"))];
    let tail = doc["console_tail"].as_array().map(Vec::as_slice).unwrap_or_default();
    out.extend(tail.iter().filter_map(|l| l.as_str()).map(|l| format!("console: {l}")));
    // Where the vCPUs were, when ktstr had to stop a guest that never finished.
    let vcpus = doc["engine"]["vcpus_at_stop"].as_array().map(Vec::as_slice).unwrap_or_default();
    out.extend(vcpus.iter().filter_map(|l| l.as_str()).map(|l| format!("stopped: {l}")));
    if let Some(dir) = doc["artifacts"].as_str() {
        out.push(format!("artifacts: {dir}"));
    }
    out
}

/// A failed run's console and kernel log, whole, each line marked as an inner
/// run's (`L1-inner: `) so that nothing reading L1's console takes it for L1's.
fn inner_logs(doc: &serde_json::Value) -> Vec<String> {
    let Some(dir) = doc["artifacts"].as_str() else { return vec![] };
    let mut out = Vec::new();
    for name in ["console.log", "kmsg.log"] {
        let Ok(log) = std::fs::read(Path::new(dir).join(name)) else { continue };
        out.push(format!("L1-inner: {name} of {dir}:"));
        out.extend(String::from_utf8_lossy(&log).lines().map(|l| format!("L1-inner: {l}")));
    }
    out
}

/// The samples in `text` (lines with `SAMPLE_PREFIX` anywhere in them).
pub fn parse_samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter_map(|l| l.find(SAMPLE_PREFIX).map(|at| &l[at + SAMPLE_PREFIX.len()..]))
        .filter_map(|json| serde_json::from_str(json.trim_end()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(vmm: &str, runs: usize) -> BenchArgs {
        BenchArgs {
            runs,
            vmm: vmm.into(),
            topology: "1n1l2c1t".into(),
            memory: "512".into(),
            json: false,
            skip: 0,
            emit_samples: false,
            job: Vec::new(),
        }
    }

    #[test]
    fn a_job_of_ones_own_replaces_the_trivial_one_unless_it_sets_what_the_bench_does() {
        let mut a = args("kvm,qemu", 1);
        assert_eq!(job(&a), TRIVIAL_RUN);
        a.job = ["--plugin", "fio", "--disk", "64M,fs=ext4"].map(String::from).to_vec();
        assert!(Plan::new(&a).is_ok());
        assert_eq!(job(&a), a.job);
        let refused = |job: &[&str]| {
            let a =
                BenchArgs { job: job.iter().map(|s| s.to_string()).collect(), ..args("kvm", 1) };
            Plan::new(&a).unwrap_err().to_string()
        };
        let e = refused(&["--plugin", "fio", "--vmm=qemu"]);
        assert_eq!(
            e,
            "the bench sets --vmm itself; give it to the bench (before `--`), not to the job"
        );
        assert!(refused(&["--plugin", "fio", "--json", "x"]).contains("sets --json itself"));
        assert!(refused(&["--plugin=fio", "--boot-vmlinux"]).contains("sets --boot-vmlinux"));
        // What clap parsed counts: a payload's argument may look like a bench flag.
        a.job = ["--plugin", "workers", "--arg", "--json"].map(String::from).to_vec();
        assert!(Plan::new(&a).is_ok());
        // A job that conflicts with a flag the bench adds.
        let e = refused(&["--plugin", "fio", "--topology-from", "x"]);
        assert!(e.contains("--topology-from") && e.contains("--topology"), "{e}");
        let e = refused(&["--plugin", "fio", "--no-such-flag"]);
        assert!(
            e.starts_with("the job after `--` is not for `ktstr run`: unexpected argument"),
            "{e}"
        );
    }

    #[test]
    fn a_failed_runs_logs_are_kept_whole_and_marked_as_an_inner_runs() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("console.log"), "[ 1.0] Kernel panic - not syncing: x\n").unwrap();
        let json = dir.path().join("r.json");
        let doc = serde_json::json!({"reason": "crashed", "artifacts": run, "console_tail": []});
        std::fs::write(&json, doc.to_string()).unwrap();
        let doc = result_doc(&json).unwrap();
        let lines = inner_logs(&doc);
        assert_eq!(lines.len(), 2, "console.log only, kmsg.log is missing: {lines:?}");
        assert!(lines[0].starts_with("L1-inner: console.log of "), "{lines:?}");
        assert_eq!(lines[1], "L1-inner: [ 1.0] Kernel panic - not syncing: x");
        let evidence = failure_evidence(&doc);
        assert_eq!(evidence.last().unwrap(), &format!("artifacts: {}", run.display()));
        let stopped = serde_json::json!({"reason": "watchdog", "console_tail": ["c"],
            "engine": {"vcpus_at_stop": ["vCPU 0: kernel, halted, at f+0x1"]}});
        let evidence = failure_evidence(&stopped);
        assert_eq!(
            evidence,
            ["reason: watchdog", "console: c", "stopped: vCPU 0: kernel, halted, at f+0x1"]
        );
    }

    #[test]
    fn runs_interleave_round_by_round() {
        let plan = Plan::new(&args("kvm,qemu", 2)).unwrap();
        assert_eq!(plan.sequence(), [(0, "kvm"), (0, "qemu"), (1, "kvm"), (1, "qemu")]);
        assert!(Plan::new(&args("kvm,xen", 2)).is_err());
        assert!(Plan::new(&args("kvm", 0)).is_err());
        assert!(Plan::new(&args(" , ", 1)).is_err());
    }

    #[test]
    fn the_vmlinux_boot_is_an_engine_of_its_own() {
        let plan = Plan::new(&args("kvm,kvm-vmlinux,qemu", 1)).unwrap();
        assert_eq!(plan.sequence(), [(0, "kvm"), (0, "kvm-vmlinux"), (0, "qemu")]);
        assert_eq!(run_args("kvm-vmlinux"), Some(&["--vmm", "kvm", "--boot-vmlinux"][..]));
        assert_eq!(run_args("kvm"), Some(&["--vmm", "kvm"][..]));
    }

    #[test]
    fn init_uptime_comes_from_the_kernel_timestamp() {
        let console = "[    0.46] printk: console\r\n[    3.424274] Run /init as init process\r\n";
        assert_eq!(init_uptime_ms(console), Some(3424));
        assert_eq!(init_uptime_ms("no init"), None);
    }

    #[test]
    fn samples_survive_a_console_round_trip() {
        let s = Sample {
            vmm: "kvm".into(),
            round: 3,
            wall_ms: 5000,
            peak_rss_kib: Some(1),
            verdict: "PASS".into(),
            description: "d".into(),
            init_ms: Some(1200),
            timeline: serde_json::json!({"booted_ms": 900}),
        };
        let console = format!(
            "[ 1.0] noise\r\n[L1] {SAMPLE_PREFIX}{}\r\n{SAMPLE_PREFIX}{{broken\n",
            serde_json::to_string(&s).unwrap()
        );
        assert_eq!(parse_samples(&console), [s]);
    }
}
