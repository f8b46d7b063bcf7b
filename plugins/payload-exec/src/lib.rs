//! Payload adapter `exec`: one shell command in the guest (`busybox sh -c
//! CMD`; the guest has no coreutils, and busybox's shell runs its own
//! applets: cat, nproc, grep, sleep…), as `ktstr run --exec CMD` and
//! `ktstr shell --exec CMD` give it. The command takes as long as it takes:
//! `--duration` is only its limit. Its exit code is checked (`exit==0`); a
//! command that prints a JSON document gets its numbers as metrics.

use ktstr_plugin_api::{export_plugin, BinaryLocator, Manifest, PayloadSpec, Plugin, Stream};

pub struct Exec;

/// What runs when no command is given: a pointer to how to give one.
const NO_COMMAND: &str =
    "echo 'exec: no command; give one with ktstr run --exec CMD (or --arg=sh --arg=-c \
        --arg=CMD)' >&2; exit 2";

impl Plugin for Exec {
    fn manifest() -> Manifest {
        let busybox = BinaryLocator::new(
            "busybox",
            Some("KTSTR_BUSYBOX"),
            "install a static busybox (`apt-get install busybox-static`)",
        );
        let spec = PayloadSpec::new(Some(busybox), "json", Stream::Stdout, "json")
            .with_default_args(&["sh", "-c", NO_COMMAND])
            .with_checks(&["exit==0"])
            .fixed_length(600);
        Manifest::payload(
            "exec",
            env!("CARGO_PKG_VERSION"),
            "one shell command in the guest (`ktstr run --exec CMD`)",
            spec,
        )
    }
}

export_plugin!(Exec);
