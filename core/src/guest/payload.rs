//! Running the payload: forked into its cgroup BEFORE exec (the child waits
//! on a gate until its pid is in `cgroup.procs`), in its own process group,
//! with stdout and stderr captured concurrently and capped.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::plugin::LoadedPlugin;

/// Most bytes kept per stream; the rest is counted and reported truncated.
pub const CAPTURE_CAP: usize = 16 << 20;

/// What to run: an exec'd binary or the plugin's inline function.
pub enum Program<'a> {
    Exec { path: &'a str, args: &'a [String] },
    Inline { plugin: &'a LoadedPlugin, args: &'a [String] },
}

#[derive(Debug, Default)]
pub struct Captured {
    pub data: Vec<u8>,
    pub truncated: bool,
}

impl Captured {
    fn push<'c>(&mut self, chunk: &'c [u8]) -> &'c [u8] {
        let room = CAPTURE_CAP.saturating_sub(self.data.len());
        let kept = &chunk[..chunk.len().min(room)];
        self.truncated |= kept.len() < chunk.len();
        self.data.extend_from_slice(kept);
        kept
    }
}

/// Why the run loop stopped the payload early.
#[derive(Debug)]
pub enum Interrupt {
    TimedOut,
    /// The watcher asked to stop (e.g. the scheduler failed).
    Watcher,
}

#[derive(Debug)]
pub struct Outcome {
    pub pid: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub interrupted: Option<Interrupt>,
    pub duration: Duration,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// Hooks the run loop calls while the payload runs.
pub trait Watch {
    /// Called once the child is in its cgroup and released.
    fn started(&mut self, pid: u32);
    /// New output; `stdout` tells which stream.
    fn output(&mut self, stdout: bool, chunk: &[u8]);
    /// Called about every 100 ms; returning false stops the payload.
    fn keep_going(&mut self) -> bool;
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Runs `program` in the cgroup at `cgroup_dir` and captures its output.
pub fn run(program: &Program<'_>, cgroup_dir: &str, own_group: bool, timeout: Option<Duration>, watch: &mut dyn Watch) -> anyhow::Result<Outcome> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (gate_r, gate_w) = pipe()?;
    // Everything the child needs is prepared before fork: after fork only
    // async-signal-safe calls happen until exec.
    let exec_args: Option<(CString, Vec<CString>)> = match program {
        Program::Exec { path, args } => {
            let path = CString::new(*path).context("binary path has a NUL")?;
            let mut argv = vec![path.clone()];
            for a in *args {
                argv.push(CString::new(a.as_str()).context("argument has a NUL")?);
            }
            Some((path, argv))
        }
        Program::Inline { .. } => None,
    };
    let argv_ptrs: Option<Vec<*const libc::c_char>> =
        exec_args.as_ref().map(|(_, argv)| argv.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect());

    // SAFETY: the init is single-threaded here, so fork is sound; the child
    // only calls async-signal-safe functions before exec (inline payloads
    // run plugin code, which is safe in a single-threaded parent's child).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork the payload");
    }
    if pid == 0 {
        child(program, &out_w, &err_w, &gate_r, own_group, exec_args.as_ref().map(|(p, _)| p), argv_ptrs.as_deref());
    }
    drop((out_w, err_w, gate_r));
    let start = Instant::now();
    if own_group {
        // Also set here so the parent can signal the group without racing the child.
        // SAFETY: setpgid on our own child.
        unsafe { libc::setpgid(pid, pid) };
    }
    let placed = std::fs::write(format!("{cgroup_dir}/cgroup.procs"), pid.to_string()).with_context(|| format!("move payload {pid} into {cgroup_dir}"));
    if let Err(e) = placed {
        kill(pid, own_group);
        reap(pid);
        return Err(e);
    }
    // Release the child: it is in its cgroup now.
    // SAFETY: writing one byte to our pipe.
    unsafe { libc::write(gate_w.as_raw_fd(), b"g".as_ptr().cast(), 1) };
    drop(gate_w);
    watch.started(pid as u32);
    capture_loop(pid, own_group, out_r, err_r, timeout, start, watch)
}

/// The forked child: wire stdio, wait at the gate, then exec or run inline.
fn child(program: &Program<'_>, out_w: &OwnedFd, err_w: &OwnedFd, gate_r: &OwnedFd, own_group: bool, path: Option<&CString>, argv: Option<&[*const libc::c_char]>) -> ! {
    // SAFETY: async-signal-safe calls on fds we own, then exec or _exit.
    unsafe {
        libc::dup2(out_w.as_raw_fd(), 1);
        libc::dup2(err_w.as_raw_fd(), 2);
        if own_group {
            libc::setpgid(0, 0);
        }
        let mut b = 0u8;
        if libc::read(gate_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1) != 1 {
            libc::_exit(126);
        }
        match (program, path, argv) {
            (Program::Exec { .. }, Some(path), Some(argv)) => {
                libc::execv(path.as_ptr(), argv.as_ptr());
                let msg = b"ktstr-init: exec of the payload failed\n";
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(127);
            }
            (Program::Inline { plugin, args }, _, _) => {
                let code = plugin.run_inline(args);
                libc::_exit(code);
            }
            _ => libc::_exit(127),
        }
    }
}

fn capture_loop(pid: i32, own_group: bool, out_r: OwnedFd, err_r: OwnedFd, timeout: Option<Duration>, start: Instant, watch: &mut dyn Watch) -> anyhow::Result<Outcome> {
    let (mut stdout, mut stderr) = (Captured::default(), Captured::default());
    let mut open = [Some(out_r), Some(err_r)];
    let mut status: Option<i32> = None;
    let mut interrupted = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let mut fds: Vec<libc::pollfd> =
            open.iter().flatten().map(|fd| libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
        if !fds.is_empty() {
            // SAFETY: fds is a valid array of pollfd.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
        for (i, slot) in open.iter_mut().enumerate() {
            let Some(fd) = slot else { continue };
            let Some(p) = fds.iter().find(|p| p.fd == fd.as_raw_fd()) else { continue };
            if p.revents == 0 {
                continue;
            }
            // SAFETY: reading into our buffer from our fd.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                *slot = None;
                continue;
            }
            let chunk = &buf[..n as usize];
            let kept = if i == 0 { stdout.push(chunk) } else { stderr.push(chunk) };
            if !kept.is_empty() {
                watch.output(i == 0, kept);
            }
        }
        if status.is_none() {
            let mut st = 0;
            // SAFETY: non-blocking wait for our own child.
            if unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) } == pid {
                status = Some(st);
                // Grandchildren may hold the pipes: end the group, drain briefly.
                if own_group {
                    kill(pid, true);
                }
                drain_deadline = Some(Instant::now() + Duration::from_secs(2));
            } else if interrupted.is_none() {
                if timeout.is_some_and(|t| start.elapsed() > t) {
                    interrupted = Some(Interrupt::TimedOut);
                } else if !watch.keep_going() {
                    interrupted = Some(Interrupt::Watcher);
                }
                if interrupted.is_some() {
                    kill(pid, own_group);
                }
            }
        }
        let drained = open.iter().all(Option::is_none) || drain_deadline.is_some_and(|d| Instant::now() > d);
        if status.is_some() && drained {
            break;
        }
    }
    let st = status.expect("loop ends after the child was reaped");
    let (exit_code, signal) =
        if libc::WIFEXITED(st) { (Some(libc::WEXITSTATUS(st)), None) } else { (None, libc::WIFSIGNALED(st).then(|| libc::WTERMSIG(st))) };
    Ok(Outcome { pid: pid as u32, exit_code, signal, interrupted, duration: start.elapsed(), stdout, stderr })
}

fn kill(pid: i32, group: bool) {
    // SAFETY: signalling our own child (or its process group).
    unsafe { libc::kill(if group { -pid } else { pid }, libc::SIGKILL) };
}

fn reap(pid: i32) {
    let mut st = 0;
    // SAFETY: blocking wait for our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorder {
        started: Option<u32>,
        chunks: usize,
        stop_after: Option<usize>,
        calls: usize,
    }

    impl Watch for Recorder {
        fn started(&mut self, pid: u32) {
            self.started = Some(pid);
        }
        fn output(&mut self, _stdout: bool, _chunk: &[u8]) {
            self.chunks += 1;
        }
        fn keep_going(&mut self) -> bool {
            self.calls += 1;
            self.stop_after.is_none_or(|n| self.calls < n)
        }
    }

    fn rec() -> Recorder {
        Recorder { started: None, chunks: 0, stop_after: None, calls: 0 }
    }

    /// A writable stand-in for a cgroup directory (the test is not in a VM).
    fn fake_cgroup() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["-c".into(), script.into()]
    }

    #[test]
    fn captures_both_streams_and_exit_code_and_places_child_first() {
        let cg = fake_cgroup();
        let args = sh("echo out; echo err >&2; exit 3");
        let mut w = rec();
        let o = run(&Program::Exec { path: "/bin/sh", args: &args }, cg.path().to_str().unwrap(), true, None, &mut w).unwrap();
        assert_eq!(o.exit_code, Some(3));
        assert_eq!(o.stdout.data, b"out\n");
        assert_eq!(o.stderr.data, b"err\n");
        assert_eq!(w.started, Some(o.pid));
        let placed = std::fs::read_to_string(cg.path().join("cgroup.procs")).unwrap();
        assert_eq!(placed, o.pid.to_string());
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let cg = fake_cgroup();
        let args = sh("sleep 30 & sleep 30; echo never");
        let o = run(&Program::Exec { path: "/bin/sh", args: &args }, cg.path().to_str().unwrap(), true, Some(Duration::from_millis(300)), &mut rec()).unwrap();
        assert!(matches!(o.interrupted, Some(Interrupt::TimedOut)));
        assert_eq!(o.signal, Some(libc::SIGKILL));
        assert!(o.duration < Duration::from_secs(10), "the background sleep must not hold the pipes open");
    }

    #[test]
    fn watcher_can_stop_the_payload() {
        let cg = fake_cgroup();
        let args = sh("sleep 30");
        let mut w = Recorder { stop_after: Some(2), ..rec() };
        let o = run(&Program::Exec { path: "/bin/sh", args: &args }, cg.path().to_str().unwrap(), true, None, &mut w).unwrap();
        assert!(matches!(o.interrupted, Some(Interrupt::Watcher)));
    }

    #[test]
    fn output_is_capped_and_truncation_reported() {
        let mut c = Captured::default();
        c.push(&vec![b'x'; CAPTURE_CAP - 1]);
        assert_eq!(c.push(b"abc"), b"a");
        assert!(c.truncated);
        assert_eq!(c.data.len(), CAPTURE_CAP);
    }

    #[test]
    fn missing_binary_is_exit_127_with_a_message() {
        let cg = fake_cgroup();
        let o = run(&Program::Exec { path: "/nonexistent/bin", args: &[] }, cg.path().to_str().unwrap(), true, None, &mut rec()).unwrap();
        assert_eq!(o.exit_code, Some(127));
        assert!(String::from_utf8_lossy(&o.stderr.data).contains("exec of the payload failed"));
    }

    #[test]
    fn unplaceable_child_is_killed_and_reported() {
        let err = run(&Program::Exec { path: "/bin/true", args: &[] }, "/nonexistent/cgroup", true, None, &mut rec()).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/cgroup"));
    }
}
