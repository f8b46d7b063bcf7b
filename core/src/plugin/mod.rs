//! Plugins as the host and the guest see them: an owned, serialisable copy of
//! the manifest ([`PluginInfo`]) next to the loaded module ([`LoadedPlugin`]).

mod info;
mod load;

pub use info::{
    BinaryInfo, ExtractorInfo, Kind, MetricHintInfo, PayloadInfo, PluginInfo, SchedulerInfo,
};
pub use load::{load, LoadError, LoadedPlugin};
