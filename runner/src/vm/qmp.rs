//! QEMU's machine protocol (QMP) over a Unix socket, used to ask a QEMU
//! whose guest stopped answering where its vCPUs are, and to nudge it with
//! an NMI. QMP is one JSON object a line; the few commands used here did
//! not warrant a crate (the `qapi` crates bring an async runtime along).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

pub struct Monitor {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Monitor {
    /// Connects and negotiates. `timeout` bounds every read and write: a
    /// QEMU whose main loop is stuck does not answer, and that is an answer.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Monitor> {
        let stream = UnixStream::connect(socket)
            .with_context(|| format!("connect to QEMU's monitor {}", socket.display()))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut monitor = Monitor { reader: BufReader::new(stream.try_clone()?), writer: stream };
        let greeting = monitor.message().context("QEMU's monitor sent no greeting")?;
        if greeting.get("QMP").is_none() {
            bail!("QEMU's monitor greeted with {greeting}");
        }
        monitor.execute("qmp_capabilities", json!({}))?;
        Ok(monitor)
    }

    /// A human monitor command (`info registers -a`), its text as QEMU
    /// prints it; `cpu` picks the vCPU whose view addresses are read in.
    pub fn human(&mut self, command: &str, cpu: Option<u32>) -> Result<String> {
        let mut args = json!({ "command-line": command });
        if let Some(cpu) = cpu {
            args["cpu-index"] = json!(cpu);
        }
        let reply = self.execute("human-monitor-command", args)?;
        Ok(reply.as_str().unwrap_or_default().replace("\r\n", "\n"))
    }

    /// An NMI to every vCPU of the guest (`inject-nmi`).
    pub fn inject_nmi(&mut self) -> Result<()> {
        self.execute("inject-nmi", json!({})).map(drop)
    }

    fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let line = json!({ "execute": command, "arguments": arguments }).to_string();
        writeln!(self.writer, "{line}").context("write to QEMU's monitor")?;
        loop {
            let mut reply = self.message()?;
            // Asynchronous events may come first.
            if reply.get("event").is_some() {
                continue;
            }
            if let Some(ret) = reply.get_mut("return") {
                return Ok(ret.take());
            }
            bail!("QEMU's monitor refused `{command}`: {reply}");
        }
    }

    fn message(&mut self) -> Result<Value> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).context("QEMU's monitor did not answer")?;
        if n == 0 {
            bail!("QEMU's monitor closed the connection");
        }
        serde_json::from_str(&line)
            .with_context(|| format!("QEMU's monitor sent `{}`", line.trim()))
    }
}
