//! Running the payload: forked into its cgroup BEFORE exec (the child waits
//! on a gate until its pid is in `cgroup.procs`), in its own process group,
//! with stdout and stderr captured concurrently and capped; or, for an
//! interactive shell, with a terminal (`terminal`) relayed to the host.

mod terminal;
pub use terminal::{run_on_terminal, Terminal};

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use ktstr_plugin_api::host::Library;

use crate::plugin::{PluginAt, RunContext};
use crate::work::gate::{pipe, Gate};

/// Most bytes kept per stream; the rest is counted and reported truncated.
pub const CAPTURE_CAP: usize = 16 << 20;

/// What to run: an exec'd binary or the plugin's inline function, with
/// environment variables added to the init's.
pub enum Program<'a> {
    Exec {
        path: &'a str,
        args: &'a [String],
        env: &'a [(String, String)],
    },
    Inline {
        plugin: &'a PluginAt,
        context: RunContext,
        args: &'a [String],
        env: &'a [(String, String)],
    },
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

/// Runs `program` in the cgroup at `cgroup_dir` and captures its output
/// (with a `terminal`, the output of its PTY, as stdout).
pub fn run(
    program: &Program<'_>,
    cgroup_dir: &str,
    own_group: bool,
    timeout: Option<Duration>,
    terminal: Option<Terminal>,
    watch: &mut dyn Watch,
) -> anyhow::Result<Outcome> {
    let mut running = start(program, cgroup_dir, own_group, terminal)?;
    watch.started(running.pid());
    loop {
        if running.pump(100, &mut |stdout, chunk| watch.output(stdout, chunk)) {
            break;
        }
        if !running.exited() && running.interrupted.is_none() {
            if timeout.is_some_and(|t| running.elapsed() > t) {
                running.interrupt(Interrupt::TimedOut);
            } else if !watch.keep_going() {
                running.interrupt(Interrupt::Watcher);
            }
        }
    }
    Ok(running.finish())
}

/// A payload placed in its cgroup and released, whose output is captured by
/// calling [`Running::pump`] until it says the payload is done. Several can
/// run at once (scenarios); [`run`] drives one to the end.
pub(crate) struct Running {
    pid: i32,
    own_group: bool,
    open: [Option<OwnedFd>; 2],
    stdout: Captured,
    stderr: Captured,
    status: Option<i32>,
    interrupted: Option<Interrupt>,
    drain_deadline: Option<Instant>,
    start: Instant,
    buf: Vec<u8>,
    terminal: Option<Terminal>,
}

/// Forks `program`, places it in `cgroup_dir` BEFORE it execs (the child
/// waits at the gate until its pid is in `cgroup.procs`), and releases it.
/// With a terminal the payload leads a session of its own (and so a group).
pub(crate) fn start(
    program: &Program<'_>,
    cgroup_dir: &str,
    own_group: bool,
    mut terminal: Option<Terminal>,
) -> anyhow::Result<Running> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let gate = Gate::new()?;
    // Everything the child needs is prepared before fork: after fork only
    // async-signal-safe calls happen until exec.
    let exec_args: Option<(CString, Vec<CString>)> = match program {
        Program::Exec { path, args, .. } => {
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
        exec_args.as_ref().map(|(_, argv)| nul_terminated(argv));
    let extra = match program {
        Program::Exec { env, .. } | Program::Inline { env, .. } => *env,
    };
    let envp = environment(extra)?;
    let envp_ptrs = nul_terminated(&envp);

    // SAFETY: the init is single-threaded here, so fork is sound; the child
    // only calls async-signal-safe functions before exec (inline payloads
    // run plugin code, which is safe in a single-threaded parent's child).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork the payload");
    }
    if pid == 0 {
        let stdio = match terminal.as_ref().and_then(Terminal::slave_fd) {
            Some(slave) => Stdio::Terminal(slave),
            None => Stdio::Pipes { out: out_w.as_raw_fd(), err: err_w.as_raw_fd(), own_group },
        };
        child(
            program,
            stdio,
            &gate,
            exec_args.as_ref().map(|(p, _)| p).zip(argv_ptrs.as_deref()),
            &envp_ptrs,
        );
    }
    drop((out_w, err_w));
    let start = Instant::now();
    let own_group = own_group || terminal.is_some();
    let open = match terminal.as_mut() {
        Some(t) => [Some(t.forked()?), None],
        None => [Some(out_r), Some(err_r)],
    };
    // A terminal's child calls setsid, which fails once it is in a group.
    if own_group && terminal.is_none() {
        // Also set here so the parent can signal the group without racing the child.
        // SAFETY: setpgid on our own child.
        unsafe { libc::setpgid(pid, pid) };
    }
    if let Err(e) = gate.release(pid, Some(Path::new(cgroup_dir))) {
        kill(pid, own_group);
        reap(pid);
        return Err(e).with_context(|| format!("move payload {pid} into {cgroup_dir}"));
    }
    Ok(Running {
        pid,
        own_group,
        open,
        stdout: Captured::default(),
        stderr: Captured::default(),
        status: None,
        interrupted: None,
        drain_deadline: None,
        start,
        buf: vec![0u8; 64 << 10],
        terminal,
    })
}

/// The init's environment with `extra` set (replacing same-named ones), as
/// `KEY=VALUE` strings for execve.
fn environment(extra: &[(String, String)]) -> anyhow::Result<Vec<CString>> {
    let mut vars: Vec<(String, String)> =
        std::env::vars().filter(|(k, _)| !extra.iter().any(|(e, _)| e == k)).collect();
    vars.extend(extra.iter().cloned());
    vars.into_iter()
        .map(|(k, v)| CString::new(format!("{k}={v}")).context("environment variable has a NUL"))
        .collect()
}

fn nul_terminated(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
}

/// The child's stdio: the capture pipes, or a PTY slave.
#[derive(Clone, Copy)]
enum Stdio {
    Pipes { out: RawFd, err: RawFd, own_group: bool },
    Terminal(RawFd),
}

/// The forked child: wire stdio, wait at the gate, then exec or run inline.
fn child(
    program: &Program<'_>,
    stdio: Stdio,
    gate: &Gate,
    exec: Option<(&CString, &[*const libc::c_char])>,
    envp: &[*const libc::c_char],
) -> ! {
    // SAFETY: async-signal-safe calls on fds we own, then exec or _exit.
    unsafe {
        match stdio {
            Stdio::Pipes { out, err, own_group } => {
                libc::dup2(out, 1);
                libc::dup2(err, 2);
                if own_group {
                    libc::setpgid(0, 0);
                }
            }
            Stdio::Terminal(slave) => terminal::attach_in_child(slave),
        }
        if !gate.wait_in_child() {
            libc::_exit(126);
        }
        match (program, exec) {
            (Program::Exec { .. }, Some((path, argv))) => {
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                let msg = b"ktstr-init: exec of the payload failed\n";
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(127);
            }
            (Program::Inline { plugin, context, args, env }, _) => {
                // Named after the payload, not `init`, in ps, the monitor
                // and the kernel's stall reports (15 bytes at most).
                let name: Vec<u8> = plugin.name.bytes().filter(|&b| b != 0).take(15).collect();
                if let Ok(name) = std::ffi::CString::new(name) {
                    libc::prctl(libc::PR_SET_NAME, name.as_ptr());
                }
                for (k, v) in *env {
                    std::env::set_var(k, v);
                }
                // Opened only here, in the payload's own process: a plugin
                // that crashes on load takes down this child, never PID 1.
                let code = match Library::open(Path::new(&plugin.path)) {
                    Ok(lib) => lib.run_inline(plugin.index, context, args),
                    Err(e) => {
                        eprintln!("ktstr-init: cannot open payload plugin {}: {e}", plugin.path);
                        127
                    }
                };
                libc::_exit(code);
            }
            _ => libc::_exit(127),
        }
    }
}

impl Running {
    pub(crate) fn pid(&self) -> u32 {
        self.pid as u32
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The payload exited (its output may still be draining).
    pub(crate) fn exited(&self) -> bool {
        self.status.is_some()
    }

    /// The output pipes still open, for a caller polling several payloads.
    pub(crate) fn fds(&self) -> Vec<RawFd> {
        self.open.iter().flatten().map(AsRawFd::as_raw_fd).collect()
    }

    /// Kills the payload (its group when it has one) and notes why.
    pub(crate) fn interrupt(&mut self, why: Interrupt) {
        if self.status.is_none() && self.interrupted.is_none() {
            self.interrupted = Some(why);
            kill(self.pid, self.own_group);
        }
    }

    /// Reads what output is ready (waiting up to `wait_ms` for some) and
    /// reaps the payload once it exits. True when it is reaped and its output
    /// drained (or the 2 s drain after its exit ran out).
    pub(crate) fn pump(&mut self, wait_ms: i32, output: &mut dyn FnMut(bool, &[u8])) -> bool {
        let mut fds: Vec<libc::pollfd> = self
            .open
            .iter()
            .flatten()
            .map(|fd| fd.as_raw_fd())
            .chain(self.terminal.as_ref().and_then(Terminal::input_fd))
            .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        if !fds.is_empty() {
            // SAFETY: fds is a valid array of pollfd.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
        } else if wait_ms > 0 {
            std::thread::sleep(Duration::from_millis(wait_ms.min(20) as u64));
        }
        for (i, slot) in self.open.iter_mut().enumerate() {
            let Some(fd) = slot else { continue };
            let Some(p) = fds.iter().find(|p| p.fd == fd.as_raw_fd()) else { continue };
            if p.revents == 0 {
                continue;
            }
            // SAFETY: reading into our buffer from our fd.
            let n =
                unsafe { libc::read(fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), self.buf.len()) };
            if n <= 0 {
                *slot = None;
                continue;
            }
            let chunk = &self.buf[..n as usize];
            if let Some(t) = self.terminal.as_mut() {
                t.forward(chunk);
            }
            let kept = if i == 0 { self.stdout.push(chunk) } else { self.stderr.push(chunk) };
            if !kept.is_empty() {
                output(i == 0, kept);
            }
        }
        if let Some(t) = self.terminal.as_mut() {
            let port = t.input_fd();
            if fds.iter().any(|p| Some(p.fd) == port && p.revents != 0) {
                t.relay_input();
            }
        }
        if self.status.is_none() {
            let mut st = 0;
            // SAFETY: non-blocking wait for our own child.
            if unsafe { libc::waitpid(self.pid, &mut st, libc::WNOHANG) } == self.pid {
                self.status = Some(st);
                // Grandchildren may hold the pipes: end the group, drain briefly.
                if self.own_group {
                    kill(self.pid, true);
                }
                self.drain_deadline = Some(Instant::now() + Duration::from_secs(2));
            }
        }
        let drained = self.open.iter().all(Option::is_none)
            || self.drain_deadline.is_some_and(|d| Instant::now() > d);
        self.status.is_some() && drained
    }

    /// The outcome; call once [`Running::pump`] returned true.
    pub(crate) fn finish(self) -> Outcome {
        let st = self.status.unwrap_or(0);
        let (exit_code, signal) = match self.status {
            Some(_) if libc::WIFEXITED(st) => (Some(libc::WEXITSTATUS(st)), None),
            Some(_) => (None, libc::WIFSIGNALED(st).then(|| libc::WTERMSIG(st))),
            None => (None, None),
        };
        Outcome {
            pid: self.pid as u32,
            exit_code,
            signal,
            interrupted: self.interrupted,
            duration: self.start.elapsed(),
            stdout: self.stdout,
            stderr: self.stderr,
        }
    }
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
mod tests;
