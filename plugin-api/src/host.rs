//! The host's side of the boundary: open a plugin library, check it, and
//! call it with plain types. ktstr uses this in a contained child process
//! (a crashing plugin takes only that process down); so can any other host.
//!
//! Never `RootModule::load_from*`: it caches one module per interface type
//! per process, so a second library would silently return the first.
//! Libraries are never unloaded (their code may still be referenced).

use std::path::{Path, PathBuf};

use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use abi_stable::library::{lib_header_from_path, LibHeader, LibraryError, RootModuleError};
use abi_stable::std_types::{RSlice, RStr};

use crate::ffi::{self, List, Str};
use crate::{
    BinaryLocator, Extraction, ExtractorSpec, LaunchSpec, Manifest, Metric, MetricHint,
    PayloadSpec, PluginKind, Polarity, Requirements, RunContext, SchedulerNeed, SchedulerSpec,
    StopSignal, Stream, ABI_VERSION,
};

/// An opened plugin library and the manifests of its plugins.
pub struct Library {
    pub path: PathBuf,
    pub manifests: Vec<Manifest>,
    module: ffi::PluginModRef,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Library {
    /// Loads `path`, checks its ABI version and type layouts, and reads and
    /// validates every manifest. The error is one line a plugin author can
    /// act on.
    pub fn open(path: &Path) -> Result<Library, String> {
        if !path.is_file() {
            return Err("no such file".into());
        }
        let header = lib_header_from_path(path).map_err(|e| describe(&e))?;
        let module = match header.init_root_module::<ffi::PluginModRef>() {
            Err(LibraryError::AbiInstability(_)) if is_older_minor(header) => {
                // SAFETY: the library's layout is a prefix of ours (checked
                // by is_older_minor), and every field past that prefix is
                // read through an accessor returning `None` when it is absent.
                unsafe { header.init_root_module_with_unchecked_layout::<ffi::PluginModRef>() }
            }
            other => other,
        }
        .map_err(|e| describe(&e))?;
        let wire =
            (module.manifests())().into_result().map_err(|e| format!("manifest() failed: {e}"))?;
        let mut manifests = Vec::new();
        for m in wire.iter() {
            let m = from_wire::manifest(*m)?;
            m.validate()?;
            manifests.push(m);
        }
        if manifests.is_empty() {
            return Err("the library exports no plugin".into());
        }
        Ok(Library { path: path.to_path_buf(), manifests, module })
    }

    /// The index of the plugin of `kind` named `name`.
    pub fn find(&self, kind: PluginKind, name: &str) -> Option<u32> {
        self.manifests.iter().position(|m| m.kind == kind && m.name == name).map(|i| i as u32)
    }

    pub fn extract(&self, index: u32, text: &str) -> Result<Extraction, String> {
        let x = (self.module.extract())(index, text.into()).into_result().map_err(String::from)?;
        Ok(from_wire::extraction(x))
    }

    pub fn launch(&self, index: u32, requested: &str) -> Result<LaunchSpec, String> {
        let l =
            (self.module.launch())(index, requested.into()).into_result().map_err(String::from)?;
        from_wire::launch(l)
    }

    /// Runs an inline payload in this process; returns its exit code.
    pub fn run_inline(&self, index: u32, context: &RunContext, args: &[String]) -> i32 {
        let args: Vec<RStr<'_>> = args.iter().map(|a| RStr::from_str(a)).collect();
        let context = crate::shim::to_wire::run_context(context);
        (self.module.run_inline())(index, context, RSlice::from_slice(&args))
    }

    /// ABI 1.1's function: `None` when the library predates it.
    #[cfg(ktstr_abi_next)]
    pub fn self_test(&self, index: u32) -> Option<Result<String, String>> {
        let f = self.module.self_test()?;
        Some(f(index).into_result().map(String::from).map_err(String::from))
    }

    /// ABI 1.1's manifest field of plugin `index`: `None` when it predates it.
    #[cfg(ktstr_abi_next)]
    pub fn homepage(&self, index: u32) -> Option<String> {
        let wire = (self.module.manifests())().into_result().ok()?;
        wire.get(index as usize)?.homepage().map(|s| s.to_string())
    }
}

/// abi_stable only accepts a library whose prefix types have at least the
/// host's fields, i.e. one built against the same or a newer minor ABI.
/// A library of an older minor is compatible when the host's layout extends
/// its own: the same check with the roles swapped.
fn is_older_minor(header: &LibHeader) -> bool {
    let ours = <ffi::PluginModRef as abi_stable::StableAbi>::LAYOUT;
    header.layout().is_some_and(|theirs| check_layout_compatibility(theirs, ours).is_ok())
}

/// Turns abi_stable's errors into one line a plugin author can act on.
fn describe(e: &LibraryError) -> String {
    match e {
        LibraryError::OpenError { err, .. } => format!("cannot open the library: {err}"),
        LibraryError::GetSymbolError { .. } => "not a ktstr plugin (no abi_stable root module; \
             did it call ktstr_plugin_api::export_plugins!?)"
            .into(),
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => {
            format!(
                "incompatible plugin ABI: built against ktstr-plugin-api ABI {actual_version}, \
                 this host speaks ABI {expected_version} (host {ABI_VERSION}); only the same \
                 major version loads: rebuild the plugin against ktstr-plugin-api {}.x",
                expected_version.major
            )
        }
        LibraryError::ParseVersionError(err) => {
            format!("the plugin's ABI version string is unreadable: {err}")
        }
        LibraryError::AbiInstability(err) => {
            let text = err.to_string();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            format!(
                "incompatible plugin ABI (type layouts differ; rebuild against \
                 ktstr-plugin-api {ABI_VERSION}): {first}"
            )
        }
        LibraryError::RootModule { err, .. } => match err {
            RootModuleError::Unwound => "plugin panicked while building its root module".into(),
            other => format!("the root module failed to load: {other}"),
        },
        other => other.to_string(),
    }
}

/// The wire form back to plain types. Unknown enum codes (from a plugin of
/// a newer minor version) are errors that say so.
pub(crate) mod from_wire {
    use super::*;

    fn s(v: Str) -> String {
        v.as_str().to_string()
    }

    fn strs(v: List<Str>) -> Vec<String> {
        v.iter().map(|x| s(*x)).collect()
    }

    fn unknown(what: &str, code: u8) -> String {
        format!(
            "unknown {what} code {code}: the plugin is newer than this host \
             (ABI {ABI_VERSION}); update ktstr"
        )
    }

    fn binary(b: Option<ffi::BinaryLocatorRef>) -> Option<BinaryLocator> {
        b.map(|b| BinaryLocator {
            name: s(b.name()),
            env_override: b.env_override().into_option().map(s),
            install_hint: s(b.install_hint()),
        })
    }

    fn stream(c: ffi::StreamCode) -> Result<Stream, String> {
        match c {
            ffi::StreamCode::STDOUT => Ok(Stream::Stdout),
            ffi::StreamCode::STDERR => Ok(Stream::Stderr),
            other => Err(unknown("stream", other.0)),
        }
    }

    fn hint(h: ffi::MetricHintRef) -> MetricHint {
        // A newer "better" direction is shown as neutral rather than refused.
        let polarity = match h.polarity() {
            ffi::PolarityCode::HIGHER_IS_BETTER => Polarity::HigherIsBetter,
            ffi::PolarityCode::LOWER_IS_BETTER => Polarity::LowerIsBetter,
            _ => Polarity::Neutral,
        };
        MetricHint { name: s(h.name()), unit: s(h.unit()), polarity }
    }

    /// An unknown requirement must not be ignored: the run could not meet it.
    fn requirements(r: ffi::RequirementsRef) -> Result<Requirements, String> {
        let scheduler = match r.scheduler() {
            ffi::SchedNeedCode::ANY => SchedulerNeed::Any,
            ffi::SchedNeedCode::EEVDF_ONLY => SchedulerNeed::EevdfOnly,
            ffi::SchedNeedCode::SCHED_EXT_ONLY => SchedulerNeed::SchedExtOnly,
            other => return Err(unknown("scheduler requirement", other.0)),
        };
        Ok(Requirements { scheduler, min_cpus: r.min_cpus(), min_llcs: r.min_llcs() })
    }

    pub fn manifest(m: ffi::ManifestRef) -> Result<Manifest, String> {
        let kind = match m.kind() {
            ffi::KindCode::PAYLOAD => PluginKind::Payload,
            ffi::KindCode::EXTRACTOR => PluginKind::Extractor,
            ffi::KindCode::SCHEDULER => PluginKind::Scheduler,
            other => return Err(unknown("plugin kind", other.0)),
        };
        let payload = match m.payload().into_option() {
            None => None,
            Some(p) => Some(PayloadSpec {
                binary: binary(p.binary().into_option()),
                default_args: strs(p.default_args()),
                extractor: s(p.extractor()),
                metric_stream: stream(p.metric_stream())?,
                format: s(p.format()),
                default_checks: strs(p.default_checks()),
                metric_hints: p.metric_hints().iter().map(|h| hint(*h)).collect(),
                extra_files: strs(p.extra_files()),
                own_process_group: p.own_process_group(),
                default_duration_s: Some(p.default_duration_s()).filter(|&d| d > 0),
                fixed_length: p.fixed_length(),
                grace_s: Some(p.grace_s()).filter(|&g| g > 0),
                requirements: requirements(p.requirements())?,
                line_buffered: p.line_buffered(),
            }),
        };
        let extractor =
            m.extractor().into_option().map(|e| ExtractorSpec { formats: strs(e.formats()) });
        let scheduler = m.scheduler().into_option().map(|sc| SchedulerSpec {
            binary: binary(sc.binary().into_option()),
            accepts_any_binary: sc.accepts_any_binary(),
            sched_ext: sc.sched_ext(),
        });
        Ok(Manifest {
            name: s(m.name()),
            version: s(m.version()),
            kind,
            description: s(m.description()),
            abi_version: s(m.abi_version()),
            payload,
            extractor,
            scheduler,
        })
    }

    pub fn extraction(x: ffi::ExtractionRef) -> Extraction {
        let metrics = x
            .metrics()
            .iter()
            .map(|m| Metric { name: s(m.name()), value: m.value(), unit: s(m.unit()) })
            .collect();
        Extraction { metrics, notes: strs(x.notes()) }
    }

    pub fn launch(l: ffi::LaunchSpecRef) -> Result<LaunchSpec, String> {
        let stop_signal = match l.stop_signal() {
            ffi::SignalCode::INTERRUPT => StopSignal::Interrupt,
            ffi::SignalCode::TERMINATE => StopSignal::Terminate,
            other => return Err(unknown("stop signal", other.0)),
        };
        Ok(LaunchSpec {
            binary: l.binary().into_option().map(s),
            args: strs(l.args()),
            ops_prefix: l.ops_prefix().into_option().map(s),
            sched_ext: l.sched_ext(),
            stop_signal,
            ready_timeout_ms: l.ready_timeout_ms(),
            stop_timeout_ms: l.stop_timeout_ms(),
        })
    }
}
