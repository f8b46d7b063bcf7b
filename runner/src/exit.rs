//! The exit codes of `ktstr`, documented in `ktstr --help` and the README.

/// The run passed every check (or the command succeeded).
pub const PASS: i32 = 0;
/// The run finished but at least one check failed (or `plugin check` found a problem).
pub const CHECK_FAILED: i32 = 1;
/// Bad command line or input (clap uses 2 as well).
pub const USAGE: i32 = 2;
/// The scheduler crashed, exited or left sched_ext during the run.
pub const SCHEDULER_FAILED: i32 = 3;
/// The payload timed out, or the guest never answered, crashed, or the
/// watchdog ended it.
pub const TIMEOUT_OR_CRASH: i32 = 4;
/// Something on the host went wrong (missing tool, kernel, I/O).
pub const INFRA_ERROR: i32 = 5;
/// Ctrl-C or SIGTERM ended the run (the VM was stopped, artifacts kept): 128 + SIGINT.
pub const INTERRUPTED: i32 = 130;

pub const HELP: &str = "\
EXIT CODES:
    0  pass (or the command succeeded)
    1  a check failed (`plugin check`: the library has a problem)
    2  usage error (bad flag, bad check expression, unknown plugin)
    3  the scheduler failed during the run
    4  timed out or crashed: the payload ran past its limit (PAYLOAD_TIMEOUT),
       or the guest never finished (TIMEOUT, the watchdog) or crashed
    5  host or infrastructure error (missing kernel, tool, I/O)
  130  interrupted (Ctrl-C or SIGTERM); the VM is stopped, artifacts are kept";
