//! `ktstr shell --exec CMD`: the VM a run would boot (kernel, topology,
//! disks, the scheduler started and confirmed ready and watched), one shell
//! command in it, its output streamed to ours and its exit code ours. The
//! interactive shell (a PTY on a virtio-console port) is not built yet.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser};

use crate::cli::{Cli, Command, RunArgs, VmmArg};
use crate::plugins::Discovery;
use crate::usage::UsageError;

#[derive(Args, Debug)]
pub struct ShellArgs {
    /// The command (busybox `sh -c CMD`, with its applets: cat, nproc,
    /// grep, sleep…). Its stdout and stderr are ours as they arrive.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// `eevdf`, or a sched_ext scheduler by name (scx_simple…) or path.
    #[arg(long, default_value = "eevdf")]
    pub scheduler: String,
    /// An argument for the scheduler (repeatable).
    #[arg(long = "sched-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sched_args: Vec<String>,
    /// CPU topology of the guest, NnNlNcNt [default: 1n1l2c1t].
    #[arg(long)]
    pub topology: Option<String>,
    /// Guest memory in MiB (or 512M, 2G).
    #[arg(long, default_value = "1024")]
    pub memory: String,
    /// A disk, as `ktstr run --disk` (repeatable).
    #[arg(long = "disk", value_name = "SPEC", value_parser = crate::gauntlet::args::parse_disk)]
    pub disks: Vec<String>,
    /// Kernel: a bzImage path, a cache entry or key.
    #[arg(long)]
    pub kernel: Option<String>,
    /// VM engine.
    #[arg(long, value_enum, default_value = "auto")]
    pub vmm: VmmArg,
    /// The command's time limit in seconds [default: 600].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// A guest kernel parameter (repeatable).
    #[arg(long = "kernel-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub kernel_args: Vec<String>,
    /// Keep the run's artifacts (console log, scheduler log…) here.
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
}

pub const SHELL_HELP: &str = "\
EXIT STATUS (with --exec)
    the command's own exit code (128+N when signal N killed it), once the
    scheduler ran it to its end; otherwise ktstr's: 3 the scheduler failed,
    4 the command ran past --timeout or the guest hung or crashed, 5 a host
    error, 2 bad usage. ktstr's summary goes to stderr.

EXAMPLE
    ktstr shell --exec 'nproc; cat /sys/devices/system/cpu/online' --topology 1n2l2c1t
    ktstr shell --scheduler scx_simple --exec 'cat /sys/kernel/sched_ext/root/ops'";

pub fn execute(args: &ShellArgs, discovery: &Discovery) -> anyhow::Result<i32> {
    let Some(cmd) = &args.exec else {
        let why = if std::io::stdin().is_terminal() {
            "the interactive shell is not built yet: give a command with --exec CMD"
        } else {
            "no terminal on stdin, so no interactive shell: give a command with --exec CMD"
        };
        return Err(UsageError(why.into()).into());
    };
    let mut run = run_args(args, cmd)?;
    run.tee_payload = true;
    crate::run::execute(&run, discovery)
}

/// The `ktstr run` these arguments mean, parsed by `run`'s own parser so
/// that its defaults and checks apply unchanged.
fn run_args(args: &ShellArgs, cmd: &str) -> anyhow::Result<RunArgs> {
    let mut argv: Vec<String> =
        ["ktstr", "run", "--exec", cmd, "--scheduler", &args.scheduler].map(String::from).to_vec();
    let mut add = |flag: &str, value: &str| argv.push(format!("--{flag}={value}"));
    for a in &args.sched_args {
        add("sched-arg", a);
    }
    for (flag, value) in [("topology", &args.topology), ("kernel", &args.kernel)] {
        if let Some(v) = value {
            add(flag, v);
        }
    }
    add("memory", &args.memory);
    args.disks.iter().for_each(|d| add("disk", d));
    args.kernel_args.iter().for_each(|k| add("kernel-arg", k));
    add("vmm", crate::gauntlet::args::vmm_name(args.vmm));
    add("duration", &args.timeout.unwrap_or(600).to_string());
    if let Some(dir) = &args.artifacts {
        add("artifacts", &dir.to_string_lossy());
    }
    match Cli::try_parse_from(&argv).map_err(|e| UsageError(e.to_string()))?.command {
        Command::Run(run) => Ok(*run),
        _ => unreachable!("argv names `run`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_arguments_become_a_run_of_the_command() {
        let cli = Cli::try_parse_from([
            "ktstr",
            "shell",
            "--exec",
            "nproc",
            "--topology",
            "1n2l2c1t",
            "--sched-arg",
            "-v",
            "--disk",
            "64M",
            "--timeout",
            "30",
        ])
        .unwrap();
        let Command::Shell(args) = cli.command else { panic!("not shell") };
        let run = run_args(&args, "nproc").unwrap();
        assert_eq!(run.exec.as_deref(), Some("nproc"));
        assert_eq!(run.topology.as_deref(), Some("1n2l2c1t"));
        assert_eq!(run.sched_args, ["-v"]);
        assert_eq!((run.disks.len(), run.duration), (1, Some(30)));
    }
}
