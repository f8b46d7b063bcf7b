//! Checks of a payload plugin: its default checks, its binary, its
//! extractor, its extra files, and whether `ktstr run` can pack it.

use std::collections::HashSet;
use std::path::Path;

use ktstr_core::check::Check;
use ktstr_core::plan::BIN_DIR;
use ktstr_core::plugin::{BinaryLocator, Manifest, PayloadSpec, RunContext};

use super::report::{subject, Report};
use super::Lib;
use crate::initramfs::ArchiveSpec;
use crate::plugins::locate;

pub fn check_payload(lib: &Lib<'_>, m: &Manifest, report: &mut Report) {
    let Some(spec) = &m.payload else { return };
    let who = subject(m);
    if spec.default_checks.is_empty() {
        report.problem(
            &who,
            "has no default checks: `ktstr run` without --check would have nothing to judge \
             and ends INIT_ERROR",
            "give it at least `exit==0` with PayloadSpec::with_checks",
        );
    }
    for text in &spec.default_checks {
        if let Err(e) = Check::parse(text) {
            report.problem(
                &who,
                format!("default check does not parse: {e}"),
                "correct it in PayloadSpec::with_checks (or drop it)",
            );
        }
    }
    // Any context will do: only unknown `{names}` and stray braces fail.
    let context = RunContext { duration_ms: Some(10_000), ..RunContext::default() };
    if let Err(e) =
        crate::run::expand_payload_args(&spec.default_args, &context, &Default::default())
    {
        report.problem(
            &who,
            format!("default arguments: {e}"),
            "use only the names ktstr fills in (the error lists them), and `{{`/`}}` for a \
             literal brace",
        );
    }
    if spec.format.trim().is_empty() {
        let hint = "set PayloadSpec's format (json, text, …)";
        report.problem(&who, "names no output format", hint);
    }
    let mut hinted = HashSet::new();
    for h in &spec.metric_hints {
        if !hinted.insert(h.name.as_str()) {
            report.problem(
                &who,
                format!("has two metric hints for `{}`", h.name),
                "keep one MetricHint per metric",
            );
        }
    }
    check_extractor_exists(lib, &who, spec, report);
    match &spec.binary {
        None => report.note(&who, "inline: runs in the plugin (run_inline), no binary"),
        Some(bin) => check_binary(lib.path, &who, bin, report),
    }
    check_extra_files(&who, &spec.extra_files, report);
}

fn check_extractor_exists(lib: &Lib<'_>, who: &str, spec: &PayloadSpec, report: &mut Report) {
    let name = &spec.extractor;
    if name.trim().is_empty() {
        report.problem(
            who,
            "names no extractor",
            "name the extractor of its output in PayloadSpec::new (e.g. `json`)",
        );
        return;
    }
    match lib.extractor(name) {
        Some((found, origin)) => {
            report.note(who, format!("extractor `{name}` found {origin}: {}", found.path.display()))
        }
        None => report.problem(
            who,
            format!(
                "names extractor `{name}`, which is neither in this library nor on the plugin \
                 search path"
            ),
            format!(
                "export an extractor named `{name}` from this library \
                 (export_plugins!(Payload, Extractor)), or install the library that has it \
                 (--plugin-dir DIR, KTSTR_PLUGIN_PATH; `ktstr list-plugins --kind extractor`)"
            ),
        ),
    }
}

/// Found as `ktstr run` finds it, and packable the way it packs it.
fn check_binary(lib: &Path, who: &str, bin: &BinaryLocator, report: &mut Report) {
    if bin.install_hint.trim().is_empty() {
        report.problem(
            who,
            format!("the BinaryLocator of `{}` has no install hint", bin.name),
            "say in one line how to get the binary: users see it when it is missing",
        );
    }
    let found = match locate(bin, lib) {
        Ok(found) => found,
        Err(e) => {
            let (what, fix) = missing_binary(lib, bin, e);
            report.problem(who, what, fix);
            return;
        }
    };
    let mut archive = ArchiveSpec::default();
    match archive.add_elf_in_dir(&found.path, BIN_DIR) {
        Ok(guest) => report.note(
            who,
            format!(
                "binary {} ({}), runs in the guest as {guest}",
                found.path.display(),
                found.via
            ),
        ),
        Err(e) => report.problem(
            who,
            format!("binary {} cannot be packed into the guest: {e:#}", found.path.display()),
            "it must be an x86-64 ELF executable whose shared libraries this host's ld.so \
             finds (`ldd` shows them); a script cannot be a payload binary",
        ),
    }
}

/// What was tried and what to do, without repeating locate()'s whole error.
fn missing_binary(lib: &Path, bin: &BinaryLocator, error: String) -> (String, String) {
    let var = bin.env_override.as_deref();
    if let Some(v) = var.filter(|v| std::env::var_os(v).is_some()) {
        return (error, format!("point ${v} at an executable file, or unset it"));
    }
    let dir = lib.parent().map(|d| d.display().to_string()).unwrap_or_default();
    let unset = var.map(|v| format!(", ${v} is not set")).unwrap_or_default();
    let what =
        format!("binary `{}` is not on PATH nor beside the plugin in {dir}{unset}", bin.name);
    let hint = bin.install_hint.trim();
    let or_set = var.map(|v| format!(", or set ${v} to its path")).unwrap_or_default();
    let fix = format!(
        "{hint}{}put it beside the plugin library{or_set}",
        if hint.is_empty() { "" } else { "; or " }
    );
    (what, fix)
}

/// Extra files are packed at their own path, so it must be absolute and exist.
fn check_extra_files(who: &str, files: &[String], report: &mut Report) {
    for f in files {
        if !f.starts_with('/') {
            report.problem(
                who,
                format!("extra file `{f}` is not an absolute path"),
                "give its absolute host path: it is packed at the same path in the guest",
            );
        } else if !Path::new(f).is_file() {
            report.problem(
                who,
                format!("extra file {f} does not exist on this host"),
                "create it, or drop it from PayloadSpec::with_extra_files",
            );
        }
    }
}
