//! Plugins as the host and the guest see them. The manifest types are the
//! API crate's own (one copy, converted once at the boundary); every call
//! into a plugin library runs in a child process ([`call`]), so a plugin
//! that crashes, aborts or hangs cannot take ktstr or the guest's PID 1 down.

pub mod call;

use std::path::PathBuf;

pub use ktstr_plugin_api::{
    BinaryLocator, Extraction, ExtractorSpec, LaunchSpec, Manifest, MetricHint, PayloadSpec,
    PluginKind as Kind, Polarity, Requirements, RunContext, SchedulerNeed, SchedulerSpec,
    StopSignal, Stream,
};
use serde::{Deserialize, Serialize};

/// One plugin of a library: where it is, which of the library's plugins it
/// is, and its manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRef {
    pub path: PathBuf,
    /// Its index in the library's export list.
    pub index: u32,
    pub info: Manifest,
}

impl PluginRef {
    /// Extractors: metrics (and notes) from one stream's text.
    pub fn extract(&self, text: &str) -> Result<Extraction, String> {
        call::extract(&self.path, self.index, text)
    }

    /// Scheduler launchers: what to start for `--scheduler requested`.
    pub fn launch(&self, requested: &str) -> Result<LaunchSpec, String> {
        call::launch(&self.path, self.index, requested)
    }
}

/// The payload section of a payload plugin's manifest.
pub fn payload_spec(p: &PluginRef) -> &PayloadSpec {
    p.info.payload.as_ref().expect("payload plugins carry a payload section (validated at load)")
}

/// Where one plugin is, as a run plan names it (a guest path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginAt {
    pub path: String,
    pub index: u32,
    pub name: String,
}

impl PluginAt {
    pub fn extract(&self, text: &str) -> Result<Extraction, String> {
        call::extract(std::path::Path::new(&self.path), self.index, text)
    }
}

impl PluginRef {
    /// This plugin, packed at `path`.
    pub fn at(&self, path: String) -> PluginAt {
        PluginAt { path, index: self.index, name: self.info.name.clone() }
    }

    /// This plugin where it is on the host.
    pub fn here(&self) -> PluginAt {
        self.at(self.path.display().to_string())
    }
}
