//! `ktstr gauntlet`'s command line: the matrix, how it runs, what it writes,
//! and the `ktstr run` arguments every cell shares.

use std::path::PathBuf;

use clap::Args;

use crate::cli::VmmArg;

pub const GAUNTLET_HELP: &str = "\
Every cell is an ordinary `ktstr run` (its own artifacts directory, verdict
and exit code), the cartesian product of --topology × --scheduler ×
(--plugin and --scenario). Cells run in parallel: each reserves its vCPUs
(at most the host's CPUs) and its memory, so the host is never
oversubscribed; under emulation that would turn into timeouts. -j caps how
many run at once.

TOPOLOGIES: NnNlNcNt, a preset or a set of presets (`--list-presets`), `host`
(this machine's shape), or --topology-from FILE (another machine's, from
`lscpu -p=CPU,CORE,SOCKET,NODE,CACHE` or a tarball of /sys/devices/system).

OUTPUT: a progress line while it runs, then a table (cell, verdict, class,
wall time, the payload's headline metrics). Everything goes under --out DIR
(default $KTSTR_CACHE_DIR/runs/gauntlet-*): gauntlet.json and one directory
per cell. --junit FILE writes one testcase per cell.

EXIT CODES:
    0  every cell passed
    1  at least one cell did not pass (its own code is in the table and JSON)
    2  usage error (bad flag, topology, shard)
    5  host error (cannot write the output, no kernel)
  130  interrupted (running cells are stopped and reported; outputs written)

EXAMPLES:
    ktstr gauntlet --scheduler scx_simple --plugin workers --topology small -j 2
    ktstr gauntlet --scheduler eevdf,scx_simple --plugin stress-ng --topology 1n1l2c1t,2n1l1c2t \\
        --junit out.xml --shard 1/2
    ktstr gauntlet --rerun-failed ~/.cache/ktstr/runs/gauntlet-1796227006";

#[derive(Args, Debug, Clone, Default)]
pub struct GauntletArgs {
    /// Topologies (repeatable, or comma lists): NnNlNcNt, a preset, a preset
    /// set, or `host`.
    #[arg(long = "topology", value_name = "LIST")]
    pub topologies: Vec<String>,
    /// Another machine's topology, one more topology of the matrix (repeatable).
    #[arg(long = "topology-from", value_name = "FILE")]
    pub topology_from: Vec<PathBuf>,
    /// Schedulers (repeatable, or comma lists) [default: eevdf].
    #[arg(long = "scheduler", value_name = "LIST")]
    pub schedulers: Vec<String>,
    /// Payload plugins (repeatable, or comma lists).
    #[arg(long = "plugin", value_name = "LIST")]
    pub plugins: Vec<String>,
    /// Scenarios, canned names or TOML files (repeatable, or comma lists).
    #[arg(long = "scenario", value_name = "LIST")]
    pub scenarios: Vec<String>,
    /// At most this many cells at once [default: as many as the host's CPUs
    /// and memory hold].
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Leave out presets with more CPUs than this [default: the test
    /// kernel's NR_CPUS].
    #[arg(long, value_name = "N")]
    pub max_cpus: Option<u32>,
    /// List the topology presets and sets, and exit.
    #[arg(long)]
    pub list_presets: bool,
    /// Print the cells this invocation would run (after --shard), and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Run the I-th of N deterministic parts of the matrix (1-based), for a
    /// CI matrix: the N parts together run every cell exactly once.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Run again the cells that did not pass in an earlier gauntlet's --out DIR,
    /// with the arguments they had.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["topologies", "topology_from", "schedulers", "plugins", "scenarios"]
    )]
    pub rerun_failed: Option<PathBuf>,
    /// Run every cell N times (ids get `-r2`, `-r3`…): does it hold, run after run?
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: usize,
    /// Start no new cell after the first one that does not pass.
    #[arg(long)]
    pub fail_fast: bool,
    /// The gauntlet's directory: gauntlet.json and a directory per cell.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write one JUnit testcase per cell to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write every cell's result as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Guest memory of every cell, MiB or with a suffix.
    #[arg(long, default_value = "1024", help_heading = "Arguments of every cell")]
    pub memory: String,
    /// `ktstr run --duration` of every cell.
    #[arg(long, value_name = "SECS", help_heading = "Arguments of every cell")]
    pub duration: Option<u64>,
    /// A check for every cell (repeatable).
    #[arg(long = "check", value_name = "EXPR", help_heading = "Arguments of every cell")]
    pub checks: Vec<String>,
    /// A payload argument for every cell (repeatable).
    #[arg(
        long = "arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        help_heading = "Arguments of every cell"
    )]
    pub args: Vec<String>,
    /// A scheduler argument for every cell (repeatable).
    #[arg(
        long = "sched-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        help_heading = "Arguments of every cell"
    )]
    pub sched_args: Vec<String>,
    /// A guest kernel parameter for every cell (repeatable).
    #[arg(
        long = "kernel-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        help_heading = "Arguments of every cell"
    )]
    pub kernel_args: Vec<String>,
    /// The kernel of every cell [default: resolved once, as `ktstr run` does].
    #[arg(long, help_heading = "Arguments of every cell")]
    pub kernel: Option<String>,
    /// The VM engine of every cell.
    #[arg(long, value_enum, default_value = "auto", help_heading = "Arguments of every cell")]
    pub vmm: VmmArg,
    /// A disk for every cell (repeatable; `ktstr run --disk`).
    #[arg(long = "disk", value_name = "SPEC", value_parser = parse_disk, help_heading = "Arguments \
        of every cell")]
    pub disks: Vec<String>,
    /// `ktstr run --watchdog` of every cell.
    #[arg(long, value_name = "SECS", help_heading = "Arguments of every cell")]
    pub watchdog: Option<u64>,
    /// More `ktstr run` arguments for every cell (after `--`).
    #[arg(last = true, value_name = "RUN_ARGS")]
    pub extra: Vec<String>,
}

impl GauntletArgs {
    /// The `ktstr run` arguments every cell gets (the kernel comes from the caller,
    /// resolved once so that every cell boots the same one).
    pub fn common_run_args(&self, kernel: &str) -> Vec<String> {
        let mut out = vec!["--memory".to_string(), self.memory.clone()];
        out.extend(["--kernel".to_string(), kernel.to_string()]);
        out.extend(["--vmm".to_string(), vmm_name(self.vmm).to_string()]);
        if let Some(d) = self.duration {
            out.extend(["--duration".to_string(), d.to_string()]);
        }
        if let Some(w) = self.watchdog {
            out.extend(["--watchdog".to_string(), w.to_string()]);
        }
        let repeated = [
            ("--check", &self.checks),
            ("--arg", &self.args),
            ("--sched-arg", &self.sched_args),
            ("--kernel-arg", &self.kernel_args),
            ("--disk", &self.disks),
        ];
        for (flag, values) in repeated {
            // `--flag=value` keeps values that start with a dash values.
            out.extend(values.iter().map(|v| format!("{flag}={v}")));
        }
        out.extend(self.extra.iter().cloned());
        out
    }
}

/// Checked now, kept as text for the cells' command lines.
pub fn parse_disk(s: &str) -> Result<String, String> {
    s.parse::<ktstr_core::disk::DiskSpec>().map(|_| s.to_string())
}

fn vmm_name(v: VmmArg) -> &'static str {
    match v {
        VmmArg::Auto => "auto",
        VmmArg::Qemu => "qemu",
        VmmArg::Kvm => "kvm",
    }
}
