//! `ktstr shell`: the VM a run would boot (kernel, topology, disks, the
//! scheduler started, confirmed ready and watched), and in it an interactive
//! shell on the user's terminal (a PTY in the guest relayed over the
//! virtio-console port `ktstr-shell`, see `crate::terminal`), or with
//! `--exec` one command whose output is streamed to ours. Either way the
//! shell's exit code is ours.

pub mod include;

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
    /// The command's time limit in seconds (--exec; an interactive shell
    /// has none).
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
    /// A host file or directory to copy into the guest's /include
    /// (repeatable); executables come with their shared libraries, and
    /// /include is on the shell's PATH.
    #[arg(long, value_name = "PATH")]
    pub include: Vec<PathBuf>,
    /// Keep the run's artifacts (console log, scheduler log…) here.
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
}

pub const SHELL_HELP: &str = "\
THE INTERACTIVE SHELL
    busybox's sh, on a PTY in the guest: the host terminal is raw while it
    runs (keys, Ctrl-C and window size go to the guest) and restored after.
    /sys/kernel/debug and tracefs are mounted; busybox's applets, the
    payload binaries and --include'd files are on PATH. If the scheduler
    fails, its failure is printed as it happens and the shell stays up.
    `exit` (or Ctrl-D) powers the VM off; Ctrl-] then q kills it.

EXIT STATUS
    the shell's (or --exec command's) own exit code (128+N when signal N
    killed it), once the scheduler ran it to its end; otherwise ktstr's: 3
    the scheduler failed, 4 the command ran past --timeout or the guest hung
    or crashed, 5 a host error, 2 bad usage (no terminal and no --exec).
    ktstr's summary goes to stderr.

EXAMPLES
    ktstr shell --scheduler scx_simple --topology 1n2l2c1t --include /usr/sbin/bpftool
    ktstr shell --exec 'nproc; cat /sys/devices/system/cpu/online' --topology 1n2l2c1t
    ktstr shell --scheduler scx_simple --exec 'cat /sys/kernel/sched_ext/root/ops'";

pub fn execute(args: &ShellArgs, discovery: &Discovery) -> anyhow::Result<i32> {
    let interactive = args.exec.is_none();
    if interactive {
        crate::terminal::require_terminal("give a command with --exec CMD")?;
    }
    let term = std::env::var("TERM").unwrap_or_default();
    let cmd = args.exec.clone().unwrap_or_else(|| interactive_script(&term));
    let mut run = run_args(args, &cmd)?;
    run.tee_payload = !interactive;
    run.interactive = interactive;
    run.include = args.include.clone();
    crate::run::execute(&run, discovery)
}

/// `TERM` as it may travel into a guest: a plain terminfo name, else vt100.
pub fn plain_term(term: &str) -> &str {
    let ok =
        !term.is_empty() && term.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._+".contains(&b));
    if ok {
        term
    } else {
        "vt100"
    }
}

/// What the guest runs for an interactive shell: busybox's applets
/// installed, a useful environment, a line that says where the user is,
/// then `sh -i` on the terminal.
fn interactive_script(host_term: &str) -> String {
    let term = plain_term(host_term);
    format!(
        r#"b=$(readlink /proc/$$/exe)
mkdir -p /usr/local/bin /root && "$b" --install -s /usr/local/bin
export PATH={include}:/usr/local/bin:/ktstr/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM={term}
export PS1='ktstr:\w# '
cd /root
scx=/sys/kernel/sched_ext
state="$(cat $scx/state 2>/dev/null) $(cat $scx/root/ops 2>/dev/null)"
echo "ktstr shell: kernel $(uname -r), CPUs $(cat /sys/devices/system/cpu/online), sched_ext $state"
echo "exit (or Ctrl-D) powers the VM off; Ctrl-] then q kills it."
exec sh -i"#,
        include = include::GUEST_DIR,
    )
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
        assert!(!run.interactive && run.include.is_empty(), "set by execute, not parsed");
        assert_eq!(run.exec.as_deref(), Some("nproc"));
        assert_eq!(run.vm.topology.as_deref(), Some("1n2l2c1t"));
        assert_eq!(run.vm.sched_args, ["-v"]);
        assert_eq!((run.disks.len(), run.duration), (1, Some(30)));
    }

    #[test]
    fn the_interactive_script_keeps_only_a_plain_term() {
        assert!(interactive_script("xterm-256color").contains("TERM=xterm-256color"));
        assert!(interactive_script("x; reboot").contains("TERM=vt100"));
        assert!(interactive_script("").contains("exec sh -i"));
    }
}
