//! Turning the command line into a run: plugins, binaries, checks, the plan,
//! and the list of what goes into the base initramfs.

use std::path::{Path, PathBuf};

use ktstr_core::check::Check;
use ktstr_core::plan::{
    PayloadPlan, RunPlan, ScenarioPayloadPlan, ScenarioPlan, SchedulerPlan, BIN_DIR, PLUGIN_DIR,
};
use ktstr_core::plugin::{Kind, LaunchSpec, PluginAt, PluginRef};
use ktstr_core::protocol::PROTOCOL_VERSION;
use ktstr_core::scenario::Scenario;
use ktstr_core::topology::Topology;

use crate::cli::RunArgs;
use crate::initramfs::ArchiveSpec;
use crate::kernel::KernelEntry;
use crate::plugins::{locate, Catalog};
use crate::usage::UsageError;

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
}

/// What the command line asks for, checked before anything else happens.
pub struct Validated<'c> {
    topology: Topology,
    memory_mib: u64,
    job: Job<'c>,
    checks: Vec<Check>,
}

/// One payload, or a scenario and the payload plugins it names.
enum Job<'c> {
    Payload { name: String, payload: &'c PluginRef, extractor: &'c PluginRef },
    Scenario { scenario: Scenario, payloads: Vec<&'c PluginRef> },
}

/// Checks the user's input (usage errors, exit 2) before any host work.
pub fn validate<'c>(args: &RunArgs, catalog: &'c Catalog) -> anyhow::Result<Validated<'c>> {
    let topology: Topology = args.topology.parse().map_err(|e| UsageError(format!("{e}")))?;
    let memory_mib = parse_memory(&args.memory).map_err(UsageError)?;
    if args.duration == 0 {
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
    Ok(Validated { topology, memory_mib, job, checks })
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
    catalog: &Catalog,
    valid: Validated<'_>,
    kernel: &KernelEntry,
) -> anyhow::Result<Prepared> {
    let Validated { topology, memory_mib, job, checks } = valid;
    let (launcher, launch, sched_binary) = resolve_scheduler(&args.scheduler, catalog, kernel)?;

    let mut base = ArchiveSpec::default();
    base.add_elf_with_deps(&init_binary()?, INIT_GUEST_PATH)?;
    let sched_guest = match &sched_binary {
        None => None,
        Some(path) => Some(base.add_elf_in_dir(path, BIN_DIR)?),
    };

    let (payload, scenario, job_desc, job_name) = match job {
        Job::Payload { name, payload, extractor } => {
            let pinfo =
                payload.info.payload.as_ref().expect("payload plugins carry a payload section");
            let plugin = pack_plugin(&mut base, payload)?;
            let extractor = pack_plugin(&mut base, extractor)?;
            let binary = pack_payload_binary(&mut base, payload)?;
            let args_for_payload =
                if args.args.is_empty() { pinfo.default_args.clone() } else { args.args.clone() };
            let desc = format!(
                "{name}: {} {}",
                binary.as_deref().unwrap_or("(inline)"),
                args_for_payload.join(" ")
            );
            let plan = PayloadPlan {
                name: name.clone(),
                plugin,
                extractor,
                metric_stream: pinfo.metric_stream,
                binary,
                args: args_for_payload,
                own_process_group: pinfo.own_process_group,
                timeout_ms: Some(args.duration * 1000),
            };
            (Some(plan), None, desc, name)
        }
        Job::Scenario { scenario, payloads } => {
            let mut planned = Vec::new();
            for p in payloads {
                let pinfo =
                    p.info.payload.as_ref().expect("payload plugins carry a payload section");
                planned.push(ScenarioPayloadPlan {
                    name: p.info.name.clone(),
                    plugin: pack_plugin(&mut base, p)?,
                    binary: pack_payload_binary(&mut base, p)?,
                    default_args: pinfo.default_args.clone(),
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
            (
                None,
                Some(ScenarioPlan {
                    scenario,
                    payloads: planned,
                    duration_ms: args.duration * 1000,
                }),
                desc,
                name,
            )
        }
    };

    let plan = RunPlan {
        protocol: PROTOCOL_VERSION,
        payload,
        scenario,
        scheduler: SchedulerPlan {
            requested: args.scheduler.clone(),
            launch,
            launcher: launcher.info.name.clone(),
            binary: sched_guest,
            extra_args: args.sched_args.clone(),
        },
        checks,
        topology: topology.to_string(),
    };
    let scheduler_desc = match &sched_binary {
        Some(p) => format!("{} ({}, launcher {})", args.scheduler, p.display(), launcher.info.name),
        None => format!("{} (launcher {})", args.scheduler, launcher.info.name),
    };
    Ok(Prepared { plan, base, topology, memory_mib, job_desc, job_name, scheduler_desc })
}

/// Packs a plugin library with its dependencies; returns where it is in
/// the guest.
fn pack_plugin(base: &mut ArchiveSpec, p: &PluginRef) -> anyhow::Result<PluginAt> {
    Ok(p.at(base.add_elf_in_dir(&p.path, PLUGIN_DIR)?))
}

/// The binary a payload plugin runs (and its extra files), packed; `None`
/// for inline payloads.
fn pack_payload_binary(base: &mut ArchiveSpec, p: &PluginRef) -> anyhow::Result<Option<String>> {
    let pinfo = p.info.payload.as_ref().expect("payload plugins carry a payload section");
    for extra in &pinfo.extra_files {
        base.add_file(Path::new(extra), extra, 0o644);
    }
    let Some(bin) = &pinfo.binary else { return Ok(None) };
    let found = locate(bin, &[]).map_err(|e| anyhow::anyhow!("payload `{}`: {e}", p.info.name))?;
    base.add_elf_in_dir(&found.path, BIN_DIR).map(Some)
}

/// A scheduler plugin of that exact name (e.g. `eevdf`), else the first
/// launcher that accepts any binary (`scx`). Returns the binary to pack.
fn resolve_scheduler<'c>(
    requested: &str,
    catalog: &'c Catalog,
    kernel: &KernelEntry,
) -> anyhow::Result<(&'c PluginRef, LaunchSpec, Option<PathBuf>)> {
    let exact = catalog
        .find(Kind::Scheduler, requested)
        .filter(|p| !p.info.scheduler.as_ref().is_some_and(|s| s.accepts_any_binary));
    let launcher = match exact {
        Some(p) => p,
        None => catalog
            .plugins
            .iter()
            .find(|p| p.info.scheduler.as_ref().is_some_and(|s| s.accepts_any_binary))
            .ok_or_else(|| UsageError(format!("no scheduler plugin named `{requested}` and no launcher for arbitrary sched_ext binaries (is the `scx` plugin installed?)")))?,
    };
    let spec = launcher
        .launch(requested)
        .map_err(|e| UsageError(format!("scheduler `{requested}`: {e}")))?;
    let Some(binary) = spec.binary.clone() else {
        return Ok((launcher, spec, None));
    };
    if binary.contains('/') {
        let p = PathBuf::from(&binary);
        if !p.is_file() {
            return Err(UsageError(format!("scheduler binary {binary} does not exist")).into());
        }
        return Ok((launcher, spec, Some(p)));
    }
    if let Some(p) = kernel.find_scheduler(&binary) {
        return Ok((launcher, spec, Some(p)));
    }
    if let Some(p) = crate::plugins::find_in_path(&binary) {
        return Ok((launcher, spec, Some(p)));
    }
    let cached: Vec<String> =
        crate::kernel::available_schedulers().into_iter().map(|(n, _)| n).collect();
    Err(UsageError(format!(
        "scheduler `{binary}` not found in the kernel cache entry ({}) nor on PATH; cached schedulers: {}",
        kernel.dir.display(),
        if cached.is_empty() { "none (run `ktstr kernel build`)".into() } else { cached.join(", ") }
    ))
    .into())
}

/// `ktstr-init`: `$KTSTR_INIT`, else beside this executable.
pub fn init_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("KTSTR_INIT") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let p = exe.with_file_name("ktstr-init");
    anyhow::ensure!(p.is_file(), "ktstr-init not found at {} (build the workspace with `cargo build --release`, or set KTSTR_INIT)", p.display());
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
