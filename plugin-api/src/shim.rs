//! The plugin's side of the boundary: the root module's `extern "C"`
//! functions, which convert plain types to the wire form ([`crate::ffi`])
//! and stop every panic before it can unwind into the host.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString};

use crate::ffi::{self, List, Str};
use crate::{Extraction, LaunchSpec, Manifest, Plugin, RunContext};

/// One plugin of a library, as function pointers (built by
/// [`crate::export_plugins!`]).
#[doc(hidden)]
pub struct Entry {
    manifest: fn() -> Manifest,
    extract: fn(&str) -> Result<Extraction, String>,
    launch: fn(&str) -> Result<LaunchSpec, String>,
    run_inline: fn(&RunContext, &[String]) -> i32,
}

impl Entry {
    pub const fn of<P: Plugin>() -> Entry {
        Entry {
            manifest: P::manifest,
            extract: P::extract,
            launch: P::launch,
            run_inline: P::run_inline,
        }
    }
}

/// The plugins of one library, in export order.
#[doc(hidden)]
pub trait Registry {
    const ENTRIES: &'static [Entry];
}

/// Builds the root module of a library. Used by [`crate::export_plugins!`].
#[doc(hidden)]
pub fn root_module<R: Registry>() -> ffi::PluginModRef {
    install_panic_hook();
    ffi::PluginMod {
        manifests: manifests::<R>,
        extract: extract::<R>,
        launch: launch::<R>,
        run_inline: run_inline::<R>,
        #[cfg(ktstr_abi_next)]
        self_test: self_test::<R>,
    }
    .leak_into_prefix()
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records panic messages instead of printing them: the host reports them as
/// the plugin's error. The hook belongs to this library's own copy of std.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = match info.payload().downcast_ref::<&str>() {
            Some(s) => s.to_string(),
            None => info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "non-string panic".into()),
        };
        let at =
            info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
    }));
}

fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> RResult<T, RString> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => RResult::ROk(v),
        Ok(Err(e)) => RResult::RErr(e.into()),
        Err(_) => {
            let msg = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "unknown panic".into());
            RResult::RErr(format!("plugin panicked in {what}(): {msg}").into())
        }
    }
}

fn entry<R: Registry>(index: u32) -> Result<&'static Entry, String> {
    R::ENTRIES
        .get(index as usize)
        .ok_or_else(|| format!("no plugin #{index} in this library (it has {})", R::ENTRIES.len()))
}

extern "C" fn manifests<R: Registry>() -> RResult<List<ffi::ManifestRef>, RString> {
    guarded("manifest", || {
        let all: Vec<ffi::ManifestRef> = R::ENTRIES
            .iter()
            .map(|e| {
                let mut m = (e.manifest)();
                m.abi_version = crate::ABI_VERSION.into();
                to_wire::manifest(&m)
            })
            .collect();
        Ok(to_wire::leak_slice(all))
    })
}

extern "C" fn extract<R: Registry>(
    index: u32,
    text: RStr<'_>,
) -> RResult<ffi::ExtractionRef, RString> {
    guarded("extract", || {
        let e = entry::<R>(index)?;
        (e.extract)(text.as_str()).map(|x| to_wire::extraction(&x))
    })
}

extern "C" fn launch<R: Registry>(
    index: u32,
    requested: RStr<'_>,
) -> RResult<ffi::LaunchSpecRef, RString> {
    guarded("launch", || {
        let e = entry::<R>(index)?;
        (e.launch)(requested.as_str()).map(|l| to_wire::launch(&l))
    })
}

extern "C" fn run_inline<R: Registry>(
    index: u32,
    context: ffi::RunContextRef,
    args: RSlice<'_, RStr<'_>>,
) -> i32 {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let context = RunContext {
        duration_ms: Some(context.duration_ms()).filter(|&d| d > 0),
        nr_cpus: context.nr_cpus(),
        cpu_list: context.cpu_list().to_string(),
        memory_mib: context.memory_mib(),
        out_dir: context.out_dir().to_string(),
    };
    let result = guarded("run_inline", || Ok((entry::<R>(index)?.run_inline)(&context, &args)));
    // The caller may _exit right after: nothing may stay buffered.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    match result {
        RResult::ROk(code) => code,
        RResult::RErr(e) => {
            eprintln!("{e}");
            101
        }
    }
}

#[cfg(ktstr_abi_next)]
extern "C" fn self_test<R: Registry>(index: u32) -> RResult<RString, RString> {
    guarded("self_test", || {
        let e = entry::<R>(index)?;
        Ok(format!("{} says hello from ABI {}", (e.manifest)().name, crate::ABI_VERSION).into())
    })
}

/// Plain types to the wire form, leaking what the wire form points to.
pub(crate) mod to_wire {
    use super::*;
    use crate::{BinaryLocator, MetricHint, Polarity, StopSignal, Stream};

    pub fn leak_slice<T>(v: Vec<T>) -> List<T> {
        RSlice::from_slice(Box::leak(v.into_boxed_slice()))
    }

    pub fn s(v: &str) -> Str {
        RStr::from_str(Box::leak(v.to_owned().into_boxed_str()))
    }

    fn strs(v: &[String]) -> List<Str> {
        leak_slice(v.iter().map(|x| s(x)).collect())
    }

    fn opt_s(v: &Option<String>) -> ROption<Str> {
        v.as_deref().map(s).into()
    }

    pub fn stream(v: Stream) -> ffi::StreamCode {
        match v {
            Stream::Stdout => ffi::StreamCode::STDOUT,
            Stream::Stderr => ffi::StreamCode::STDERR,
        }
    }

    fn binary(b: &Option<BinaryLocator>) -> ROption<ffi::BinaryLocatorRef> {
        b.as_ref()
            .map(|b| {
                ffi::BinaryLocator {
                    name: s(&b.name),
                    env_override: opt_s(&b.env_override),
                    install_hint: s(&b.install_hint),
                }
                .leak_into_prefix()
            })
            .into()
    }

    fn hint(h: &MetricHint) -> ffi::MetricHintRef {
        let polarity = match h.polarity {
            Polarity::HigherIsBetter => ffi::PolarityCode::HIGHER_IS_BETTER,
            Polarity::LowerIsBetter => ffi::PolarityCode::LOWER_IS_BETTER,
            Polarity::Neutral => ffi::PolarityCode::NEUTRAL,
        };
        ffi::MetricHint { name: s(&h.name), unit: s(&h.unit), polarity }.leak_into_prefix()
    }

    fn requirements(r: &crate::Requirements) -> ffi::RequirementsRef {
        let scheduler = match r.scheduler {
            crate::SchedulerNeed::Any => ffi::SchedNeedCode::ANY,
            crate::SchedulerNeed::EevdfOnly => ffi::SchedNeedCode::EEVDF_ONLY,
            crate::SchedulerNeed::SchedExtOnly => ffi::SchedNeedCode::SCHED_EXT_ONLY,
        };
        ffi::Requirements { scheduler, min_cpus: r.min_cpus, min_llcs: r.min_llcs }
            .leak_into_prefix()
    }

    pub fn manifest(m: &Manifest) -> ffi::ManifestRef {
        let kind = match m.kind {
            crate::PluginKind::Payload => ffi::KindCode::PAYLOAD,
            crate::PluginKind::Extractor => ffi::KindCode::EXTRACTOR,
            crate::PluginKind::Scheduler => ffi::KindCode::SCHEDULER,
        };
        let payload = m.payload.as_ref().map(|p| {
            ffi::PayloadSpec {
                binary: binary(&p.binary),
                default_args: strs(&p.default_args),
                extractor: s(&p.extractor),
                metric_stream: stream(p.metric_stream),
                format: s(&p.format),
                default_checks: strs(&p.default_checks),
                metric_hints: leak_slice(p.metric_hints.iter().map(hint).collect()),
                extra_files: strs(&p.extra_files),
                own_process_group: p.own_process_group,
                default_duration_s: p.default_duration_s.unwrap_or(0),
                fixed_length: p.fixed_length,
                grace_s: p.grace_s.unwrap_or(0),
                requirements: requirements(&p.requirements),
                line_buffered: p.line_buffered,
            }
            .leak_into_prefix()
        });
        let extractor = m
            .extractor
            .as_ref()
            .map(|e| ffi::ExtractorSpec { formats: strs(&e.formats) }.leak_into_prefix());
        let scheduler = m.scheduler.as_ref().map(|sc| {
            ffi::SchedulerSpec {
                binary: binary(&sc.binary),
                accepts_any_binary: sc.accepts_any_binary,
                sched_ext: sc.sched_ext,
            }
            .leak_into_prefix()
        });
        ffi::Manifest {
            name: s(&m.name),
            version: s(&m.version),
            kind,
            description: s(&m.description),
            abi_version: s(&m.abi_version),
            payload: payload.into(),
            extractor: extractor.into(),
            scheduler: scheduler.into(),
            #[cfg(ktstr_abi_next)]
            homepage: s("https://example.invalid/abi-next"),
        }
        .leak_into_prefix()
    }

    pub fn extraction(x: &Extraction) -> ffi::ExtractionRef {
        let metrics = x
            .metrics
            .iter()
            .map(|m| {
                ffi::Metric { name: s(&m.name), value: m.value, unit: s(&m.unit) }
                    .leak_into_prefix()
            })
            .collect();
        ffi::Extraction { metrics: leak_slice(metrics), notes: strs(&x.notes) }.leak_into_prefix()
    }

    pub fn launch(l: &LaunchSpec) -> ffi::LaunchSpecRef {
        let stop_signal = match l.stop_signal {
            StopSignal::Interrupt => ffi::SignalCode::INTERRUPT,
            StopSignal::Terminate => ffi::SignalCode::TERMINATE,
        };
        ffi::LaunchSpec {
            binary: opt_s(&l.binary),
            args: strs(&l.args),
            ops_prefix: opt_s(&l.ops_prefix),
            sched_ext: l.sched_ext,
            stop_signal,
            ready_timeout_ms: l.ready_timeout_ms,
            stop_timeout_ms: l.stop_timeout_ms,
        }
        .leak_into_prefix()
    }

    pub fn run_context(c: &RunContext) -> ffi::RunContextRef {
        ffi::RunContext {
            duration_ms: c.duration_ms.unwrap_or(0),
            nr_cpus: c.nr_cpus,
            cpu_list: s(&c.cpu_list),
            memory_mib: c.memory_mib,
            out_dir: s(&c.out_dir),
        }
        .leak_into_prefix()
    }
}
