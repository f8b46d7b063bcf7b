//! A payload adapter: a workload, how to run it and how to read its results.

use crate::manifest::{BinaryLocator, MetricHint, Stream};

/// A payload adapter's manifest section. Build it with [`PayloadSpec::new`]
/// and the `with_*` methods; every field not set has a documented default.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PayloadSpec {
    /// The binary to run in the guest; `None` for payloads that run inside
    /// the plugin itself ([`crate::Plugin::run_inline`]).
    pub binary: Option<BinaryLocator>,
    /// Arguments used when the user gives no `--arg`.
    pub default_args: Vec<String>,
    /// The extractor plugin (by name) that reads this payload's output.
    pub extractor: String,
    /// The stream the metrics are expected on. The host tries it first and
    /// falls back to the other only when it yields nothing (never merged).
    pub metric_stream: Stream,
    /// The format the extractor should expect (`json`, `text`, `yaml`…), as a
    /// hint for humans and for generic extractors.
    pub format: String,
    /// Checks in the host's syntax (`exit==0`, `wakeup_latency_p99<=5000`).
    pub default_checks: Vec<String>,
    pub metric_hints: Vec<MetricHint>,
    /// Extra host files to pack into the guest at the same path (data files,
    /// helper programs; shared libraries of `binary` are found by the host).
    pub extra_files: Vec<String>,
    /// Run the payload in a fresh process group (killed as a group).
    pub own_process_group: bool,
}

impl PayloadSpec {
    /// A payload with no checks, hints or extra files, in its own process
    /// group; fill in what applies.
    pub fn new(
        binary: Option<BinaryLocator>,
        extractor: &str,
        metric_stream: Stream,
        format: &str,
    ) -> Self {
        PayloadSpec {
            binary,
            default_args: Vec::new(),
            extractor: extractor.into(),
            metric_stream,
            format: format.into(),
            default_checks: Vec::new(),
            metric_hints: Vec::new(),
            extra_files: Vec::new(),
            own_process_group: true,
        }
    }

    pub fn with_default_args(mut self, args: &[&str]) -> Self {
        self.default_args = strings(args);
        self
    }

    pub fn with_checks(mut self, exprs: &[&str]) -> Self {
        self.default_checks = strings(exprs);
        self
    }

    pub fn with_hints(mut self, hints: Vec<MetricHint>) -> Self {
        self.metric_hints = hints;
        self
    }

    pub fn with_extra_files(mut self, paths: &[&str]) -> Self {
        self.extra_files = strings(paths);
        self
    }

    /// Keep the payload in the init's process group (it is then killed alone).
    pub fn in_callers_process_group(mut self) -> Self {
        self.own_process_group = false;
        self
    }
}

pub(crate) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// What an inline payload is told about the run it is part of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RunContext {
    /// How long the payload may run (`--duration`), if the run set a limit.
    pub duration_ms: Option<u64>,
    /// The CPUs online in the guest.
    pub nr_cpus: u32,
    /// Those CPUs in the kernel's list format (`0-3`, `0,2-5`).
    pub cpu_list: String,
}
