//! The interactive `ktstr shell`, driven through a real terminal: tmux runs
//! ktstr in a pane of a server of its own, types into it (`send-keys`) and
//! reads the screen (`capture-pane`), as a user would.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a step may take before the scenario gives up and shows the
/// screen (a deadline against hangs, not a speed check).
const STEP_DEADLINE: Duration = Duration::from_secs(300);
/// What the pane prints once ktstr has exited, then its exit code.
pub const EXITED: &str = "KTSTR-PANE-EXITED rc=";

/// A tmux server of its own, killed when dropped.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A detached session `t` of `cols`×`rows` running `script` (sh).
    pub fn start(cols: u16, rows: u16, script: &str) -> Result<Tmux, String> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tmux = Tmux { socket: format!("ktstr-test-{}-{n}", std::process::id()) };
        let (x, y) = (cols.to_string(), rows.to_string());
        tmux.cmd(&["new-session", "-d", "-s", "t", "-x", &x, "-y", &y, script])?;
        Ok(tmux)
    }

    fn cmd(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output();
        let out = out.map_err(|e| format!("run tmux: {e}"))?;
        if !out.status.success() {
            return Err(format!("tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The pane's text, its scrollback included, wrapped lines joined.
    pub fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-J", "-S", "-500", "-t", "t"]).unwrap_or_else(|e| e)
    }

    pub fn keys(&self, keys: &[&str]) -> Result<(), String> {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        self.cmd(&args).map(drop)
    }

    /// The pid of the pane's shell (ktstr is its child).
    pub fn pane_pid(&self) -> Result<u32, String> {
        let out = self.cmd(&["display-message", "-p", "-t", "t", "#{pane_pid}"])?;
        out.trim().parse().map_err(|e| format!("pane pid {out:?}: {e}"))
    }

    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), String> {
        let (x, y) = (cols.to_string(), rows.to_string());
        self.cmd(&["resize-window", "-t", "t", "-x", &x, "-y", &y]).map(drop)
    }

    /// Waits until `done` holds for the screen. Fails with the screen when
    /// the deadline passes or ktstr exits first.
    pub fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> Result<String, String> {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return Ok(screen);
            }
            if screen.contains(EXITED) || start.elapsed() > STEP_DEADLINE {
                return Err(format!("never saw {what}; the screen:\n{screen}"));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").status();
    }
}

/// Whether the VM test `test` driven through tmux runs here: VM tests are
/// on and tmux can be run (else a loud skip).
pub fn tests_enabled(test: &str) -> bool {
    if !crate::vm_tests_enabled(test) {
        return false;
    }
    let ok = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    if !ok {
        crate::skip(test, "tmux is not installed (scripts/setup.sh installs it)");
    }
    ok
}

/// A line of the screen that is exactly `line`.
pub fn has_line(screen: &str, line: &str) -> bool {
    screen.lines().any(|l| l.trim_end() == line)
}

/// The pane's shell script: `stty -a` into `before`, `command`, `stty -a`
/// into `after`, then `EXITED` and the command's exit code; the pane stays.
pub fn pane_script(command: &str, before: &Path, after: &Path) -> String {
    format!(
        "stty -a > {b}; {command}; rc=$?; stty -a > {a}; echo; echo {EXITED}$rc; exec sleep 900",
        b = before.display(),
        a = after.display(),
    )
}

/// `ktstr ARGS` (an interactive shell under scx_simple) in a 120×40 pane:
/// it types `cat /sys/kernel/sched_ext/root/ops` and sees `simple`, stops a
/// `sleep` with Ctrl-C, sees a resize in `stty size`, types `exit 3`; ktstr
/// must exit 3 with `stty -a` the same before and after. Err: what went
/// wrong, with the screen.
pub fn shell_scenario(ktstr: &Path, args: &[&str], dir: &Path) -> Result<(), String> {
    let (before, after) = (dir.join("stty-before"), dir.join("stty-after"));
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let command = format!("{} {}", ktstr.display(), quoted.join(" "));
    let script = pane_script(&command, &before, &after);
    let tmux = Tmux::start(120, 40, &script)?;
    tmux.wait_for("the guest's prompt", |s| s.contains("ktstr:/root#"))?;
    tmux.keys(&["cat /sys/kernel/sched_ext/root/ops", "Enter"])?;
    tmux.wait_for("`simple` on a line of its own", |s| has_line(s, "simple"))?;

    // Ctrl-C reaches the guest's foreground job; ktstr lives on.
    tmux.keys(&["sleep 300; echo slept", "Enter"])?;
    tmux.wait_for("the sleep typed", |s| s.contains("sleep 300; echo slept"))?;
    tmux.keys(&["C-c"])?;
    tmux.keys(&["echo after-ctrl-c", "Enter"])?;
    let screen = tmux.wait_for("the shell after Ctrl-C", |s| has_line(s, "after-ctrl-c"))?;
    if has_line(&screen, "slept") {
        return Err(format!("Ctrl-C did not stop the sleep:\n{screen}"));
    }

    // The guest's PTY follows the terminal's size.
    tmux.resize(100, 30)?;
    tmux.keys(&["stty size", "Enter"])?;
    tmux.wait_for("the guest's PTY at 30 rows, 100 columns", |s| has_line(s, "30 100"))?;
    tmux.resize(120, 40)?;

    tmux.keys(&["exit 3", "Enter"])?;
    let screen = tmux.wait_for("ktstr's exit", |s| s.contains(EXITED))?;
    let rc = screen.split(EXITED).nth(1).and_then(|r| r.split_whitespace().next());
    if rc != Some("3") {
        return Err(format!("ktstr exited {rc:?}, not 3:\n{screen}"));
    }
    if !screen.contains("the shell exited 3") {
        return Err(format!("no summary line:\n{screen}"));
    }
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    if read(&before).is_empty() || read(&before) != read(&after) {
        return Err(format!(
            "the terminal was not restored:\nbefore: {}\nafter: {}",
            read(&before),
            read(&after)
        ));
    }
    Ok(())
}
