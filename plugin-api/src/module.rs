//! The root module every plugin library exports, and its version identity.

use abi_stable::library::RootModule;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use abi_stable::StableAbi;

use crate::{shim, LaunchSpec, Manifest, Metric, Plugin};

/// The functions of a plugin. New functions are only ever appended after
/// `run_inline` (as optional prefix fields), so older plugins keep loading.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    pub manifest: extern "C" fn() -> RResult<Manifest, RString>,
    pub extract: extern "C" fn(text: RStr<'_>) -> RResult<RVec<Metric>, RString>,
    pub launch: extern "C" fn(requested: RStr<'_>) -> RResult<LaunchSpec, RString>,
    #[sabi(last_prefix_field)]
    pub run_inline: extern "C" fn(args: RVec<RString>) -> i32,
}

impl RootModule for PluginModRef {
    abi_stable::declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "ktstr_plugin";
    const NAME: &'static str = "ktstr_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(crate::ABI_VERSION);
}

/// Builds the root module of plugin `P`. Used by [`crate::export_plugin!`].
pub fn root_module<P: Plugin>() -> PluginModRef {
    shim::install_panic_hook();
    PluginMod {
        manifest: shim::manifest::<P>,
        extract: shim::extract::<P>,
        launch: shim::launch::<P>,
        run_inline: shim::run_inline::<P>,
    }
    .leak_into_prefix()
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_name_matches_abi_stable() {
        // export_plugin! hard-codes the loader symbol so plugins need not
        // depend on abi_stable themselves; it must stay abi_stable's name.
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
