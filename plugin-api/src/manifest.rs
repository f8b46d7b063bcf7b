//! What a plugin says about itself: the manifest the host reads before it
//! packs anything into a guest.

use abi_stable::std_types::{ROption, RString, RVec};
use abi_stable::StableAbi;

/// The three kinds of plugin. A library is exactly one of them.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginKind {
    Payload,
    Extractor,
    Scheduler,
}

impl PluginKind {
    pub const ALL: [PluginKind; 3] = [Self::Payload, Self::Extractor, Self::Scheduler];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Payload => "payload",
            Self::Extractor => "extractor",
            Self::Scheduler => "scheduler",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An output stream of a payload.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// Whether a bigger value of a metric is better.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    HigherIsBetter,
    LowerIsBetter,
    Neutral,
}

/// The manifest every plugin returns. Exactly one of `payload`, `extractor`
/// and `scheduler` is set, the one that matches `kind`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct Manifest {
    /// Unique per kind; what users type (`--plugin schbench`).
    pub name: RString,
    /// The plugin's own version.
    pub version: RString,
    pub kind: PluginKind,
    /// One line, shown by `ktstr list-plugins`.
    pub description: RString,
    /// Filled in by the export shim with [`crate::ABI_VERSION`].
    pub abi_version: RString,
    pub payload: ROption<PayloadSpec>,
    pub extractor: ROption<ExtractorSpec>,
    pub scheduler: ROption<SchedulerSpec>,
}

impl Manifest {
    fn new(name: &str, version: &str, kind: PluginKind, description: &str) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            kind,
            description: description.into(),
            abi_version: crate::ABI_VERSION.into(),
            payload: ROption::RNone,
            extractor: ROption::RNone,
            scheduler: ROption::RNone,
        }
    }

    pub fn payload(name: &str, version: &str, description: &str, spec: PayloadSpec) -> Self {
        let mut m = Self::new(name, version, PluginKind::Payload, description);
        m.payload = ROption::RSome(spec);
        m
    }

    pub fn extractor(name: &str, version: &str, description: &str, spec: ExtractorSpec) -> Self {
        let mut m = Self::new(name, version, PluginKind::Extractor, description);
        m.extractor = ROption::RSome(spec);
        m
    }

    pub fn scheduler(name: &str, version: &str, description: &str, spec: SchedulerSpec) -> Self {
        let mut m = Self::new(name, version, PluginKind::Scheduler, description);
        m.scheduler = ROption::RSome(spec);
        m
    }
}

/// How the host finds a binary a plugin needs inside the guest.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct BinaryLocator {
    /// The file name looked up on `PATH` (and in the kernel cache entry for
    /// schedulers), e.g. `schbench`.
    pub name: RString,
    /// An environment variable that, when set, names the binary's path and
    /// wins over every other lookup, e.g. `KTSTR_SCHBENCH`.
    pub env_override: ROption<RString>,
    /// A one-line hint shown when the binary is not found (how to install it).
    pub install_hint: RString,
}

impl BinaryLocator {
    pub fn new(name: &str, env_override: Option<&str>, install_hint: &str) -> Self {
        BinaryLocator {
            name: name.into(),
            env_override: env_override.map(RString::from).into(),
            install_hint: install_hint.into(),
        }
    }
}

/// A check in its text form (`wakeup_latency_p99<=5000`, `exit==0`), parsed by
/// the host so plugins and the CLI share one syntax.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct CheckSpec {
    pub expr: RString,
}

/// What the host should know about a metric: its unit and which way is better.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct MetricHint {
    pub name: RString,
    pub unit: RString,
    pub polarity: Polarity,
}

impl MetricHint {
    pub fn new(name: &str, unit: &str, polarity: Polarity) -> Self {
        MetricHint { name: name.into(), unit: unit.into(), polarity }
    }
}

/// A payload adapter: a workload and how to read its results.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PayloadSpec {
    /// The binary to run in the guest; `None` for payloads that run inside
    /// the plugin itself ([`crate::Plugin::run_inline`]).
    pub binary: ROption<BinaryLocator>,
    /// Arguments used when the user gives no `--arg`.
    pub default_args: RVec<RString>,
    /// The extractor plugin (by name) that reads this payload's output.
    pub extractor: RString,
    /// The stream the metrics are expected on. The host tries it first and
    /// falls back to the other only when it yields nothing (never merged).
    pub metric_stream: Stream,
    /// The format the extractor should expect (`json`, `text`, `yaml`…), as a
    /// hint for humans and for generic extractors.
    pub format: RString,
    pub default_checks: RVec<CheckSpec>,
    pub metric_hints: RVec<MetricHint>,
    /// Extra host files to pack into the guest at the same path.
    pub extra_files: RVec<RString>,
    /// Run the payload in a fresh process group (killed as a group).
    pub own_process_group: bool,
}

impl PayloadSpec {
    /// A payload with no checks, hints or extra files; fill in what applies.
    pub fn new(
        binary: Option<BinaryLocator>,
        extractor: &str,
        metric_stream: Stream,
        format: &str,
    ) -> Self {
        PayloadSpec {
            binary: binary.into(),
            default_args: RVec::new(),
            extractor: extractor.into(),
            metric_stream,
            format: format.into(),
            default_checks: RVec::new(),
            metric_hints: RVec::new(),
            extra_files: RVec::new(),
            own_process_group: true,
        }
    }

    pub fn with_default_args(mut self, args: &[&str]) -> Self {
        self.default_args = args.iter().map(|a| RString::from(*a)).collect();
        self
    }

    pub fn with_checks(mut self, exprs: &[&str]) -> Self {
        self.default_checks = exprs.iter().map(|e| CheckSpec { expr: (*e).into() }).collect();
        self
    }

    pub fn with_hints(mut self, hints: Vec<MetricHint>) -> Self {
        self.metric_hints = hints.into();
        self
    }
}

/// A metric extractor.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ExtractorSpec {
    /// Formats understood, e.g. `["schbench-text", "schbench-json"]`.
    pub formats: RVec<RString>,
}

impl ExtractorSpec {
    pub fn new(formats: &[&str]) -> Self {
        ExtractorSpec { formats: formats.iter().map(|f| RString::from(*f)).collect() }
    }
}

/// A scheduler launcher.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct SchedulerSpec {
    /// The binary it starts; `None` for schedulers built into the kernel (EEVDF)
    /// and for launchers whose binary is named by the user (see `launch`).
    pub binary: ROption<BinaryLocator>,
    pub default_args: RVec<RString>,
    /// True when this launcher starts any binary the user names
    /// (`--scheduler scx_qmap` or a path), not only its own.
    pub accepts_any_binary: bool,
    /// Whether the scheduler is a sched_ext one (readiness is then checked via
    /// `/sys/kernel/sched_ext`).
    pub sched_ext: bool,
}
