//! Payload adapter for schbench, the wake-up latency benchmark.
//! schbench prints its percentile tables on stderr; the `schbench`
//! extractor reads them (or `--json -` on stdout).

use ktstr_plugin_api::{
    export_plugin, BinaryLocator, Manifest, MetricHint, PayloadSpec, Plugin, Polarity, Stream,
};

pub struct Schbench;

impl Plugin for Schbench {
    fn manifest() -> Manifest {
        let bin = BinaryLocator::new(
            "schbench",
            Some("KTSTR_SCHBENCH"),
            "schbench is not packaged by Debian: build it from \
                git://git.kernel.org/pub/scm/linux/kernel/git/mason/schbench.git (`make`) and \
                put it on PATH",
        );
        let spec = PayloadSpec::new(Some(bin), "schbench", Stream::Stderr, "schbench-text")
            .with_default_args(&["-m", "1", "-t", "2", "-r", "{duration}"])
            .with_default_duration(5)
            .with_checks(&["exit==0", "exists(wakeup_latency_p99)"])
            .with_hints(vec![
                MetricHint::new("wakeup_latency_p99", "us", Polarity::LowerIsBetter),
                MetricHint::new("request_latency_p99", "us", Polarity::LowerIsBetter),
                MetricHint::new("average_rps", "requests/s", Polarity::HigherIsBetter),
            ]);
        Manifest::payload(
            "schbench",
            env!("CARGO_PKG_VERSION"),
            "schbench: wake-up and request latency percentiles under a message/worker load",
            spec,
        )
    }
}

export_plugin!(Schbench);
