//! Contained plugin calls: the caller re-executes its own binary with
//! [`CALL_ARG`]; that child opens the library, makes one call and answers
//! in JSON. A crash, an abort or a hang (past a deadline) in the plugin is
//! then an error naming the signal or the wait, and the caller carries on.
//!
//! Both `ktstr` and the guest's `ktstr-init` dispatch [`CALL_ARG`] to
//! [`serve`] before anything else.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ktstr_plugin_api::host::Library;
use ktstr_plugin_api::{Extraction, LaunchSpec, Manifest};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The hidden first argument that makes a binary serve one plugin call.
pub const CALL_ARG: &str = "__plugin-call";

/// How long opening a library and reading its manifests may take.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(5);
/// Extraction of a large output under emulation can take a while.
pub const EXTRACT_DEADLINE: Duration = Duration::from_secs(120);
pub const LAUNCH_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize, Deserialize)]
enum Request {
    Probe { path: PathBuf },
    Extract { path: PathBuf, index: u32, text: String },
    Launch { path: PathBuf, index: u32, requested: String },
}

/// Opens `path` and returns the manifests of its plugins.
pub fn probe(path: &Path) -> Result<Vec<Manifest>, String> {
    contained(&Request::Probe { path: path.into() }, PROBE_DEADLINE)
}

pub fn extract(path: &Path, index: u32, text: &str) -> Result<Extraction, String> {
    let req = Request::Extract { path: path.into(), index, text: text.into() };
    contained(&req, EXTRACT_DEADLINE)
}

pub fn launch(path: &Path, index: u32, requested: &str) -> Result<LaunchSpec, String> {
    let req = Request::Launch { path: path.into(), index, requested: requested.into() };
    contained(&req, LAUNCH_DEADLINE)
}

/// The child's side: reads one request on stdin, answers on the original
/// stdout. The plugin's own prints go to stderr, never into the answer.
pub fn serve() -> i32 {
    let answer_fd = unsafe { libc::dup(1) };
    if answer_fd < 0 || unsafe { libc::dup2(2, 1) } < 0 {
        eprintln!("{CALL_ARG}: cannot set up the answer channel");
        return 2;
    }
    let mut input = String::new();
    let reply = match std::io::stdin().read_to_string(&mut input) {
        Err(e) => answer::<()>(Err(format!("cannot read the request: {e}"))),
        Ok(_) => match serde_json::from_str::<Request>(&input) {
            Err(e) => answer::<()>(Err(format!("unreadable request: {e}"))),
            Ok(req) => handle(req),
        },
    };
    use std::os::fd::FromRawFd;
    let mut out = unsafe { std::fs::File::from_raw_fd(answer_fd) };
    match out.write_all(reply.as_bytes()) {
        Ok(()) => 0,
        Err(_) => 3,
    }
}

fn handle(req: Request) -> String {
    match req {
        Request::Probe { path } => answer(Library::open(&path).map(|l| l.manifests)),
        Request::Extract { path, index, text } => {
            answer(Library::open(&path).and_then(|l| l.extract(index, &text)))
        }
        Request::Launch { path, index, requested } => {
            answer(Library::open(&path).and_then(|l| l.launch(index, &requested)))
        }
    }
}

fn answer<T: Serialize>(r: Result<T, String>) -> String {
    serde_json::to_string(&r).unwrap_or_else(|e| {
        serde_json::to_string(&Err::<(), _>(format!("unserialisable answer: {e}")))
            .expect("a string serialises")
    })
}

/// Runs `req` in a child of this executable and waits at most `deadline`.
fn contained<T: DeserializeOwned>(req: &Request, deadline: Duration) -> Result<T, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let mut child = Command::new(exe)
        .arg(CALL_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the plugin host process: {e}"))?;
    let body = serde_json::to_vec(req).expect("requests serialise");
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let stdout = drain(child.stdout.take().expect("piped"));
    let stderr = drain(child.stderr.take().expect("piped"));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("cannot wait for the plugin host process: {e}")),
        }
    };
    let _ = writer.join();
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(format!(
            "did not answer within {} s (hung in its constructor or call?){}",
            deadline.as_secs(),
            tail(&err)
        ));
    };
    if let Ok(r) = serde_json::from_slice::<Result<T, String>>(&out) {
        return r;
    }
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(sig) => Err(format!("crashed with {}{}", signal_name(sig), tail(&err))),
        None => Err(format!("its host process exited with {status} and no answer{}", tail(&err))),
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// The last line the child printed, as evidence.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    match text.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(l) => format!(" (last stderr line: {})", l.trim()),
        None => String::new(),
    }
}

fn signal_name(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {sig}"),
    }
}
