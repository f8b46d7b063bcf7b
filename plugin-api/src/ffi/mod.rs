//! The wire form of the ABI: what actually crosses between ktstr and a
//! plugin library. Plugin authors never touch it; the export shim and the
//! host convert from and to the plain types of this crate.
//!
//! Every struct is an abi_stable *prefix type*: a minor ABI version may
//! append fields after the `last_prefix_field`, and a host reads each such
//! field as `Option` (`None`: the plugin predates it). Enums are integer
//! codes with named constants, so a newer plugin's new value reaches an
//! older host as an unknown code it can report, not as undefined behaviour.
//! Prefix fields must be `Copy`, hence `RStr<'static>` and `RSlice<'static>`:
//! the shim leaks what it returns (a few KiB per call; the callers are
//! short-lived processes).

mod codes;
mod module;

use abi_stable::std_types::{ROption, RSlice, RStr};
use abi_stable::StableAbi;

pub use codes::{KindCode, PolarityCode, SchedNeedCode, SignalCode, StreamCode};
pub use module::{PluginMod, PluginModRef};

/// A string the plugin owns for the rest of the process.
pub type Str = RStr<'static>;
/// A list the plugin owns for the rest of the process.
pub type List<T> = RSlice<'static, T>;

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ManifestRef)))]
#[sabi(missing_field(option))]
pub struct Manifest {
    pub name: Str,
    pub version: Str,
    pub kind: KindCode,
    pub description: Str,
    pub abi_version: Str,
    pub payload: ROption<PayloadSpecRef>,
    pub extractor: ROption<ExtractorSpecRef>,
    #[sabi(last_prefix_field)]
    pub scheduler: ROption<SchedulerSpecRef>,
    /// The field "ABI 1.1" adds, in ktstr's compatibility tests only.
    #[cfg(ktstr_abi_next)]
    pub homepage: Str,
}

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = BinaryLocatorRef)))]
#[sabi(missing_field(option))]
pub struct BinaryLocator {
    pub name: Str,
    pub env_override: ROption<Str>,
    #[sabi(last_prefix_field)]
    pub install_hint: Str,
}

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = MetricHintRef)))]
#[sabi(missing_field(option))]
pub struct MetricHint {
    pub name: Str,
    pub unit: Str,
    #[sabi(last_prefix_field)]
    pub polarity: PolarityCode,
}

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PayloadSpecRef)))]
#[sabi(missing_field(option))]
pub struct PayloadSpec {
    pub binary: ROption<BinaryLocatorRef>,
    pub default_args: List<Str>,
    pub extractor: Str,
    pub metric_stream: StreamCode,
    pub format: Str,
    pub default_checks: List<Str>,
    pub metric_hints: List<MetricHintRef>,
    pub extra_files: List<Str>,
    pub own_process_group: bool,
    /// 0: the host's default.
    pub default_duration_s: u32,
    pub fixed_length: bool,
    /// 0: the host's default.
    pub grace_s: u32,
    pub requirements: RequirementsRef,
    #[sabi(last_prefix_field)]
    pub line_buffered: bool,
}

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = RequirementsRef)))]
#[sabi(missing_field(option))]
pub struct Requirements {
    pub scheduler: SchedNeedCode,
    pub min_cpus: u32,
    #[sabi(last_prefix_field)]
    pub min_llcs: u32,
}

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ExtractorSpecRef)))]
#[sabi(missing_field(option))]
pub struct ExtractorSpec {
    #[sabi(last_prefix_field)]
    pub formats: List<Str>,
}

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = SchedulerSpecRef)))]
#[sabi(missing_field(option))]
pub struct SchedulerSpec {
    pub binary: ROption<BinaryLocatorRef>,
    pub accepts_any_binary: bool,
    #[sabi(last_prefix_field)]
    pub sched_ext: bool,
}

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = LaunchSpecRef)))]
#[sabi(missing_field(option))]
pub struct LaunchSpec {
    pub binary: ROption<Str>,
    pub args: List<Str>,
    pub ops_prefix: ROption<Str>,
    pub sched_ext: bool,
    pub stop_signal: SignalCode,
    pub ready_timeout_ms: u32,
    #[sabi(last_prefix_field)]
    pub stop_timeout_ms: u32,
}

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = MetricRef)))]
#[sabi(missing_field(option))]
pub struct Metric {
    pub name: Str,
    pub value: f64,
    #[sabi(last_prefix_field)]
    pub unit: Str,
}

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ExtractionRef)))]
#[sabi(missing_field(option))]
pub struct Extraction {
    pub metrics: List<MetricRef>,
    #[sabi(last_prefix_field)]
    pub notes: List<Str>,
}

/// Built by the host, read by the plugin (which must treat appended fields
/// as optional just like the host does).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = RunContextRef)))]
#[sabi(missing_field(option))]
pub struct RunContext {
    /// 0: no limit.
    pub duration_ms: u64,
    pub nr_cpus: u32,
    pub cpu_list: Str,
    pub memory_mib: u32,
    #[sabi(last_prefix_field)]
    pub out_dir: Str,
}
