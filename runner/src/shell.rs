//! `ktstr shell --exec CMD`: the VM a run would boot (kernel, topology,
//! disks, the scheduler started and confirmed ready and watched), one shell
//! command in it, its output streamed to ours and its exit code ours. The
//! interactive shell (a PTY on a virtio-console port) is not built yet.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser};
use ktstr_core::disk::DiskSpec;

use crate::cli::{parse_disk, Cli, Command, RunArgs, VmArgs};
use crate::plugins::Discovery;
use crate::usage::UsageError;

#[derive(Args, Debug)]
pub struct ShellArgs {
    /// The command (busybox `sh -c CMD`, with its applets: cat, nproc,
    /// grep, sleep…). Its stdout and stderr are ours as they arrive.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    #[command(flatten)]
    pub vm: VmArgs,
    /// A disk, as `ktstr run --disk` (repeatable).
    #[arg(long = "disk", value_name = "SPEC", value_parser = parse_disk)]
    pub disks: Vec<DiskSpec>,
    /// The command's time limit in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
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

/// The `ktstr run` these arguments mean: `run --exec CMD` parsed by run's
/// own parser, so that its defaults apply unchanged, then this VM.
fn run_args(args: &ShellArgs, cmd: &str) -> anyhow::Result<RunArgs> {
    let argv = ["ktstr", "run", "--exec", cmd];
    let Command::Run(mut run) =
        Cli::try_parse_from(argv).map_err(|e| UsageError(e.to_string()))?.command
    else {
        unreachable!("argv names `run`")
    };
    run.vm = args.vm.clone();
    run.disks = args.disks.clone();
    run.duration = Some(args.timeout);
    run.artifacts = args.artifacts.clone();
    Ok(*run)
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
        assert_eq!(run.vm.topology.as_deref(), Some("1n2l2c1t"));
        assert_eq!(run.vm.sched_args, ["-v"]);
        assert_eq!((run.disks.len(), run.duration), (1, Some(30)));
    }
}
