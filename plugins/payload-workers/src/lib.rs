//! Built-in CPU workers: a payload that needs no external binary, so it runs
//! on any fresh machine. The guest init forks and calls `run_inline`, which
//! runs the workers and prints a JSON report on stdout (read by the `json`
//! extractor).
//!
//! Arguments: `--work spin,yield,futex,sleep` (any subset), `--threads N`
//! (per kind), `--duration SECONDS`, `--sleep-us N` (sleep/wake period).
//! The loops and the latency statistics are `ktstr-work`'s, the same the
//! scenario workers use.

mod args;
mod report;
mod run;

use ktstr_plugin_api::{
    export_plugin, Manifest, MetricHint, PayloadSpec, Plugin, Polarity, RunContext, Stream,
};

pub use args::{parse_args, WorkKind, WorkerArgs};

pub struct Workers;

impl Plugin for Workers {
    fn manifest() -> Manifest {
        let spec = PayloadSpec::new(None, "json", Stream::Stdout, "json")
            .with_default_args(&[
                "--work",
                "spin,yield,futex,sleep",
                "--threads",
                "1",
                "--duration",
                "{duration}",
            ])
            .with_default_duration(3)
            .with_checks(&["exit==0", "work_units>=1", "exists(wake_latency_p99_us)"])
            .with_hints(vec![
                MetricHint::new("work_units", "units", Polarity::HigherIsBetter),
                MetricHint::new("wake_latency_p99_us", "us", Polarity::LowerIsBetter),
            ]);
        Manifest::payload(
            "workers",
            env!("CARGO_PKG_VERSION"),
            "built-in CPU workers (spin, yield-heavy, futex ping-pong, sleep/wake): work done \
                and wake-up latency",
            spec,
        )
    }

    fn run_inline(_context: &RunContext, args: &[String]) -> i32 {
        let parsed = match parse_args(args) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("workers: {e}");
                return 2;
            }
        };
        let results = run::run_all(&parsed);
        println!("{}", report::to_json(&parsed, &results));
        0
    }
}

export_plugin!(Workers);
