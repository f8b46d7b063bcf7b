//! The root module every plugin library exports, and its version identity.

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RSlice, RStr, RString};
use abi_stable::StableAbi;

use super::{ExtractionRef, LaunchSpecRef, List, ManifestRef, RunContextRef};

/// The functions of a plugin library. Every function but `manifests` takes
/// the index of one of the library's plugins in the list `manifests`
/// returns. Functions added in a minor version come after `run_inline`;
/// the host sees them as `Option` (`None`: the library predates them).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(option))]
pub struct PluginMod {
    pub manifests: extern "C" fn() -> RResult<List<ManifestRef>, RString>,
    pub extract: extern "C" fn(index: u32, text: RStr<'_>) -> RResult<ExtractionRef, RString>,
    pub launch: extern "C" fn(index: u32, requested: RStr<'_>) -> RResult<LaunchSpecRef, RString>,
    #[sabi(last_prefix_field)]
    pub run_inline:
        extern "C" fn(index: u32, context: RunContextRef, args: RSlice<'_, RStr<'_>>) -> i32,
    /// The function "ABI 1.1" adds, in ktstr's compatibility tests only:
    /// a line the plugin says about itself.
    #[cfg(ktstr_abi_next)]
    pub self_test: extern "C" fn(index: u32) -> RResult<RString, RString>,
}

impl RootModule for PluginModRef {
    abi_stable::declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "ktstr_plugin";
    const NAME: &'static str = "ktstr_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(crate::ABI_VERSION);
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_name_matches_abi_stable() {
        // export_plugins! hard-codes the loader symbol so plugins need not
        // depend on abi_stable themselves; it must stay abi_stable's name.
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
