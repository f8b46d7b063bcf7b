//! A metric as it crosses the plugin boundary.

use abi_stable::std_types::RString;
use abi_stable::StableAbi;

/// One named number extracted from a payload's output.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Metric {
    /// Hierarchical names use `/` as the separator (see the json extractor
    /// for the escaping rule of keys that contain `/` or `~`).
    pub name: RString,
    pub value: f64,
    /// `us`, `ns`, `ops/s`, `KiB/s`, `count`… or empty when unitless.
    pub unit: RString,
}

impl Metric {
    pub fn new(name: impl Into<RString>, value: f64, unit: &str) -> Self {
        Metric { name: name.into(), value, unit: unit.into() }
    }
}
