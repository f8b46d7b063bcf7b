//! The stable plugin ABI of ktstr, the test harness for Linux process
//! schedulers.
//!
//! A plugin library is a `cdylib` that implements [`Plugin`] for one or more
//! types and exports them with [`export_plugins!`]. Each plugin is one of
//! three kinds ([`PluginKind`]): a payload adapter (a workload), a metric
//! extractor (numbers from a payload's output) or a scheduler launcher. A
//! third-party suite is one crate: its payload, its extractor and its
//! launcher in one library.
//!
//! ```
//! use ktstr_plugin_api::{export_plugins, Extraction, ExtractorSpec, Manifest, Metric, Plugin};
//!
//! pub struct Lines;
//!
//! impl Plugin for Lines {
//!     fn manifest() -> Manifest {
//!         Manifest::extractor("lines", "1.0.0", "counts lines", ExtractorSpec::new(&["text"]))
//!     }
//!     fn extract(text: &str) -> Result<Extraction, String> {
//!         Ok(vec![Metric::new("lines", text.lines().count() as f64, "count")].into())
//!     }
//! }
//!
//! export_plugins!(Lines);
//! ```
//!
//! Plugin authors only see plain Rust types; [`ffi`] is the wire form and
//! [`host`] the loader ktstr (or any host) uses.
//!
//! # Compatibility policy
//!
//! The ABI version is [`ABI_VERSION`], and this crate's version is the same
//! number. A host loads a plugin when their ABI **major** versions are equal,
//! whatever their minor versions:
//!
//! - A **minor** version (1.x) may only *add*: fields appended at the end of
//!   a wire struct (after its `last_prefix_field`), functions appended to the
//!   root module, new codes of an enum, new plain types and methods. A host
//!   reads every appended field and function as optional, so it can tell
//!   "this plugin predates feature X" and carry on; a plugin built against a
//!   newer minor than its host still loads, and the host ignores what it
//!   does not know (an unknown plugin kind or stream is reported as such).
//!   The plain enums are `#[non_exhaustive]` for the same reason.
//! - A **major** version is needed to remove, rename, reorder or retype any
//!   field or function, to change an enum's code, or to move the
//!   `last_prefix_field` mark. A host refuses a plugin of another major with
//!   an error naming both versions.
//! - **abi_stable**: this ABI is built on abi_stable 0.11. Every 0.11.x
//!   release reads the same layouts, so a plugin whose lock file resolves
//!   another 0.11 patch release than ktstr's loads fine; moving to
//!   abi_stable 0.12 would be a new ABI major.
//!
//! Calls into a plugin cannot unwind into the host: a panic becomes an error
//! naming the function. ktstr also runs every plugin call in a child process,
//! so a plugin that crashes, aborts or hangs is reported as broken.

pub mod ffi;
pub mod host;
mod manifest;
mod metric;
mod payload;
mod scheduler;
mod shim;
#[cfg(test)]
mod wire_tests;

pub use manifest::{
    BinaryLocator, ExtractorSpec, Manifest, MetricHint, PluginKind, Polarity, Stream,
};
pub use metric::{Extraction, Metric};
pub use payload::{PayloadSpec, Requirements, RunContext, SchedulerNeed};
pub use scheduler::{LaunchSpec, SchedulerSpec, StopSignal};

/// What the export macros need; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::shim::{root_module, Entry, Registry};
    pub use abi_stable;
}

/// The ABI version this crate speaks, as `major.minor.patch`.
#[cfg(not(any(ktstr_abi_next, ktstr_abi_mismatch)))]
pub const ABI_VERSION: &str = "1.0.0";
/// "ABI 1.1", for ktstr's compatibility tests (`--cfg ktstr_abi_next`).
#[cfg(all(ktstr_abi_next, not(ktstr_abi_mismatch)))]
pub const ABI_VERSION: &str = "1.1.0";
/// An ABI of another major, for ktstr's tests (`--cfg ktstr_abi_mismatch`).
#[cfg(ktstr_abi_mismatch)]
pub const ABI_VERSION: &str = "9.0.0";

/// What a plugin implements. Every method but `manifest` has a default that
/// reports "not supported", so a plugin only writes what its kind needs.
///
/// Panics inside any method are caught on the plugin's side of the boundary
/// and reach the host as an error naming the method.
pub trait Plugin {
    /// Describes the plugin. Called by every loader.
    fn manifest() -> Manifest;

    /// Extractors: turn one captured output stream into metrics (and notes).
    fn extract(_text: &str) -> Result<Extraction, String> {
        Err("this plugin is not a metric extractor".into())
    }

    /// Scheduler launchers: how to start the scheduler the user asked for
    /// (`--scheduler NAME|PATH`), or an error if this launcher cannot.
    fn launch(_requested: &str) -> Result<LaunchSpec, String> {
        Err("this plugin is not a scheduler launcher".into())
    }

    /// Payloads without a binary: run the workload in this process (the guest
    /// init forks first) and return its exit code. Write results to stdout.
    fn run_inline(_context: &RunContext, _args: &[String]) -> i32 {
        eprintln!("this payload has no inline runner");
        127
    }
}

/// Exports the plugins of this library (types implementing [`Plugin`]), in
/// the order given. Call it once, at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_plugins {
    ($($plugin:ty),+ $(,)?) => {
        #[doc(hidden)]
        pub struct __KtstrPluginRegistry;

        impl $crate::__private::Registry for __KtstrPluginRegistry {
            const ENTRIES: &'static [$crate::__private::Entry] =
                &[$($crate::__private::Entry::of::<$plugin>()),+];
        }

        #[doc(hidden)]
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static KTSTR_PLUGIN_LIB_HEADER: $crate::__private::abi_stable::library::LibHeader = {
            extern "C" fn erased() -> $crate::__private::abi_stable::library::RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(
                    $crate::__private::root_module::<__KtstrPluginRegistry>,
                )
            }
            // SAFETY: `erased` returns the module type this header declares.
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<
                    $crate::ffi::PluginModRef,
                >(erased, $crate::__private::abi_stable::library::CheckTypeLayout::Yes)
            }
        };
    };
}

/// [`export_plugins!`] for a library of one plugin.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        $crate::export_plugins!($plugin);
    };
}
