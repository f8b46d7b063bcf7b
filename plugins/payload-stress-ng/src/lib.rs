//! Payload adapter for stress-ng. YAML results go to stdout (`--yaml
//! /dev/stdout`); `--metrics-brief` on stderr is the fallback.

use ktstr_plugin_api::{
    export_plugin, BinaryLocator, Manifest, MetricHint, PayloadSpec, Plugin, Polarity, Stream,
};

pub struct StressNg;

impl Plugin for StressNg {
    fn manifest() -> Manifest {
        let bin = BinaryLocator::new(
            "stress-ng",
            Some("KTSTR_STRESS_NG"),
            "install it with `apt-get install stress-ng`",
        );
        let spec = PayloadSpec::new(Some(bin), "stress-ng", Stream::Stdout, "stress-ng-yaml")
            .with_default_args(&[
                "--cpu",
                "2",
                "--timeout",
                "{duration}s",
                "--metrics-brief",
                "--yaml",
                "/dev/stdout",
            ])
            .with_default_duration(3)
            .with_checks(&["exit==0", "cpu/bogo_ops>=1"])
            .with_hints(vec![
                MetricHint::new("cpu/bogo_ops", "ops", Polarity::HigherIsBetter),
                MetricHint::new("cpu/bogo_ops_per_sec_real", "ops/s", Polarity::HigherIsBetter),
            ]);
        Manifest::payload(
            "stress-ng",
            env!("CARGO_PKG_VERSION"),
            "stress-ng: bogo-ops throughput of any stressor",
            spec,
        )
    }
}

export_plugin!(StressNg);
