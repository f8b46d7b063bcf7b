//! The interactive `ktstr shell`, driven through a real terminal: tmux runs
//! ktstr in a pane, types into it (`send-keys`) and reads the screen
//! (`capture-pane`), as a user would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ktstr_tests::{ktstr_bin, skip, vm_tests_enabled};

/// How long a step may take before the test gives up and shows the screen
/// (a deadline against hangs, not a speed check: TCG boots in seconds).
const STEP_DEADLINE: Duration = Duration::from_secs(240);

/// A tmux server of the test's own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output();
        let out = out.expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-J", "-S", "-200", "-t", "t"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        self.cmd(&args);
    }

    /// Waits until `done` holds for the screen; fails showing it if it never does.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return;
            }
            assert!(start.elapsed() < STEP_DEADLINE, "never saw {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn resize(&self, cols: u16, rows: u16) {
        self.cmd(&["resize-window", "-t", "t", "-x", &cols.to_string(), "-y", &rows.to_string()]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").status();
    }
}

fn has_line(screen: &str, line: &str) -> bool {
    screen.lines().any(|l| l.trim_end() == line)
}

fn wait_file(path: &Path, tmux: &Tmux) -> String {
    tmux.wait_for(&format!("{} written", path.display()), |_| path.exists());
    std::thread::sleep(Duration::from_millis(200)); // its writer is a shell's `>`
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn interactive_shell_through_a_real_terminal() {
    if !vm_tests_enabled("shell_interactive") {
        return;
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        skip("shell_interactive", "tmux is not installed (scripts/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| -> PathBuf { dir.path().join(name) };
    let script = format!(
        "stty -a > {before}; {ktstr} shell --scheduler scx_simple --vmm qemu; \
         echo $? > {rc}; stty -a > {after}; exec sleep 600",
        before = file("before").display(),
        ktstr = ktstr_bin().display(),
        rc = file("rc").display(),
        after = file("after").display(),
    );
    let tmux = Tmux { socket: format!("ktstr-test-{}", std::process::id()) };
    tmux.cmd(&["new-session", "-d", "-s", "t", "-x", "120", "-y", "40", &script]);

    tmux.wait_for("the guest's prompt", |s| s.contains("ktstr:/root#"));
    tmux.keys(&["cat /sys/kernel/sched_ext/root/ops", "Enter"]);
    tmux.wait_for("`simple` on a line of its own", |s| has_line(s, "simple"));

    // Ctrl-C reaches the guest's foreground job, and ktstr lives on.
    tmux.keys(&["sleep 300; echo slept", "Enter"]);
    tmux.wait_for("the sleep typed", |s| s.contains("sleep 300; echo slept"));
    tmux.keys(&["C-c"]);
    tmux.keys(&["echo after-ctrl-c", "Enter"]);
    tmux.wait_for("the shell after Ctrl-C", |s| has_line(s, "after-ctrl-c"));
    assert!(!has_line(&tmux.screen(), "slept"), "Ctrl-C did not stop the sleep");

    // The window's size follows the terminal's.
    tmux.resize(100, 30);
    tmux.keys(&["stty size", "Enter"]);
    tmux.wait_for("the guest's PTY at 30 rows, 100 columns", |s| has_line(s, "30 100"));
    tmux.resize(120, 40);

    tmux.keys(&["exit 3", "Enter"]);
    let rc = wait_file(&file("rc"), &tmux);
    assert_eq!(rc.trim(), "3", "ktstr's exit code; the screen:\n{}", tmux.screen());
    let after = wait_file(&file("after"), &tmux);
    let before = std::fs::read_to_string(file("before")).unwrap();
    assert_eq!(before, after, "the terminal was not restored");
    assert!(tmux.screen().contains("the shell exited 3"), "{}", tmux.screen());
}
