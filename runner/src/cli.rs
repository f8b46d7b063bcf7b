//! The command line, as clap definitions. Each subcommand's logic lives in
//! `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::plugin::PluginCmd;
use crate::kernel::KernelCmd;

#[derive(Parser, Debug)]
#[command(
    name = "ktstr",
    version,
    about = "Test Linux process schedulers (sched_ext and EEVDF) in fresh VMs with exact CPU \
        topologies",
    long_about = "ktstr boots a sched_ext test kernel in a fresh VM with the CPU topology you \
ask for, starts a scheduler, runs a workload (a payload plugin) in cgroups, extracts its \
metrics, checks them, watches the scheduler for crashes and stalls, and prints a verdict with \
the evidence.\n\nStart with `ktstr kernel build` (once), then `ktstr list-plugins` to see what \
is installed.",
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
    /// List the canned scenarios (`ktstr run --scenario NAME`).
    ListScenarios(ListScenariosArgs),
    /// Run a payload's extractor on captured output and print the metrics.
    Extract(ExtractArgs),
    /// Tools for plugin authors: check a library, start a new plugin crate.
    #[command(subcommand)]
    Plugin(PluginCmd),
    /// Build, list and clean cached sched_ext test kernels.
    #[command(subcommand)]
    Kernel(KernelCmd),
    /// List and clean the cached disk templates (`ktstr run --disk`).
    #[command(subcommand, after_help = crate::disk::DISK_HELP)]
    Disk(crate::disk::DiskCmd),
    /// Boot a VM, start a scheduler, run a payload, check its metrics.
    #[command(after_help = RUN_HELP)]
    Run(Box<RunArgs>),
    /// A shell in the VM a run would boot, the scheduler running: on your
    /// terminal, or one command with --exec CMD; its exit code is ours.
    #[command(after_help = crate::shell::SHELL_HELP)]
    Shell(Box<crate::shell::ShellArgs>),
    /// Time-to-verdict and peak RSS of a trivial run (or a job of yours), per VM engine.
    #[command(after_help = BENCH_HELP)]
    Bench(BenchArgs),
    /// Run a matrix of topologies × schedulers × payloads, in parallel, for people and CI.
    #[command(after_help = crate::gauntlet::args::GAUNTLET_HELP)]
    Gauntlet(Box<crate::gauntlet::args::GauntletArgs>),
    /// Is B better than A? Repeated interleaved runs, statistics, a verdict per metric.
    #[command(after_help = crate::compare::args::COMPARE_HELP)]
    Compare(Box<crate::compare::args::CompareArgs>),
    /// Run ktstr itself inside an L1 VM (QEMU) that has a real /dev/kvm.
    #[command(after_help = NESTED_HELP)]
    Nested(NestedArgs),
    /// Internal (L1's init, for `ktstr nested -- shell`): PROGRAM on a PTY
    /// relayed to the virtio port PORT; its exit code is ours.
    #[command(name = "on-terminal", hide = true)]
    OnTerminal {
        port: PathBuf,
        program: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

pub const BENCH_HELP: &str = "\
Each round runs `ktstr run --plugin workers` (one second of spinning under
EEVDF) once per engine, engines interleaved; the report gives the median
time-to-verdict (the wall time of the whole `ktstr run`, boot to verdict) and
the median peak RSS of the VM process (for --vmm kvm that is the ktstr
process, which is the VMM), and the ratio of the first engine to the second,
with a 95% bootstrap interval once each has 5 passing runs (single runs vary
a lot under emulation: the interval says how sure the ratio is).
A second table splits the time by the stages of `ktstr run`'s timeline
(prepare, boot, kernel+init, scheduler, payload, results, power off, exit),
and draws them as bars on one scale, so a difference between engines can
be placed. With `-- RUN_ARGS` it times that job instead (`ktstr run`
arguments): the engines compared on a workload of yours, e.g. one with a
disk. Where /dev/kvm cannot run guests, benchmark inside an L1 guest.

EXAMPLES:
    ktstr bench --runs 5
    ktstr bench --runs 5 -- --plugin fio --disk 64M,fs=ext4 --duration 2
    ktstr nested --with-qemu -- bench --runs 5
    ktstr nested --with-qemu -- bench --vmm kvm,kvm-vmlinux,qemu --runs 20";

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Runs per engine.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Engines to compare, comma-separated; the ratio is first/second.
    /// `kvm-vmlinux` is ktstr-vmm booting the uncompressed vmlinux
    /// (`run --boot-vmlinux`), to weigh it against `kvm`'s bzImage.
    #[arg(long, default_value = "kvm,qemu")]
    pub vmm: String,
    /// CPU topology of every run's guest, NnNlNcNt.
    #[arg(long, default_value = "1n2l2c1t")]
    pub topology: String,
    /// Memory of every run's guest in MiB (or with a suffix: 512M, 2G).
    #[arg(long, default_value = "512")]
    pub memory: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Skip the first N runs of the interleaved sequence (`ktstr nested`
    /// resumes a bench in a fresh L1 with it).
    #[arg(long, default_value_t = 0, hide = true)]
    pub skip: usize,
    /// Print each sample as a JSON line on stderr (for `ktstr nested`).
    #[arg(long, hide = true)]
    pub emit_samples: bool,
    /// The job to time instead of the trivial one: `ktstr run` arguments
    /// after `--` (the bench sets --vmm, --topology, --memory and --json).
    #[arg(last = true, value_name = "RUN_ARGS")]
    pub job: Vec<String>,
}

pub const NESTED_HELP: &str = "\
The L1 guest boots the cached test kernel (it has KVM, KVM_AMD and KVM_INTEL
built in) under QEMU: TCG with -cpu max where /dev/kvm cannot run guests (it
exposes SVM with nested paging), KVM with -cpu host where it can. Inside L1,
`ktstr ARGS` runs with this ktstr, its plugins, the kernel cache entry and the
payload binaries found here; its stdout comes back as this command's stdout,
its progress lines on stderr, and its exit code is this command's exit code.

When L1's own kernel oopses or panics, L1 is ended at once and the run fails
with `the emulated L1 host crashed` (exit 5), L1's console kept; so is an L1
whose heartbeat (every 10 s) stops: after 90 s, or 25 s after its kernel
reports a stall. A hung L1's vCPUs are read first (where each one is, named
with the kernel's symbols; `l1-hang.txt` in --artifacts). `bench` inside L1
survives that: it goes on in a fresh L1 from the run L1 died in,
and its table counts L1 deaths per engine.

EXAMPLES:
    ktstr nested -- run --vmm kvm --plugin workers --scheduler scx_simple --topology 1n2l2c1t
    ktstr nested --with-qemu -- bench --runs 5";

#[derive(Args, Debug)]
pub struct NestedArgs {
    /// vCPUs of the L1 guest.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Memory of the L1 guest (MiB, or 512M, 3G); L2 guests live inside it.
    #[arg(long, default_value = "3G")]
    pub memory: String,
    /// Kernel for L1 and L2 (a cache entry; default: as for `run --kernel`).
    #[arg(long)]
    pub kernel: Option<String>,
    /// Also pack QEMU into L1 (for `--vmm qemu` or `bench` inside it).
    #[arg(long)]
    pub with_qemu: bool,
    /// Seconds before the L1 guest is killed.
    #[arg(long, default_value_t = 900)]
    pub watchdog: u64,
    /// Keep the L1 console log and outputs here.
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// More kernel command-line arguments for L1, after ktstr's own. Under
    /// TCG, L1's KVM shadows L2's page tables (`kvm_amd.npt=0`: TCG's
    /// emulated nested paging corrupts a few L2 boots in a hundred);
    /// `kvm_amd.npt=1` takes nested paging back.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub l1_cmdline: Option<String>,
    /// The ktstr command line to run inside L1 (after `--`).
    #[arg(last = true, value_name = "KTSTR_ARGS")]
    pub args: Vec<String>,
}

pub const RUN_HELP: &str = "\
EXAMPLES:
    ktstr run --plugin workers
    ktstr run --plugin stress-ng --scheduler scx_simple --topology 1n2l2c1t
    ktstr run --plugin fio --scheduler scx_qmap --check 'read/iops>=1000' --json result.json
    ktstr run --plugin workers --arg=--work --arg=futex --duration 20 --artifacts ./out
    ktstr run --scenario two-equal-cgroups --scheduler scx_simple --topology 1n2l2c1t
    ktstr run --scenario my-scenario.toml --check 'run/a/work_units>=1000'

TOPOLOGY NnNlNcNt: N NUMA nodes, L LLCs per node, C cores per LLC, T threads per
core; 1n2l2c1t is 4 CPUs in two LLCs.

CHECKS: `name>=N`, `name<=N`, `LO<=name<=HI`, `exists(name)`, `exit==N`; they are
added to the payload's default checks. `ktstr extract` shows metric names.
Over a glob (`*` matches anything, `/` too): `all(GLOB)`, `count(GLOB)`,
`sum(GLOB)`, `max(GLOB)`, `min(GLOB)` with `>=N`, `<=N` or `LO<=…<=HI`, and
`exists(GLOB)`; e.g. `all(test/*)>=1`. A failed check shows the stderr tail.

Every run keeps its console log, scheduler log and payload output: in --artifacts
DIR, or else under $KTSTR_CACHE_DIR/runs/ (the path is printed).";

/// Which VM engine boots the guest.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VmmArg {
    /// Our KVM VMM where /dev/kvm runs full-virtualisation guests, else QEMU.
    #[default]
    Auto,
    /// QEMU (-M microvm): KVM acceleration where it works, TCG otherwise.
    Qemu,
    /// ktstr's own KVM VMM.
    Kvm,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The payload plugin to run (see `ktstr list-plugins --kind payload`).
    #[arg(long, required_unless_present_any = ["scenario", "exec"], conflicts_with = "scenario")]
    pub plugin: Option<String>,
    /// Run one shell command in the guest as the payload (busybox `sh -c
    /// CMD`, with its applets: cat, nproc, grep…): the `exec` plugin. Its
    /// exit code is checked (`exit==0`); --duration is its time limit.
    #[arg(long, value_name = "CMD", conflicts_with_all = ["plugin", "scenario", "args"])]
    pub exec: Option<String>,
    /// Run a scenario instead of one payload: a TOML file, or the name of a
    /// canned one (see `ktstr list-scenarios`; schema: core/scenarios/SCHEMA.md).
    #[arg(long, value_name = "FILE|NAME")]
    pub scenario: Option<String>,
    /// An argument for the payload, replacing its defaults (repeatable;
    /// use --arg=-x for values that start with a dash). `{duration}`,
    /// `{duration_ms}`, `{nr_cpus}`, `{cpu_list}`, `{memory_mib}` and
    /// `{out_dir}` are filled in (`{{` for a literal brace).
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// The VM: scheduler, topology, memory, kernel, engine.
    #[command(flatten)]
    pub vm: VmArgs,
    /// Another machine's topology: `lscpu -p=CPU,CORE,SOCKET,NODE,CACHE`
    /// output, or a tarball of its /sys/devices/system/{cpu,node}; what the
    /// guest cannot copy (uneven levels, CPU numbering) is said.
    #[arg(long, value_name = "FILE", conflicts_with = "topology")]
    pub topology_from: Option<PathBuf>,
    /// How long the payload runs, in seconds [default: the payload's own,
    /// else 10; a scenario: 60]. The payload gets it as `{duration}` in its
    /// arguments; it is killed as timed out a grace period later (30 s
    /// unless it declares another). For a fixed-length payload (a suite that
    /// takes as long as it takes) it is the time limit itself. For a
    /// scenario: the run duration its `fraction` holds are taken of.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// A check on the result (repeatable), e.g. 'wakeup_latency_p99<=5000'.
    #[arg(long = "check", value_name = "EXPR")]
    pub checks: Vec<String>,
    /// End the whole guest if it has not finished after this many seconds
    /// [default: 150 s for boot and scheduler start, plus the payload's time
    /// limit]. The payload's own limit (--duration plus grace) ends only it.
    /// Before ending it, ktstr reads where each vCPU is: the summary's
    /// `stopped` lines, `engine.vcpus_at_stop` in --json, `vcpus.txt`.
    #[arg(long, value_name = "SECS")]
    pub watchdog: Option<u64>,
    /// After the guest kernel's console first reports an RCU stall, a soft
    /// lockup, a hung task or (with a sched_ext scheduler) sched_ext disabling
    /// it, end the run this many seconds later unless the guest finishes; the
    /// verdict names the class (stall, stuck_disabling, kernel_stall…) and shows
    /// the reports.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub stall_grace: u64,
    /// The run-queue monitor samples every thread's state this often while
    /// the payload runs (monitor.jsonl in the artifacts); 0 turns it off.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub monitor_interval_ms: u64,
    /// A thread runnable this long without running, while the others ran,
    /// fails the run as a stall (SCHEDULER_FAILED, class stall), naming it.
    /// Keep it below the scheduler's own watchdog (sched_ext: 30 s by
    /// default, scx_qmap 5 s) to catch stalls first.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub monitor_stall_ms: u64,
    /// ktstr-vmm: boot the kernel cache entry's uncompressed vmlinux instead
    /// of its bzImage (no decompression in the guest). Off by default: under
    /// nested TCG its L2 boots failed more often (see the README).
    #[arg(long)]
    pub boot_vmlinux: bool,
    /// Write the result as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Keep every artifact (console log, scheduler log, payload output) here.
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// A virtio-blk disk (repeatable), fresh for this run:
    /// SIZE[,fs=btrfs|ext4|xfs|none][,name=NAME][,ro][,mount=no][,iops=N][,bps=N].
    /// It is /dev/vda, /dev/vdb… in the guest, mounted at /mnt/NAME (default
    /// disk0, disk1…) before the scheduler starts; fio runs on the first.
    /// See `ktstr disk --help` for the template cache.
    #[arg(long = "disk", value_name = "SPEC", value_parser = parse_disk)]
    pub disks: Vec<ktstr_core::disk::DiskSpec>,
    /// Keep each disk's image in the artifacts (disks/NAME.img) instead of
    /// deleting it when the run ends.
    #[arg(long)]
    pub keep_disks: bool,
    /// The payload's stdout and stderr go to ours as they arrive, and the
    /// summary to stderr (`ktstr shell --exec`).
    #[arg(skip)]
    pub tee_payload: bool,
    /// The payload gets the user's terminal, with no time limit (`ktstr shell`).
    #[arg(skip)]
    pub interactive: bool,
    /// Host files and directories packed into the guest's `/include`.
    #[arg(skip)]
    pub include: Vec<PathBuf>,
}

/// What the test VM is, for every command that boots one (`run`, `shell`).
#[derive(Args, Debug, Clone)]
pub struct VmArgs {
    /// `eevdf`, or a sched_ext scheduler by name (scx_simple, scx_qmap…) or path.
    #[arg(long, default_value = "eevdf")]
    pub scheduler: String,
    /// An argument for the scheduler (repeatable).
    #[arg(long = "sched-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sched_args: Vec<String>,
    /// CPU topology of the guest, NnNlNcNt, or `host` for this machine's
    /// shape [default: 1n1l2c1t; for a scenario, the smallest one it fits].
    #[arg(long)]
    pub topology: Option<String>,
    /// Guest memory in MiB (or with a suffix: 512M, 2G).
    #[arg(long, default_value = "1024")]
    pub memory: String,
    /// Kernel: a bzImage path, a cache entry or key. Default: $KTSTR_KERNEL,
    /// then the newest cached kernel built with this ktstr's kconfig fragment
    /// (`ktstr kernel list` marks it).
    #[arg(long)]
    pub kernel: Option<String>,
    /// VM engine.
    #[arg(long, value_enum, default_value = "auto")]
    pub vmm: VmmArg,
    /// A guest kernel command-line parameter (repeatable), e.g.
    /// `--kernel-arg nohz_full=1`; ktstr's own (rdinit, init, panic, reboot,
    /// ktstr.*) are refused.
    #[arg(long = "kernel-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub kernel_args: Vec<String>,
}

pub fn parse_disk(s: &str) -> Result<ktstr_core::disk::DiskSpec, String> {
    s.parse()
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

#[derive(Args, Debug)]
pub struct ListScenariosArgs {
    /// Print JSON (name, description, TOML) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print the TOML of one canned scenario.
    #[arg(long, value_name = "NAME")]
    pub show: Option<String>,
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
