//! What a plugin says about itself: the manifest the host reads before it
//! packs anything into a guest. Plain Rust types; the export shim converts
//! them to the ABI form ([`crate::ffi`]) and the host converts them back.

use crate::payload::PayloadSpec;
use crate::scheduler::SchedulerSpec;

/// The kinds of plugin. A library may export several plugins of any kinds.
///
/// Non-exhaustive: a later ABI minor version may add a kind, and an older
/// host reports a plugin of a kind it does not know as broken, naming it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
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
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
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

    /// The other stream.
    pub fn other(self) -> Stream {
        match self {
            Self::Stdout => Self::Stderr,
            Self::Stderr => Self::Stdout,
        }
    }
}

/// Which way a metric is better.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Polarity {
    #[cfg_attr(feature = "serde", serde(rename = "higher"))]
    HigherIsBetter,
    #[cfg_attr(feature = "serde", serde(rename = "lower"))]
    LowerIsBetter,
    #[cfg_attr(feature = "serde", serde(rename = "neutral"))]
    Neutral,
}

/// The manifest of one plugin. Exactly one of `payload`, `extractor` and
/// `scheduler` is set, the one that matches `kind`: build it with
/// [`Manifest::payload`], [`Manifest::extractor`] or [`Manifest::scheduler`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Manifest {
    /// Unique per kind; what users type (`--plugin schbench`).
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    pub kind: PluginKind,
    /// One line, shown by `ktstr list-plugins`.
    pub description: String,
    /// The ABI the plugin was built against; filled in by the export shim.
    pub abi_version: String,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub payload: Option<PayloadSpec>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub extractor: Option<ExtractorSpec>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub scheduler: Option<SchedulerSpec>,
}

impl Manifest {
    fn new(name: &str, version: &str, kind: PluginKind, description: &str) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            kind,
            description: description.into(),
            abi_version: crate::ABI_VERSION.into(),
            payload: None,
            extractor: None,
            scheduler: None,
        }
    }

    pub fn payload(name: &str, version: &str, description: &str, spec: PayloadSpec) -> Self {
        Manifest {
            payload: Some(spec),
            ..Self::new(name, version, PluginKind::Payload, description)
        }
    }

    pub fn extractor(name: &str, version: &str, description: &str, spec: ExtractorSpec) -> Self {
        let m = Self::new(name, version, PluginKind::Extractor, description);
        Manifest { extractor: Some(spec), ..m }
    }

    pub fn scheduler(name: &str, version: &str, description: &str, spec: SchedulerSpec) -> Self {
        let m = Self::new(name, version, PluginKind::Scheduler, description);
        Manifest { scheduler: Some(spec), ..m }
    }

    /// Checks what the host relies on: a usable name and exactly the
    /// section `kind` calls for.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "invalid plugin name `{name}`: use letters, digits, `-`, `_` and `.`"
            ));
        }
        let kind = self.kind;
        let sections = [self.payload.is_some(), self.extractor.is_some(), self.scheduler.is_some()];
        let expected = PluginKind::ALL.map(|k| k == kind);
        if sections != expected {
            return Err(format!(
                "manifest of `{name}` says kind {kind} but does not carry exactly the {kind} \
                    section"
            ));
        }
        Ok(())
    }
}

/// How the host finds a binary a plugin needs inside the guest: the
/// environment override, else `PATH`, else (for payloads) the directory of
/// the plugin library itself, where cargo puts a crate's own `[[bin]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BinaryLocator {
    /// The file name looked up on `PATH` (and in the kernel cache entry for
    /// schedulers), e.g. `schbench`; or an absolute path.
    pub name: String,
    /// An environment variable that, when set, names the binary's path and
    /// wins over every other lookup, e.g. `KTSTR_SCHBENCH`.
    pub env_override: Option<String>,
    /// A one-line hint shown when the binary is not found (how to install it).
    pub install_hint: String,
}

impl BinaryLocator {
    pub fn new(name: &str, env_override: Option<&str>, install_hint: &str) -> Self {
        BinaryLocator {
            name: name.into(),
            env_override: env_override.map(String::from),
            install_hint: install_hint.into(),
        }
    }
}

/// What the host should know about a metric: its unit and which way is better.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MetricHint {
    pub name: String,
    pub unit: String,
    #[cfg_attr(feature = "serde", serde(rename = "better"))]
    pub polarity: Polarity,
}

impl MetricHint {
    pub fn new(name: &str, unit: &str, polarity: Polarity) -> Self {
        MetricHint { name: name.into(), unit: unit.into(), polarity }
    }
}

/// A metric extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ExtractorSpec {
    /// Formats understood, e.g. `["schbench-text", "schbench-json"]`.
    pub formats: Vec<String>,
}

impl ExtractorSpec {
    pub fn new(formats: &[&str]) -> Self {
        ExtractorSpec { formats: formats.iter().map(|f| f.to_string()).collect() }
    }
}
