//! The `extern "C"` side of the boundary: converts between ABI-stable and std
//! types, and stops every panic before it can unwind into the host.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::std_types::{RResult, RStr, RString, RVec};

use crate::{LaunchSpec, Manifest, Metric, Plugin};

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records panic messages instead of printing them: the host reports them as
/// the plugin's error. The hook belongs to this library's own copy of std.
pub(crate) fn install_panic_hook() {
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

pub(crate) extern "C" fn manifest<P: Plugin>() -> RResult<Manifest, RString> {
    guarded("manifest", || {
        let mut m = P::manifest();
        m.abi_version = crate::ABI_VERSION.into();
        Ok(m)
    })
}

pub(crate) extern "C" fn extract<P: Plugin>(text: RStr<'_>) -> RResult<RVec<Metric>, RString> {
    guarded("extract", || P::extract(text.as_str()).map(RVec::from))
}

pub(crate) extern "C" fn launch<P: Plugin>(requested: RStr<'_>) -> RResult<LaunchSpec, RString> {
    guarded("launch", || P::launch(requested.as_str()))
}

pub(crate) extern "C" fn run_inline<P: Plugin>(args: RVec<RString>) -> i32 {
    let args: Vec<String> = args.into_iter().map(String::from).collect();
    let result = guarded("run_inline", || Ok(P::run_inline(&args)));
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
