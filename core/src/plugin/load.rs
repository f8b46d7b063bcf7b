//! Loading one plugin library, with an error that names the file and the
//! reason for every way it can go wrong.
//!
//! Never `RootModule::load_from*`: it caches one module per interface type
//! per process, so a second plugin would silently return the first.
//! Libraries are never unloaded (their code may still be referenced).

use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError, RootModuleError};
use abi_stable::std_types::{RString, RVec};
use ktstr_plugin_api::{LaunchSpec, Metric, PluginModRef, ABI_VERSION};

use super::PluginInfo;

/// A plugin that loaded and described itself.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub info: PluginInfo,
    module: PluginModRef,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin").field("path", &self.path).field("info", &self.info).finish()
    }
}

/// Why a file could not be used as a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for LoadError {}

/// Loads the plugin at `path` and reads its manifest.
pub fn load(path: &Path) -> Result<LoadedPlugin, LoadError> {
    let fail = |reason: String| LoadError { path: path.to_path_buf(), reason };
    if !path.is_file() {
        return Err(fail("no such file".into()));
    }
    let header = lib_header_from_path(path).map_err(|e| fail(describe(&e)))?;
    let module = header.init_root_module::<PluginModRef>().map_err(|e| fail(describe(&e)))?;
    let manifest = match (module.manifest())() {
        abi_stable::std_types::RResult::ROk(m) => m,
        abi_stable::std_types::RResult::RErr(e) => {
            return Err(fail(format!("manifest() failed: {e}")))
        }
    };
    let info = PluginInfo::from_manifest(&manifest).map_err(fail)?;
    Ok(LoadedPlugin { path: path.to_path_buf(), info, module })
}

/// Turns abi_stable's errors into one line a plugin author can act on.
fn describe(e: &LibraryError) -> String {
    match e {
        LibraryError::OpenError { err, .. } => format!("cannot open the library: {err}"),
        LibraryError::GetSymbolError { .. } => {
            "not a ktstr plugin (no abi_stable root module; did it call ktstr_plugin_api::export_plugin!?)".into()
        }
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => format!(
            "incompatible plugin ABI: built against ktstr-plugin-api ABI {actual_version}, this ktstr speaks ABI \
             {expected_version} (host {ABI_VERSION}); rebuild the plugin against a matching ktstr-plugin-api"
        ),
        LibraryError::ParseVersionError(err) => format!("the plugin's ABI version string is unreadable: {err}"),
        LibraryError::AbiInstability(err) => {
            let first = err.to_string().lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
            format!("incompatible plugin ABI (type layouts differ; rebuild against this ktstr-plugin-api): {first}")
        }
        LibraryError::RootModule { err, .. } => match err {
            RootModuleError::Unwound => "plugin panicked while building its root module".into(),
            other => format!("the root module failed to load: {other}"),
        },
        other => other.to_string(),
    }
}

impl LoadedPlugin {
    /// Extractors: metrics from one stream's text.
    pub fn extract(&self, text: &str) -> Result<Vec<Metric>, String> {
        (self.module.extract())(text.into())
            .into_result()
            .map(RVec::into_vec)
            .map_err(RString::into_string)
    }

    /// Scheduler launchers: what to start for `--scheduler requested`.
    pub fn launch(&self, requested: &str) -> Result<LaunchSpec, String> {
        (self.module.launch())(requested.into()).into_result().map_err(RString::into_string)
    }

    /// Inline payloads: runs the workload in this process; returns its exit code.
    pub fn run_inline(&self, args: &[String]) -> i32 {
        (self.module.run_inline())(args.iter().map(|a| RString::from(a.as_str())).collect())
    }
}
