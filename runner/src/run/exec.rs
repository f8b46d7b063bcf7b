//! `--exec CMD`: one shell command as the payload (the `exec` plugin, busybox
//! `sh -c CMD`), and the exit code `ktstr shell --exec` makes of its end.

use std::borrow::Cow;

use super::record::Record;
use super::verdict::Verdict;
use crate::cli::RunArgs;

/// The plugin `--exec` runs.
pub const PLUGIN: &str = "exec";

/// `args` with `--exec CMD` turned into `--plugin exec --arg=sh --arg=-c
/// --arg=CMD`; the command's braces are doubled, since payload arguments
/// are templates (`{duration}`) and a command's are the shell's own.
pub fn resolve(args: &RunArgs) -> Cow<'_, RunArgs> {
    let Some(cmd) = &args.exec else { return Cow::Borrowed(args) };
    let mut out = args.clone();
    out.plugin = Some(PLUGIN.into());
    out.args = vec!["sh".into(), "-c".into(), cmd.replace('{', "{{").replace('}', "}}")];
    Cow::Owned(out)
}

/// The command's own exit code (128 + N when signal N killed it) when the
/// run got as far as its end and nothing else failed.
pub fn command_code(record: &Record, verdict: Verdict) -> Option<i32> {
    let end = record.payload_end.as_ref().filter(|e| !e.timed_out)?;
    match verdict {
        Verdict::Pass | Verdict::CheckFailed => end.exit_code.or(end.signal.map(|s| 128 + s)),
        _ => None,
    }
}

/// `ktstr shell --exec`'s exit code: the command's, else ktstr's for what
/// went wrong (3 scheduler failed, 4 timeout or crash, …).
pub fn exit_code(record: &Record, verdict: Verdict) -> i32 {
    command_code(record, verdict).unwrap_or(verdict.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::record::PayloadEnd;
    use clap::Parser;

    fn run_args(argv: &[&str]) -> RunArgs {
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        match cli.command {
            crate::cli::Command::Run(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exec_becomes_the_exec_plugin_with_braces_kept() {
        let a = run_args(&["ktstr", "run", "--exec", "awk '{print $1}' /proc/loadavg"]);
        let r = resolve(&a);
        assert_eq!(r.plugin.as_deref(), Some("exec"));
        assert_eq!(r.args, ["sh", "-c", "awk '{{print $1}}' /proc/loadavg"]);
        let plain = run_args(&["ktstr", "run", "--plugin", "fio"]);
        assert!(matches!(resolve(&plain), Cow::Borrowed(_)));
        let clash = ["ktstr", "run", "--exec", "true", "--plugin", "fio"];
        assert!(crate::cli::Cli::try_parse_from(clash).is_err());
    }

    #[test]
    fn the_command_decides_the_exit_code_unless_the_run_failed() {
        let ended = |exit_code, signal, timed_out| Record {
            payload_end: Some(PayloadEnd {
                exit_code,
                signal,
                timed_out,
                duration_ms: 1,
                stdout_truncated: false,
                stderr_truncated: false,
            }),
            ..Record::default()
        };
        assert_eq!(exit_code(&ended(Some(0), None, false), Verdict::Pass), 0);
        assert_eq!(exit_code(&ended(Some(3), None, false), Verdict::CheckFailed), 3);
        assert_eq!(exit_code(&ended(None, Some(9), false), Verdict::CheckFailed), 137);
        let failed = Verdict::SchedulerFailed;
        assert_eq!(exit_code(&ended(Some(0), None, false), failed), failed.exit_code());
        let late = Verdict::PayloadTimeout;
        assert_eq!(exit_code(&ended(None, Some(9), true), late), late.exit_code());
        assert_eq!(exit_code(&Record::default(), Verdict::GuestCrash), 4);
    }
}
