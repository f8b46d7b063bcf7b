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
    /// The run length when the user gives no `--duration` (`None`: the
    /// host's default, 10 s). Arguments get it as `{duration}`.
    pub default_duration_s: Option<u32>,
    /// The payload takes as long as it takes (a test suite): `--duration`
    /// is then only its time limit, not a length it is asked to run.
    pub fixed_length: bool,
    /// How long past its duration the payload may take to finish before it
    /// is killed as timed out (`None`: the host's default, 30 s).
    pub grace_s: Option<u32>,
    /// What a run must offer; violating runs are refused before boot.
    pub requirements: Requirements,
    /// Make the binary's stdout and stderr line-buffered (stdio's
    /// `stdbuf -oL -eL`), so output a forked child inherits is never
    /// printed twice. On by default.
    pub line_buffered: bool,
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
            default_duration_s: None,
            fixed_length: false,
            grace_s: None,
            requirements: Requirements::default(),
            line_buffered: true,
        }
    }

    /// Run for `seconds` when the user gives no `--duration`.
    pub fn with_default_duration(mut self, seconds: u32) -> Self {
        self.default_duration_s = Some(seconds);
        self
    }

    /// A payload that takes as long as it takes; `limit_s` is its time
    /// limit when the user gives no `--duration`.
    pub fn fixed_length(mut self, limit_s: u32) -> Self {
        self.fixed_length = true;
        self.default_duration_s = Some(limit_s);
        self
    }

    /// Allow `seconds` past the duration to finish (start-up, reporting).
    pub fn with_grace(mut self, seconds: u32) -> Self {
        self.grace_s = Some(seconds);
        self
    }

    pub fn with_requirements(mut self, requirements: Requirements) -> Self {
        self.requirements = requirements;
        self
    }

    /// Leave the binary's stdio buffering as it is.
    pub fn unbuffered_output(mut self) -> Self {
        self.line_buffered = false;
        self
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

/// Which schedulers a payload can run under.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum SchedulerNeed {
    #[default]
    Any,
    /// Only the kernel's own scheduler: the payload loads sched_ext
    /// schedulers itself (e.g. the kernel's sched_ext selftests).
    EevdfOnly,
    /// Only a sched_ext scheduler.
    SchedExtOnly,
}

/// What a run must offer a payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Requirements {
    pub scheduler: SchedulerNeed,
    /// Fewest CPUs in the guest topology (0: no minimum).
    pub min_cpus: u32,
    /// Fewest last-level caches in the guest topology (0: no minimum).
    pub min_llcs: u32,
}

impl Requirements {
    pub fn eevdf_only(mut self) -> Self {
        self.scheduler = SchedulerNeed::EevdfOnly;
        self
    }

    pub fn sched_ext_only(mut self) -> Self {
        self.scheduler = SchedulerNeed::SchedExtOnly;
        self
    }

    pub fn min_cpus(mut self, n: u32) -> Self {
        self.min_cpus = n;
        self
    }

    pub fn min_llcs(mut self, n: u32) -> Self {
        self.min_llcs = n;
        self
    }
}

pub(crate) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// What a payload is told about the run it is part of (inline payloads get
/// it as this struct; binaries as `{name}` templates in their arguments and
/// as `KTSTR_*` environment variables).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RunContext {
    /// How long the payload may run (`--duration`), if the run set a limit.
    pub duration_ms: Option<u64>,
    /// The CPUs online in the guest.
    pub nr_cpus: u32,
    /// Those CPUs in the kernel's list format (`0-3`, `0,2-5`).
    pub cpu_list: String,
    /// The guest's memory.
    pub memory_mib: u32,
    /// A directory of this payload's own; the files it leaves there come
    /// back to the host with the run's artifacts (`out/`).
    pub out_dir: String,
}
