//! `ktstr nested -- ARGS`: runs `ktstr ARGS` inside an L1 guest booted with
//! QEMU (TCG where KVM does not work here). The L1 kernel has KVM built in,
//! and TCG's `-cpu max` exposes SVM, so L1 has a real `/dev/kvm`: this is how
//! ktstr's own KVM VMM is exercised on machines without usable KVM.
//! `ktstr nested -- bench …` survives L1 dying: see `bench`.

mod archive;
mod bench;
mod hang_report;
mod l1;
mod liveness;

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::cli::{Cli, Command, NestedArgs};
use crate::plugins::Discovery;
use crate::run::{parse_memory, progress};
use crate::usage::UsageError;
use crate::vm::{Accel, QemuEngine, VmEngine as _};

pub fn execute(args: &NestedArgs, discovery: &Discovery) -> Result<i32> {
    if args.args.is_empty() {
        return Err(UsageError(
            "ktstr nested needs the ktstr arguments to run in L1, after `--` \
            (e.g. `ktstr nested -- run --vmm kvm --plugin workers`)"
                .into(),
        )
        .into());
    }
    if args.args.first().is_some_and(|a| a == "nested") {
        return Err(UsageError("ktstr nested cannot run `nested` inside L1".into()).into());
    }
    // The same binary parses them in L1: a refused command line (or a --help)
    // is answered here, at once, rather than after booting L1.
    let inner =
        match Cli::try_parse_from(std::iter::once("ktstr".to_string()).chain(args.args.clone())) {
            Ok(cli) => cli,
            Err(e) => {
                e.print()?;
                return Ok(e.exit_code());
            }
        };
    // A bench inside L1 is driven from here, so that it outlives L1 dying.
    // Its plan (engines, the job) is checked here too, before L1 boots.
    let (bench_args, interactive) = match inner.command {
        Command::Bench(b) => (Some((crate::bench::Plan::new(&b)?, b)), false),
        Command::Shell(s) => (None, s.exec.is_none()),
        _ => (None, false),
    };
    // An interactive shell in L2: L1's ktstr gets a terminal relayed from ours.
    if interactive {
        crate::terminal::require_terminal("give a command with `shell --exec CMD`")?;
    }
    let memory_mib = parse_memory(&args.memory).map_err(UsageError)?;
    let topology = format!("1n1l{}c1t", args.cpus)
        .parse()
        .map_err(|e| UsageError(format!("--cpus {}: {e}", args.cpus)))?;
    crate::interrupt::install();
    let catalog = discovery.scan();
    let kernel = crate::kernel::resolve(args.kernel.as_deref())?;
    // -cpu max under TCG is what exposes SVM+NPT; with working KVM, -cpu host
    // exposes the host's own nested virtualisation.
    let accel = if crate::run::kvm_usable().is_ok() { Accel::Kvm } else { Accel::Tcg };
    let work = tempfile::Builder::new()
        .prefix("ktstr-nested-")
        .tempdir()
        .context("create a temporary directory")?;
    let relay = interactive.then(|| crate::terminal::Relay::listen(work.path())).transpose()?;
    let term = std::env::var("TERM").unwrap_or_default();
    let host = l1::L1Host {
        engine: QemuEngine::detect(Some(accel))?.with_virtualization(),
        kernel: &kernel,
        catalog: &catalog,
        with_qemu: args.with_qemu,
        topology,
        memory_mib,
        // The user ends an interactive shell (Ctrl-] q for a wedged one).
        watchdog: if interactive { Duration::MAX } else { Duration::from_secs(args.watchdog) },
        extra_cmdline: l1_cmdline(accel, args.l1_cmdline.as_deref()),
        terminal: relay
            .as_ref()
            .map(|r| (r.path().to_path_buf(), crate::shell::plain_term(&term).to_string())),
    };
    let artifacts = args.artifacts.clone().unwrap_or_else(|| work.path().to_path_buf());
    progress(&format!(
        "L1: ktstr, {} plugins, kernel {}{}; {} ({} CPUs, {} MiB); {}",
        catalog.plugins.len(),
        kernel.version,
        if args.with_qemu { ", QEMU" } else { "" },
        host.engine.describe(),
        args.cpus,
        memory_mib,
        if interactive {
            "no watchdog".to_string()
        } else {
            format!("watchdog {}s", args.watchdog)
        }
    ));
    let relay = relay.map(crate::terminal::Relay::start).transpose()?;
    let mut l1_deaths = 0;
    let result = match &bench_args {
        Some((plan, b)) => {
            bench::execute(&host, &args.args, plan, b, &artifacts).map(|(code, deaths)| {
                l1_deaths = deaths;
                code
            })
        }
        None => single(&host, &args.args, &artifacts),
    };
    if let Some(relay) = relay {
        relay.stop();
    }
    // Keep the evidence of a failure (the L1 console holds the inner run's),
    // and of an L1 that died under a bench that went on and passed.
    if (!matches!(result, Ok(0)) || l1_deaths > 0) && args.artifacts.is_none() {
        let kept = work.keep();
        progress(&format!("L1 consoles and outputs kept in {}", kept.display()));
    }
    result
}

/// One L1, one inner ktstr: its stdout and exit code become ours.
fn single(host: &l1::L1Host, args: &[String], dir: &std::path::Path) -> Result<i32> {
    let out = host.run(args, dir)?;
    std::io::stdout().write_all(&out.stdout)?;
    std::io::stdout().flush()?;
    match out.code {
        Some(code) => Ok(code),
        None => bail!("{}", out.failure(host.watchdog)),
    }
}

/// Under TCG, L1's KVM shadows L2's page tables (`kvm_amd.npt=0`) instead of
/// using TCG's emulated nested paging, under which about 3 L2 boots in 100
/// died with corrupt state under either engine (triple faults, page faults
/// in the entry code); with shadow paging none did in 431, at 12-20% more
/// time a run (README, Performance). The user's `--l1-cmdline` comes after,
/// so `kvm_amd.npt=1` takes nested paging back. Real KVM keeps its default.
fn l1_cmdline(accel: Accel, user: Option<&str>) -> String {
    let ours = if accel == Accel::Tcg { "kvm_amd.npt=0" } else { "" };
    [ours, user.unwrap_or("")]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l1_shadows_l2_page_tables_under_tcg_unless_the_user_says_otherwise() {
        assert_eq!(l1_cmdline(Accel::Tcg, None), "kvm_amd.npt=0");
        // Later parameters win: the user's choice comes last.
        assert_eq!(l1_cmdline(Accel::Tcg, Some("kvm_amd.npt=1")), "kvm_amd.npt=0 kvm_amd.npt=1");
        assert_eq!(l1_cmdline(Accel::Kvm, None), "");
        assert_eq!(l1_cmdline(Accel::Kvm, Some("quiet")), "quiet");
    }
}
