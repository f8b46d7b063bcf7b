//! `ktstr run`: prepare → pack → boot → follow → verdict → report.

mod cmdline;
mod console_watch;
mod engine;
mod exec;
mod kernel_warnings;
mod pack;
mod payload_run;
mod prepare;
mod record;
mod report;
mod scheduler;
mod scheduler_end;
mod session;
pub(crate) mod setup_vm;
mod timeline;
mod vcpus_at_stop;
mod verdict;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::RunArgs;
use crate::plugins::Discovery;
use crate::vm::VmSpec;
use console_watch::ConsoleWatch;
use record::Record;
use report::Outcome;
use verdict::Verdict;

/// Boot, scheduler start and the grace after the payload, under emulation.
const DEFAULT_BUDGET: Duration = Duration::from_secs(150);

pub use engine::kvm_usable;
pub use payload_run::expand as expand_payload_args;
pub use payload_run::DEFAULT_DURATION_S;
pub use prepare::{init_binary, parse_memory};

pub fn execute(args: &RunArgs, discovery: &Discovery) -> anyhow::Result<i32> {
    let wall = Instant::now();
    let args = &*exec::resolve(args);
    crate::interrupt::install();
    let catalog = discovery.scan();
    let valid = prepare::validate(args, &catalog)?;
    let cmdline = cmdline::guest_cmdline(&args.vm.kernel_args)?;
    let (engine, engine_line) = engine::select(args.vm.vmm)?;
    let kernel = crate::kernel::resolve(args.vm.kernel.as_deref())?;
    let mut prepared = prepare::prepare(args, valid, &kernel)?;

    let artifacts = artifacts_dir(args, &prepared.job_name)?;
    let work = tempfile::Builder::new()
        .prefix("ktstr-run-")
        .tempdir()
        .context("create a temporary directory")?;
    let vmlinux = kernel.boot_elf.clone().filter(|_| args.boot_vmlinux && engine.name() == "kvm");
    let image = vmlinux.as_ref().unwrap_or(&kernel.bzimage);
    progress(&format!("kernel {} ({})", kernel.version, image.display()));
    progress(&format!("engine {engine_line}"));
    // Templates first (a one-shot VM builds a missing one), then fresh clones.
    let mut disks =
        crate::disk::RunDisks::prepare(&prepared.disks, engine.as_ref(), &kernel, &mut |l| {
            progress(l)
        })?;
    prepared.plan.disks = disks.plans();
    progress("packing the initramfs…");
    let plan_json = prepared.plan.to_json();
    std::fs::write(artifacts.join("plan.json"), &plan_json)?;
    // An interactive shell's port: the engine connects to this socket at boot.
    let relay =
        args.interactive.then(|| crate::terminal::Relay::listen(work.path())).transpose()?;
    let spec = VmSpec {
        kernel: kernel.bzimage.clone(),
        vmlinux: vmlinux.clone(),
        initramfs: pack::initramfs(&prepared.base, &plan_json, &args.include, work.path())?,
        cmdline,
        topology: prepared.topology.clone(),
        memory_mib: prepared.memory_mib,
        console_log: artifacts.join("console.log"),
        data_out: artifacts.join("data.bin"),
        data_fallback_out: artifacts.join("data-com2.bin"),
        disks: disks.vm_disks(),
        shell_socket: relay.as_ref().map(|r| r.path().to_path_buf()),
    };
    let watchdog = args
        .watchdog
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_BUDGET + Duration::from_secs(prepared.payload_limit_s));
    let watchdog_line = match args.interactive {
        true => "no watchdog (an interactive shell; Ctrl-] q ends it)".to_string(),
        false => format!("watchdog {}s", watchdog.as_secs()),
    };
    progress(&format!(
        "booting {} CPUs ({}{}), {} MiB; {watchdog_line}",
        prepared.topology.cpus(),
        prepared.topology,
        if args.vm.topology.is_none() && args.topology_from.is_none() && args.scenario.is_some() {
            ": the smallest the scenario fits; --topology chooses"
        } else {
            ""
        },
        prepared.memory_mib,
    ));
    let mut record = Record { tee_payload: args.tee_payload, ..Record::default() };
    let mut timeline = timeline::Timeline::new(wall);
    timeline.mark(timeline::Mark::Prepared);
    let limits = session::Limits {
        watchdog,
        stall_grace: Duration::from_secs(args.stall_grace),
        interactive: args.interactive,
    };
    let relay = relay.map(crate::terminal::Relay::start).transpose()?;
    let mut console = ConsoleWatch::new(prepared.plan.scheduler.launch.sched_ext);
    let ended = session::run_vm(
        engine.as_ref(),
        &spec,
        &limits,
        &mut console,
        &mut record,
        &mut timeline,
        &mut |l| progress(&format!("[guest] {l}")),
    );
    // The guest's last output shown, the terminal restored, before any summary.
    if let Some(relay) = relay {
        relay.stop();
    }
    let ended = ended?;
    report::write_artifacts(&artifacts, &record)?;
    if args.keep_disks {
        disks.keep_in(&artifacts.join("disks"))?;
    }
    if let Some(why) = &record.protocol_mismatch {
        anyhow::bail!("{why} (artifacts in {})", artifacts.display());
    }

    let mismatches = topology_mismatches(&prepared.topology, &record);
    if !mismatches.is_empty() && record.finished.is_some() {
        record.checks.push(ktstr_core::check::CheckResult {
            check: format!("topology=={}", prepared.topology),
            passed: false,
            value: None,
            detail: mismatches.join("; "),
        });
    }
    let verdict = Verdict::decide(&record, ended.end, console.class());
    let outcome = Outcome {
        verdict,
        class: verdict.class(&record, console.class()),
        vm_end: ended.end,
        console: &console,
        stall_grace_s: args.stall_grace,
        record: &record,
        kernel: kernel_line(&kernel.version, image, &args.vm.kernel_args),
        engine: report::EngineInfo {
            name: engine.name(),
            description: engine_line,
            peak_rss_kib: ended.peak_rss_kib,
            end_detail: ended.detail.clone(),
            stop_ms: ended.stop_ms,
            vcpus_at_stop: ended
                .vcpus
                .as_ref()
                .map_or_else(Vec::new, |seen| vcpus_at_stop::record(seen, &kernel, &artifacts)),
        },
        topology: prepared.topology.to_string(),
        topology_mismatches: mismatches,
        topology_from: prepared.topology_from.as_ref(),
        scheduler: prepared.scheduler_desc.clone(),
        payload: prepared.job_desc.clone(),
        artifacts: artifacts.clone(),
        wall_ms: wall.elapsed().as_millis(),
        timeline: &timeline,
        console_tail: report::tail_lines(&spec.console_log, 25),
        kernel_panic: report::kernel_panic(&spec.console_log),
        kernel_warnings: if record.kernel_log.is_empty() {
            // The guest never streamed its log: the console has warnings too.
            kernel_warnings::scan(&std::fs::read(&spec.console_log).unwrap_or_default())
        } else {
            kernel_warnings::scan(&record.kernel_log)
        },
        timing: prepared.timing,
        hints: prepared.hints.clone(),
        disks: disks.to_json(&record.disks),
        disk_lines: disks
            .disks
            .iter()
            .map(|d| (d.name.clone(), d.origin(), d.kept.clone()))
            .collect(),
    };
    let doc = serde_json::to_string_pretty(&outcome.to_json())?;
    std::fs::write(artifacts.join("result.json"), &doc)?;
    // The shell's (or --exec command's) exit code is ours, its output went to stdout.
    let command_exit = args.tee_payload || args.interactive;
    match args.json.as_deref() {
        // Only the document: a run's progress already went to stderr.
        Some(p) if p.as_os_str() == "-" => crate::output::stdout(&format!("{doc}\n")),
        // The payload's own output went to stdout: the summary is ours.
        None if command_exit => match exec::command_code(&record, verdict) {
            Some(code) => {
                let what = if args.interactive { "shell" } else { "command" };
                progress(&format!("the {what} exited {code} ({})", artifacts.display()))
            }
            None => eprint!("{}", outcome.summary()),
        },
        // A file and the summary on stdout, or the summary alone.
        json => crate::output::emit(json, &doc, &outcome.summary())?,
    }
    if command_exit {
        return Ok(exec::exit_code(&record, verdict));
    }
    Ok(verdict.exit_code())
}

/// `6.12.117 (/path/bzImage)`, then the user's kernel arguments if any.
fn kernel_line(version: &str, image: &std::path::Path, extra: &[String]) -> String {
    let mut line = format!("{version} ({})", image.display());
    if !extra.is_empty() {
        line.push_str(&format!(" with {}", extra.join(" ")));
    }
    line
}

/// A progress line on stderr, where every `ktstr` progress line goes.
pub fn progress(line: &str) {
    crate::terminal::eprint_line(&format!("[ktstr] {line}"));
}

/// `--artifacts DIR`, or a fresh directory under the cache's `runs/`.
fn artifacts_dir(args: &RunArgs, job_name: &str) -> anyhow::Result<PathBuf> {
    let dir = match &args.artifacts {
        Some(d) => d.clone(),
        None => {
            let runs = crate::kernel::cache_dir().join("runs");
            prune_runs(&runs, KEPT_RUNS);
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            runs.join(format!("{stamp}-{job_name}-{}", std::process::id()))
        }
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("create the artifacts directory {}", dir.display()))?;
    // The engines append to the console log; an earlier run's in a reused
    // --artifacts directory would be read as this run's (its stall reports too).
    let console = dir.join("console.log");
    if console.exists() {
        std::fs::remove_file(&console)
            .with_context(|| format!("remove the earlier run's {}", console.display()))?;
    }
    Ok(dir)
}

/// Runs kept under the cache's `runs/` when no --artifacts is given.
const KEPT_RUNS: usize = 50;

/// Removes all but the newest `keep - 1` run directories (names start with
/// a millisecond timestamp, so name order is age order).
fn prune_runs(runs: &std::path::Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(runs) else { return };
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    dirs.sort();
    let excess = dirs.len().saturating_sub(keep.saturating_sub(1));
    for old in &dirs[..excess] {
        let _ = std::fs::remove_dir_all(old);
    }
}

/// Differences between the requested topology and what the guest reported.
fn topology_mismatches(expected: &ktstr_core::topology::Topology, record: &Record) -> Vec<String> {
    let Some(json) = &record.topology_json else { return Vec::new() };
    match serde_json::from_str::<ktstr_core::topology::GuestTopology>(json) {
        Ok(seen) => ktstr_core::topology::compare(expected, &seen),
        Err(e) => vec![format!("unreadable topology report from the guest: {e}")],
    }
}
