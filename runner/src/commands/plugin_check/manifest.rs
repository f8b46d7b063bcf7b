//! Checks every plugin's manifest needs, and those of extractors and
//! scheduler launchers (payloads have their own module).

use std::collections::HashSet;

use ktstr_core::plugin::{call, Manifest, SchedulerSpec};

use super::report::{subject, Report};
use super::Lib;

/// Name, version, description and ABI of each plugin; no kind+name twice;
/// and whether the search path would pick another plugin of the same name.
pub fn check_common(lib: &Lib<'_>, report: &mut Report) {
    let mut seen = HashSet::new();
    for m in lib.manifests {
        let who = subject(m);
        if !seen.insert((m.kind, m.name.as_str())) {
            report.problem(
                &who,
                "exported twice: discovery keeps the first and reports the second as shadowed",
                "give each plugin of a kind its own name, or export the type once",
            );
        }
        if m.version.trim().is_empty() {
            report.problem(&who, "has no version", "set it (env!(\"CARGO_PKG_VERSION\") is usual)");
        }
        if m.description.trim().is_empty() {
            report.problem(
                &who,
                "has no description",
                "describe it in one line: `ktstr list-plugins` shows it",
            );
        }
        if m.abi_version != ktstr_plugin_api::ABI_VERSION {
            report.note(
                &who,
                format!(
                    "built against ABI {}, this ktstr speaks {}: same major, so it loads; \
                     what either side has and the other lacks is ignored",
                    m.abi_version,
                    ktstr_plugin_api::ABI_VERSION
                ),
            );
        }
        if let Some(first) = lib.catalog.find(m.kind, &m.name).filter(|p| !lib.is(&p.path)) {
            report.note(
                &who,
                format!(
                    "the search path already has a {} of this name at {}; the one found first \
                     wins (`ktstr list-plugins` shows which)",
                    m.kind,
                    first.path.display()
                ),
            );
        }
    }
}

pub fn check_extractor(m: &Manifest, report: &mut Report) {
    let Some(spec) = &m.extractor else { return };
    if spec.formats.iter().all(|f| f.trim().is_empty()) {
        report.problem(
            &subject(m),
            "lists no format it reads",
            "name them in ExtractorSpec::new(&[\"my-text\"]); `ktstr list-plugins` shows them",
        );
    }
}

/// A launcher's `launch(NAME)` is what `ktstr run --scheduler NAME` calls.
/// A missing binary is only a note: `ktstr kernel build` may provide it.
pub fn check_scheduler(lib: &Lib<'_>, index: u32, report: &mut Report) {
    let m = &lib.manifests[index as usize];
    let Some(spec) = &m.scheduler else { return };
    let who = subject(m);
    if spec.accepts_any_binary {
        report.note(&who, "starts any sched_ext binary the user names; launch() not called");
        return;
    }
    let launch = match call::launch(lib.path, index, &m.name) {
        Ok(l) => l,
        Err(e) => {
            report.problem(
                &who,
                format!("launch(\"{}\") failed: {e}", m.name),
                "launch() must return a LaunchSpec for the plugin's own name: \
                 `ktstr run --scheduler NAME` calls it with NAME",
            );
            return;
        }
    };
    if launch.sched_ext != spec.sched_ext {
        report.problem(
            &who,
            format!(
                "the manifest says sched_ext={} but launch() says sched_ext={}",
                spec.sched_ext, launch.sched_ext
            ),
            "make SchedulerSpec and LaunchSpec agree (both sched_ext or both built in)",
        );
    }
    match &launch.binary {
        None => report.note(&who, "starts nothing (a scheduler built into the kernel)"),
        Some(bin) => report.note(&who, scheduler_binary(bin, spec)),
    }
}

/// Where a run would find the scheduler's binary: a path, the kernel
/// cache's schedulers, then PATH (as `ktstr run` looks).
fn scheduler_binary(bin: &str, spec: &SchedulerSpec) -> String {
    let found = if bin.contains('/') {
        std::path::Path::new(bin).is_file().then(|| format!("{bin} (a path)"))
    } else if let Some((_, p)) =
        crate::kernel::available_schedulers().into_iter().find(|(n, _)| n == bin)
    {
        Some(format!("{} (kernel cache)", p.display()))
    } else {
        crate::plugins::find_in_path(bin).map(|p| format!("{} (PATH)", p.display()))
    };
    let hint = spec.binary.as_ref().map(|b| b.install_hint.as_str()).unwrap_or_default();
    match found {
        Some(at) => format!("starts `{bin}`: {at}"),
        None => format!(
            "starts `{bin}`, not found now (kernel cache, PATH); runs need it{}",
            if hint.is_empty() { String::new() } else { format!(": {hint}") }
        ),
    }
}
