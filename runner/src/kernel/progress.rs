//! Stage lines on stderr and logged child processes. A kernel build runs
//! for minutes, so every long step prints its elapsed time (and the file
//! make is on) every [`TICK`], while its full output goes to the build log.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How often a running step reports.
const TICK: Duration = Duration::from_secs(15);
/// Lines of the log shown when a step fails.
pub const TAIL_LINES: usize = 40;

pub fn stage(msg: &str) {
    eprintln!("[kernel] {msg}");
}

/// `1m23s`, `45s`, `0.4s`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s >= 10 {
        format!("{s}s")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A logged step that exited unsuccessfully; the caller shows the log tail.
#[derive(Debug)]
pub struct StepFailed {
    pub label: String,
    pub status: ExitStatus,
}

impl fmt::Display for StepFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed ({})", self.label, self.status)
    }
}

impl std::error::Error for StepFailed {}

/// Runs `cmd` with stdout and stderr appended to `log`, printing progress
/// for `label` every [`TICK`]. Fails with [`StepFailed`] on a bad exit.
pub fn run_logged(cmd: &mut Command, label: &str, log: &Path) -> Result<Duration> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    writeln!(file, "\n$ {}", describe(cmd))?;
    tracing::debug!("run: {}", describe(cmd));
    let start = Instant::now();
    // If ktstr dies (even by SIGKILL), make gets SIGTERM and stops its
    // jobs, instead of compiling on into a work dir the next build removes.
    // SAFETY: prctl is async-signal-safe and touches no parent state.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("start {}", describe(cmd)))?;
    let mut next = TICK;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(200));
        if start.elapsed() >= next {
            next += TICK;
            let at = last_line(log).map(|l| format!(" [{l}]")).unwrap_or_default();
            stage(&format!("{label}… {}{at}", fmt_duration(start.elapsed())));
        }
    };
    if !status.success() {
        return Err(StepFailed { label: label.to_string(), status }.into());
    }
    Ok(start.elapsed())
}

/// The command line, for the log and error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    if let Some(dir) = cmd.get_current_dir() {
        s.push_str(&format!("   (in {})", dir.display()));
    }
    s
}

/// The last `n` lines of a file (reads at most its last 64 KiB).
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = File::open(path) else { return Vec::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| l.to_string()).collect()
}

/// What make is on: the last non-empty log line, shortened.
fn last_line(log: &Path) -> Option<String> {
    let line = tail(log, 1).pop()?;
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    (!line.is_empty()).then(|| line.chars().take(70).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(Duration::from_secs(83)), "1m23s");
        assert_eq!(fmt_duration(Duration::from_secs(45)), "45s");
        assert_eq!(fmt_duration(Duration::from_millis(400)), "0.4s");
    }

    #[test]
    fn logged_failure_keeps_output() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        run_logged(Command::new("sh").args(["-c", "echo hello"]), "ok step", &log).unwrap();
        let err =
            run_logged(Command::new("sh").args(["-c", "echo boom >&2; exit 3"]), "bad step", &log)
                .unwrap_err();
        let failed = err.downcast_ref::<StepFailed>().expect("StepFailed");
        assert_eq!(failed.status.code(), Some(3));
        assert_eq!(tail(&log, 1), vec!["boom".to_string()]);
        assert!(std::fs::read_to_string(&log).unwrap().contains("hello"));
    }
}
