//! The interactive `ktstr shell` through a real terminal (tmux), under QEMU;
//! `nested.rs` drives the same scenario under ktstr-vmm inside L1.

use ktstr_tests::{ktstr_bin, skip, tmux, vm_tests_enabled};

#[test]
fn interactive_shell_through_a_real_terminal() {
    if !vm_tests_enabled("shell_interactive") {
        return;
    }
    if !tmux::available() {
        skip("shell_interactive", "tmux is not installed (scripts/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = ["shell", "--scheduler", "scx_simple", "--vmm", "qemu"];
    if let Err(e) = tmux::shell_scenario(&ktstr_bin(), &args, dir.path()) {
        panic!("{e}");
    }
}
