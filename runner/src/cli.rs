//! The command line, as clap definitions. Each subcommand's logic lives in
//! `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::kernel::KernelCmd;

#[derive(Parser, Debug)]
#[command(
    name = "ktstr",
    version,
    about = "Test Linux process schedulers (sched_ext and EEVDF) in fresh VMs with exact CPU topologies",
    long_about = "ktstr boots a sched_ext test kernel in a fresh VM with the CPU topology you ask for, \
starts a scheduler, runs a workload (a payload plugin) in cgroups, extracts its metrics, checks \
them, watches the scheduler for crashes and stalls, and prints a verdict with the evidence.\n\n\
Start with `ktstr kernel build` (once), then `ktstr list-plugins` to see what is installed.",
    after_help = crate::exit::HELP
)]
pub struct Cli {
    /// More logging (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Extra directory to search for plugins (repeatable; searched first).
    #[arg(long = "plugin-dir", value_name = "DIR", global = true)]
    pub plugin_dirs: Vec<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List every discovered plugin, its kind, version, ABI status and binary.
    #[command(after_help = PLUGIN_DISCOVERY_HELP)]
    ListPlugins(ListPluginsArgs),
    /// Run a payload's extractor on captured output and print the metrics.
    Extract(ExtractArgs),
    /// Build, list and clean cached sched_ext test kernels.
    #[command(subcommand)]
    Kernel(KernelCmd),
}

pub const PLUGIN_DISCOVERY_HELP: &str = "\
PLUGIN DISCOVERY (first match of a kind+name wins; later ones are reported as shadowed):
    1. --plugin-dir DIR flags, in order
    2. KTSTR_PLUGIN_PATH (colon-separated directories)
    3. plugins/ beside the ktstr executable, then the executable's own directory
       when it is a cargo target directory (development builds)
    4. ~/.local/share/ktstr/plugins
Every *.so file in those directories is tried; one that is not a ktstr plugin is
listed with the reason.";

#[derive(Args, Debug)]
pub struct ListPluginsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show only plugins of this kind.
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Exit non-zero (5) when any plugin failed to load or a binary is missing.
    #[arg(long)]
    pub strict: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindArg {
    Payload,
    Extractor,
    Scheduler,
}

#[derive(Args, Debug)]
#[command(after_help = "EXAMPLES:\n    \
ktstr extract --plugin schbench --stderr schbench.err\n    \
ktstr extract --plugin fio --stdout fio.json --json\n    \
ktstr extract --plugin json --stdout anything.json")]
pub struct ExtractArgs {
    /// A payload plugin (its extractor is used) or an extractor plugin.
    #[arg(long)]
    pub plugin: String,
    /// File holding the captured stdout.
    #[arg(long, value_name = "FILE")]
    pub stdout: Option<PathBuf>,
    /// File holding the captured stderr.
    #[arg(long, value_name = "FILE")]
    pub stderr: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}
