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
    let o = run(
        &Program::Exec { path: "/bin/sh", args: &args, env: &[] },
        cg.path().to_str().unwrap(),
        true,
        None,
        None,
        &mut w,
    )
    .unwrap();
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
    let o = run(
        &Program::Exec { path: "/bin/sh", args: &args, env: &[] },
        cg.path().to_str().unwrap(),
        true,
        Some(Duration::from_millis(300)),
        None,
        &mut rec(),
    )
    .unwrap();
    assert!(matches!(o.interrupted, Some(Interrupt::TimedOut)));
    assert_eq!(o.signal, Some(libc::SIGKILL));
    assert!(
        o.duration < Duration::from_secs(10),
        "the background sleep must not hold the pipes open"
    );
}

#[test]
fn watcher_can_stop_the_payload() {
    let cg = fake_cgroup();
    let args = sh("sleep 30");
    let mut w = Recorder { stop_after: Some(2), ..rec() };
    let o = run(
        &Program::Exec { path: "/bin/sh", args: &args, env: &[] },
        cg.path().to_str().unwrap(),
        true,
        None,
        None,
        &mut w,
    )
    .unwrap();
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
    let o = run(
        &Program::Exec { path: "/nonexistent/bin", args: &[], env: &[] },
        cg.path().to_str().unwrap(),
        true,
        None,
        None,
        &mut rec(),
    )
    .unwrap();
    assert_eq!(o.exit_code, Some(127));
    assert!(String::from_utf8_lossy(&o.stderr.data).contains("exec of the payload failed"));
}

#[test]
fn unplaceable_child_is_killed_and_reported() {
    let err = run(
        &Program::Exec { path: "/bin/true", args: &[], env: &[] },
        "/nonexistent/cgroup",
        true,
        None,
        None,
        &mut rec(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("/nonexistent/cgroup"));
}

#[test]
fn a_terminal_payload_gets_a_pty_its_size_and_its_keys() {
    use crate::protocol::terminal::{encode_input, TermInput};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    let (guest, mut host) = UnixStream::pair().unwrap();
    let terminal = Terminal::over(std::fs::File::from(std::os::fd::OwnedFd::from(guest))).unwrap();
    // The size comes before the keys, so `read` returns after it is applied.
    host.write_all(&encode_input(&TermInput::Resize { rows: 30, cols: 100 })).unwrap();
    host.write_all(&encode_input(&TermInput::Data(b"hi\n".to_vec()))).unwrap();
    let cg = fake_cgroup();
    let args = sh("read x; tty; stty size; echo got-$x; exit 4");
    let o = run(
        &Program::Exec { path: "/bin/sh", args: &args, env: &[] },
        cg.path().to_str().unwrap(),
        false,
        None,
        Some(terminal),
        &mut rec(),
    )
    .unwrap();
    assert_eq!(o.exit_code, Some(4));
    host.set_nonblocking(true).unwrap();
    let mut screen = Vec::new();
    let _ = host.read_to_end(&mut screen);
    let screen = String::from_utf8_lossy(&screen);
    assert!(screen.contains("/dev/pts/"), "{screen}");
    assert!(screen.contains("30 100\r\n"), "{screen}");
    assert!(screen.contains("got-hi\r\n"), "{screen}");
    assert_eq!(String::from_utf8_lossy(&o.stdout.data), screen, "the transcript is kept");
}
