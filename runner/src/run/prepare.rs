//! Turning the command line into a run: plugins, binaries, checks, the plan,
//! and the list of what goes into the base initramfs.

use std::path::{Path, PathBuf};

use ktstr_core::check::Check;
use ktstr_core::disk::DiskSpec;
use ktstr_core::plan::{
    PayloadPlan, RunPlan, ScenarioPayloadPlan, ScenarioPlan, SchedulerPlan, BIN_DIR,
};
use ktstr_core::plugin::{payload_spec, Kind, LaunchSpec, MetricHint, PluginRef};
use ktstr_core::protocol::PROTOCOL_VERSION;
use ktstr_core::scenario::Scenario;
use ktstr_core::topology::Topology;

use crate::cli::RunArgs;
use crate::initramfs::ArchiveSpec;
use crate::kernel::KernelEntry;
use crate::plugins::Catalog;

use super::pack::Packer;
use super::payload_run::{context, expand, timing, unmet, Scratch, Timing};
use super::scheduler;
use crate::usage::UsageError;

/// A scenario's run length when the user gives no `--duration`.
const SCENARIO_DURATION_S: u64 = 60;

/// Where the init is in the guest: the kernel runs `/init` from an initramfs.
const INIT_GUEST_PATH: &str = "/init";

pub struct Prepared {
    pub plan: RunPlan,
    pub base: ArchiveSpec,
    pub topology: Topology,
    pub memory_mib: u64,
    /// `plugin: command line`, or `scenario NAME (payloads …)`.
    pub job_desc: String,
    /// A short name for the artifacts directory.
    pub job_name: String,
    pub scheduler_desc: String,
    /// The longest the payload (or scenario) may run inside the guest.
    pub payload_limit_s: u64,
    /// A plain payload's duration and time limit.
    pub timing: Option<Timing>,
    /// The payload's metric hints.
    pub hints: Vec<MetricHint>,
    /// The real machine the topology was taken from, if any.
    pub topology_from: Option<crate::machine::Shape>,
    /// The scenario's `[[disks]]`, then `--disk`s.
    pub disks: Vec<DiskSpec>,
}

/// What the command line asks for, checked before anything else happens.
pub struct Validated<'c> {
    topology: Topology,
    topology_from: Option<crate::machine::Shape>,
    memory_mib: u64,
    job: Job<'c>,
    checks: Vec<Check>,
    launcher: &'c PluginRef,
    launch: LaunchSpec,
    disks: Vec<DiskSpec>,
}

/// One payload, or a scenario and the payload plugins it names.
enum Job<'c> {
    Payload { name: String, payload: &'c PluginRef, extractor: &'c PluginRef },
    Scenario { scenario: Scenario, payloads: Vec<&'c PluginRef> },
}

/// Checks the user's input (usage errors, exit 2) before any host work.
pub fn validate<'c>(args: &RunArgs, catalog: &'c Catalog) -> anyhow::Result<Validated<'c>> {
    let topology_from = match (&args.vm.topology, &args.topology_from) {
        (_, Some(file)) => Some(crate::machine::from_file(file)?),
        (Some(t), _) if t == "host" => Some(crate::machine::host()?),
        _ => None,
    };
    let mut topology = match (&topology_from, &args.vm.topology) {
        (Some(shape), _) => {
            shape.report_notes();
            shape.topology.clone()
        }
        (None, Some(t)) => t.parse().map_err(|e| UsageError(format!("{e}")))?,
        (None, None) => DEFAULT_TOPOLOGY.parse().expect("the default topology parses"),
    };
    let memory_mib = parse_memory(&args.vm.memory).map_err(UsageError)?;
    if args.duration == Some(0) {
        return Err(UsageError("--duration must be at least 1 second".into()).into());
    }
    let mut checks = Vec::new();
    let job = match (&args.plugin, &args.scenario) {
        (Some(name), _) => {
            let payload =
                catalog.require(Kind::Payload, name).map_err(|e| UsageError(format!("{e:#}")))?;
            let pinfo =
                payload.info.payload.as_ref().expect("payload plugins carry a payload section");
            let extractor = catalog
                .require(Kind::Extractor, &pinfo.extractor)
                .map_err(|e| UsageError(format!("payload `{name}` needs {e:#}")))?;
            for text in &pinfo.default_checks {
                checks.push(Check::parse(text).map_err(UsageError)?);
            }
            Job::Payload { name: name.clone(), payload, extractor }
        }
        (None, Some(spec)) => {
            let scenario = load_scenario(spec)?;
            if args.vm.topology.is_none() && args.topology_from.is_none() {
                topology = fitting_topology(&scenario)?;
            }
            scenario
                .validate(&topology)
                .map_err(|e| UsageError(format!("scenario `{}`: {e}", scenario.name)))?;
            let mut payloads = Vec::new();
            for name in scenario.payload_plugins() {
                payloads.push(
                    catalog.require(Kind::Payload, &name).map_err(|e| {
                        UsageError(format!("scenario `{}` runs {e:#}", scenario.name))
                    })?,
                );
            }
            Job::Scenario { scenario, payloads }
        }
        (None, None) => {
            return Err(UsageError("give --plugin PAYLOAD or --scenario FILE|NAME".into()).into())
        }
    };
    for text in &args.checks {
        checks.push(Check::parse(text).map_err(UsageError)?);
    }
    let (launcher, launch) = scheduler::launcher(&args.vm.scheduler, catalog)?;
    let payloads = match &job {
        Job::Payload { payload, .. } => vec![*payload],
        Job::Scenario { payloads, .. } => payloads.clone(),
    };
    for p in payloads {
        let req = &payload_spec(p).requirements;
        if let Some(why) = unmet(&p.info.name, req, &args.vm.scheduler, launch.sched_ext, &topology)
        {
            return Err(UsageError(why).into());
        }
    }
    let mut disks = Vec::new();
    if let Job::Scenario { scenario, .. } = &job {
        for entry in &scenario.disks {
            let spec = entry
                .to_spec()
                .map_err(|e| UsageError(format!("scenario `{}`: {e}", scenario.name)))?;
            disks.push(spec);
        }
    }
    disks.extend(args.disks.iter().cloned());
    ktstr_core::disk::names(&disks).map_err(|e| UsageError(format!("--disk: {e}")))?;
    Ok(Validated { topology, topology_from, memory_mib, job, checks, launcher, launch, disks })
}

/// The topology of a run that names none.
pub const DEFAULT_TOPOLOGY: &str = "1n1l2c1t";
/// Tried in order for a scenario run without --topology.
const SCENARIO_TOPOLOGIES: [&str; 5] = ["1n1l2c1t", "1n2l2c1t", "2n2l2c1t", "1n4l2c1t", "2n4l2c1t"];

/// The smallest of [`SCENARIO_TOPOLOGIES`] the scenario accepts, or a usage
/// error that says to give one.
fn fitting_topology(scenario: &Scenario) -> anyhow::Result<Topology> {
    let mut first_err = None;
    for t in SCENARIO_TOPOLOGIES {
        let topology: Topology = t.parse().expect("the candidate topologies parse");
        match scenario.validate(&topology) {
            Ok(()) => return Ok(topology),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let e = first_err.map(|e| e.to_string()).unwrap_or_default();
    Err(UsageError(format!(
        "scenario `{}` fits none of {}: {e}; give --topology",
        scenario.name,
        SCENARIO_TOPOLOGIES.join(", ")
    ))
    .into())
}

/// A scenario file, else a canned scenario of that name.
fn load_scenario(spec: &str) -> anyhow::Result<Scenario> {
    let path = Path::new(spec);
    let text = if path.is_file() {
        std::fs::read_to_string(path).map_err(|e| UsageError(format!("--scenario {spec}: {e}")))?
    } else if let Some(text) = ktstr_core::scenario::canned(spec) {
        text.to_string()
    } else {
        let names: Vec<&str> =
            ktstr_core::scenario::library().into_iter().map(|(n, _, _)| n).collect();
        return Err(UsageError(format!(
            "--scenario {spec}: no such file and no canned scenario of that name (canned: {})",
            names.join(", ")
        ))
        .into());
    };
    Scenario::from_toml(&text).map_err(|e| UsageError(format!("--scenario {spec}: {e}")).into())
}

/// Resolves binaries against the kernel and builds the plan and archive.
pub fn prepare(
    args: &RunArgs,
    valid: Validated<'_>,
    kernel: &KernelEntry,
) -> anyhow::Result<Prepared> {
    let Validated { topology, topology_from, memory_mib, job, checks, launcher, launch, disks } =
        valid;
    let scratch = Scratch::for_disks(&disks);
    let sched_binary = scheduler::binary(&launch, kernel)?;

    let mut base = ArchiveSpec::default();
    base.add_elf_with_deps(&init_binary()?, INIT_GUEST_PATH)?;
    let sched_guest = match &sched_binary {
        None => None,
        Some(path) => Some(base.add_elf_in_dir(path, BIN_DIR)?),
    };

    let mut packer = Packer::new(&mut base, scratch.clone());
    let (mut timing_of_payload, mut hints) = (None, Vec::new());
    let (payload, scenario, job_desc, job_name, limit_s) = match job {
        Job::Payload { name, payload, extractor } => {
            let spec = payload_spec(payload);
            let t = timing(spec, args.duration);
            let Timing { duration_s, timeout_s } = t;
            (timing_of_payload, hints) = (Some(t), spec.metric_hints.clone());
            let context = context(&name, duration_s, &topology, memory_mib);
            let given = if args.args.is_empty() { &spec.default_args } else { &args.args };
            let argv = expand(given, &context, &scratch)
                .map_err(|e| UsageError(format!("{name}: {e}")))?;
            let binary = packer.payload_binary(payload)?;
            let desc =
                format!("{name}: {} {}", binary.as_deref().unwrap_or("(inline)"), argv.join(" "));
            let plan = PayloadPlan {
                name: name.clone(),
                plugin: packer.plugin(payload)?,
                extractor: packer.plugin(extractor)?,
                metric_stream: spec.metric_stream,
                env: packer.env(spec, &context),
                binary,
                args: argv,
                own_process_group: spec.own_process_group,
                // An interactive shell lasts as long as its user wants.
                timeout_ms: (!args.interactive).then_some(timeout_s * 1000),
                context,
                terminal: args.interactive,
            };
            (Some(plan), None, desc, name, timeout_s)
        }
        Job::Scenario { scenario, payloads } => {
            let duration_s = args.duration.unwrap_or(SCENARIO_DURATION_S);
            let mut planned = Vec::new();
            for p in payloads {
                let (name, spec) = (p.info.name.clone(), payload_spec(p));
                let context = context(&name, duration_s, &topology, memory_mib);
                let default_args = expand(&spec.default_args, &context, &scratch)
                    .map_err(|e| UsageError(format!("{name}: {e}")))?;
                planned.push(ScenarioPayloadPlan {
                    plugin: packer.plugin(p)?,
                    binary: packer.payload_binary(p)?,
                    env: packer.env(spec, &context),
                    default_args,
                    context,
                    name,
                });
            }
            let names: Vec<&str> = planned.iter().map(|p| p.name.as_str()).collect();
            let desc = format!(
                "scenario {} ({} steps{})",
                scenario.name,
                scenario.steps.len(),
                if names.is_empty() {
                    String::new()
                } else {
                    format!("; payloads {}", names.join(", "))
                }
            );
            let name = scenario.name.clone();
            let plan = ScenarioPlan { scenario, payloads: planned, duration_ms: duration_s * 1000 };
            (None, Some(plan), desc, name, duration_s)
        }
    };

    let plan = RunPlan {
        protocol: PROTOCOL_VERSION,
        payload,
        scenario,
        scheduler: SchedulerPlan {
            requested: args.vm.scheduler.clone(),
            launch,
            launcher: launcher.info.name.clone(),
            binary: sched_guest,
            extra_args: args.vm.sched_args.clone(),
        },
        checks,
        topology: topology.to_string(),
        monitor: (args.monitor_interval_ms > 0).then_some(ktstr_core::plan::MonitorPlan {
            interval_ms: args.monitor_interval_ms,
            stall_ms: args.monitor_stall_ms,
        }),
        // Filled in once the disks' images exist (see `crate::disk`).
        disks: Vec::new(),
        setup_only: false,
    };
    let scheduler_desc = match &sched_binary {
        Some(p) => {
            format!("{} ({}, launcher {})", args.vm.scheduler, p.display(), launcher.info.name)
        }
        None => format!("{} (launcher {})", args.vm.scheduler, launcher.info.name),
    };
    Ok(Prepared {
        plan,
        base,
        topology,
        memory_mib,
        job_desc,
        job_name,
        scheduler_desc,
        payload_limit_s: limit_s,
        timing: timing_of_payload,
        hints,
        topology_from,
        disks,
    })
}

/// `ktstr-init`: `$KTSTR_INIT`, else beside this executable.
pub fn init_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("KTSTR_INIT") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let p = exe.with_file_name("ktstr-init");
    anyhow::ensure!(
        p.is_file(),
        "ktstr-init not found at {} (build the workspace with `cargo \
        build --release`, or set KTSTR_INIT)",
        p.display()
    );
    Ok(p)
}

/// `1024`, `512M`, `2G` → MiB.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'G' | 'g')) => (&t[..i], 1024),
        Some((i, 'M' | 'm')) => (&t[..i], 1),
        _ => (t, 1),
    };
    let mib = num
        .parse::<u64>()
        .ok()
        .map(|n| n * mult)
        .ok_or_else(|| format!("bad --memory `{s}`: use MiB (1024) or a suffix (512M, 2G)"))?;
    if !(128..=65536).contains(&mib) {
        return Err(format!("--memory {mib} MiB is out of range (128 MiB to 64 GiB)"));
    }
    Ok(mib)
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_sizes() {
        assert_eq!(super::parse_memory("1024"), Ok(1024));
        assert_eq!(super::parse_memory("2G"), Ok(2048));
        assert_eq!(super::parse_memory("512M"), Ok(512));
        assert!(super::parse_memory("64").is_err());
        assert!(super::parse_memory("lots").unwrap_err().contains("bad --memory"));
    }
}
