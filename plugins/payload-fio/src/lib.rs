//! Payload adapter for fio. The default job is a short random read/write
//! mix in the run's scratch directory: the first disk given with `--disk`
//! (O_DIRECT, so the disk is measured and not the page cache), else the
//! guest's tmpfs; JSON output on stdout for the `fio` extractor.

use ktstr_plugin_api::{
    export_plugin, BinaryLocator, Manifest, MetricHint, PayloadSpec, Plugin, Polarity, Stream,
};

pub struct Fio;

impl Plugin for Fio {
    fn manifest() -> Manifest {
        let bin =
            BinaryLocator::new("fio", Some("KTSTR_FIO"), "install it with `apt-get install fio`");
        let spec = PayloadSpec::new(Some(bin), "fio", Stream::Stdout, "fio-json")
            .with_default_args(&[
                "--name=randrw",
                "--rw=randrw",
                "--size=16M",
                "--bs=4k",
                "--ioengine=psync",
                "--runtime={duration}",
                "--time_based",
                "--filename={scratch_dir}/ktstr-fio.dat",
                "--direct={scratch_direct}",
                "--output-format=json",
            ])
            .with_default_duration(3)
            // Any direction: a job given with --arg may only read or only write.
            .with_checks(&["exit==0", "exists(*/iops)"])
            .with_hints(vec![
                MetricHint::new("read/iops", "ops/s", Polarity::HigherIsBetter),
                MetricHint::new("read/bw_kib", "KiB/s", Polarity::HigherIsBetter),
                MetricHint::new("read/clat_p99_ns", "ns", Polarity::LowerIsBetter),
                MetricHint::new("write/iops", "ops/s", Polarity::HigherIsBetter),
                MetricHint::new("write/bw_kib", "KiB/s", Polarity::HigherIsBetter),
                MetricHint::new("write/clat_p99_ns", "ns", Polarity::LowerIsBetter),
            ]);
        Manifest::payload(
            "fio",
            env!("CARGO_PKG_VERSION"),
            "fio: I/O throughput and completion-latency percentiles per job",
            spec,
        )
    }
}

export_plugin!(Fio);
