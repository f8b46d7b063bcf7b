//! The stable ABI between ktstr and its plugins.
//!
//! A plugin is a `cdylib` that implements [`Plugin`] and calls [`export_plugin!`].
//! Each plugin is exactly one of three kinds ([`PluginKind`]): a payload adapter,
//! a metric extractor or a scheduler launcher. Everything that crosses the
//! boundary is an `abi_stable` type, so the host checks the layout of every type
//! when it loads the library and refuses a plugin built against another ABI.
//!
//! This crate knows nothing of VMs, cgroups or the runner: it only describes.

pub mod manifest;
pub mod metric;
pub mod module;
pub mod scheduler;

mod shim;

pub use abi_stable;
pub use manifest::{
    BinaryLocator, CheckSpec, ExtractorSpec, Manifest, MetricHint, PayloadSpec, PluginKind,
    Polarity, SchedulerSpec, Stream,
};
pub use metric::Metric;
pub use module::{PluginMod, PluginModRef};
pub use scheduler::{LaunchSpec, StopSignal};

/// The ABI version this crate speaks, as `major.minor.patch`.
///
/// The host refuses a plugin whose ABI major differs (minor, for 0.x), exactly
/// like semver. Bump it with any change to a type in this crate.
#[cfg(not(feature = "abi-mismatch-for-tests"))]
pub const ABI_VERSION: &str = "0.1.0";
#[cfg(feature = "abi-mismatch-for-tests")]
pub const ABI_VERSION: &str = "9.0.0";

/// What a plugin implements. Every method has a default that reports
/// "not supported", so a plugin only writes what its kind needs.
///
/// Panics inside any method are caught on the plugin's side of the boundary
/// and reach the host as an error naming the method.
pub trait Plugin {
    /// Describes the plugin. Called once by every loader.
    fn manifest() -> Manifest;

    /// Extractors: turn one captured output stream into metrics.
    fn extract(_text: &str) -> Result<Vec<Metric>, String> {
        Err("this plugin is not a metric extractor".into())
    }

    /// Scheduler launchers: how to start the scheduler the user asked for
    /// (`--scheduler NAME|PATH`), or an error if this launcher cannot.
    fn launch(_requested: &str) -> Result<LaunchSpec, String> {
        Err("this plugin is not a scheduler launcher".into())
    }

    /// Payloads without a binary: run the workload in this process (the guest
    /// init forks first) and return its exit code. Write results to stdout.
    fn run_inline(_args: &[String]) -> i32 {
        eprintln!("this payload has no inline runner");
        127
    }
}

/// Exports `$plugin` (a type implementing [`Plugin`]) as this library's root
/// module. Call it once, at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static KTSTR_PLUGIN_LIB_HEADER: $crate::abi_stable::library::LibHeader = {
            extern "C" fn erased() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(
                    $crate::module::root_module::<$plugin>,
                )
            }
            // SAFETY: `erased` returns the module type this header declares.
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::PluginModRef>(
                    erased,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
