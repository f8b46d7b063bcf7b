//! `ktstr plugin check PATH`: opens a plugin library as discovery and the
//! guest do (in a child process, never in ktstr's own), checks what a run
//! relies on, and reports each problem with what to do.

mod advice;
mod manifest;
mod payload;
mod report;
mod sample;

use std::path::{Path, PathBuf};

use ktstr_core::plan::PLUGIN_DIR;
use ktstr_core::plugin::{call, Kind, Manifest, PluginRef};

use super::plugin::CheckArgs;
use crate::initramfs::ArchiveSpec;
use crate::plugins::{Catalog, Discovery};
use crate::usage::UsageError;
use report::Report;

/// The library under check, and the search path it is checked against.
pub struct Lib<'a> {
    pub path: &'a Path,
    canonical: PathBuf,
    pub manifests: &'a [Manifest],
    pub catalog: &'a Catalog,
}

impl Lib<'_> {
    /// Whether `other` is this library's file.
    pub fn is(&self, other: &Path) -> bool {
        other.canonicalize().is_ok_and(|c| c == self.canonical)
    }

    pub fn plugin(&self, index: u32) -> PluginRef {
        let info = self.manifests[index as usize].clone();
        PluginRef { path: self.path.to_path_buf(), index, info }
    }

    /// The extractor `name`: this library's own first, else the search path's.
    pub fn extractor(&self, name: &str) -> Option<(PluginRef, &'static str)> {
        let own = self.manifests.iter().position(|m| m.kind == Kind::Extractor && m.name == name);
        match own {
            Some(i) => Some((self.plugin(i as u32), "in this library")),
            None => {
                self.catalog.find(Kind::Extractor, name).map(|p| (p.clone(), "on the search path"))
            }
        }
    }
}

pub fn run(args: &CheckArgs, discovery: &Discovery) -> anyhow::Result<i32> {
    let path = args.path.as_path();
    if !path.is_file() {
        let why = if path.exists() { "is not a file" } else { "does not exist" };
        return Err(UsageError(format!("{} {why}", path.display())).into());
    }
    let sample =
        match &args.sample {
            None => None,
            Some(f) => Some(std::fs::read(f).map_err(|e| {
                UsageError(format!("--sample {}: cannot read it: {e}", f.display()))
            })?),
        };
    let mut report = Report { path: path.to_path_buf(), ..Report::default() };
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    if !file.ends_with(".so") {
        report.problem(
            &file,
            "discovery only loads files named *.so",
            "keep cargo's name for the cdylib (libNAME.so), or rename the file to end in .so",
        );
    }
    match call::probe(path) {
        Ok(manifests) => report.manifests = manifests,
        Err(reason) => {
            let fix = advice::for_load_error(&reason);
            report.problem(&file, format!("does not load: {reason}"), fix);
            return Ok(finish(&report, args.json));
        }
    }
    let catalog = discovery.scan();
    let manifests = report.manifests.clone();
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let lib = Lib { path, canonical, manifests: &manifests, catalog: &catalog };
    check_library(&lib, discovery, &file, &mut report);
    if let Some(bytes) = &sample {
        let extractors = sample::extractors(&lib);
        if extractors.is_empty() {
            return Err(UsageError(format!(
                "--sample: {file} has no extractor, and no payload whose extractor was found"
            ))
            .into());
        }
        sample::run(&lib, &extractors, bytes, &mut report);
    }
    Ok(finish(&report, args.json))
}

/// Every check that needs only the library and the search path.
fn check_library(lib: &Lib<'_>, discovery: &Discovery, file: &str, report: &mut Report) {
    manifest::check_common(lib, report);
    for (i, m) in lib.manifests.iter().enumerate() {
        match m.kind {
            Kind::Payload => payload::check_payload(lib, m, report),
            Kind::Extractor => manifest::check_extractor(m, report),
            Kind::Scheduler => manifest::check_scheduler(lib, i as u32, report),
            other => report.note(file, format!("plugin kind {other} is not checked")),
        }
    }
    // Launchers run on the host only; payloads and extractors go into the guest.
    if lib.manifests.iter().any(|m| m.kind != Kind::Scheduler) {
        match ArchiveSpec::default().add_elf_in_dir(lib.path, PLUGIN_DIR) {
            Ok(guest) => report.note(file, format!("packed into the guest as {guest}")),
            Err(e) => report.problem(
                file,
                format!("cannot be packed into the guest: {e:#}"),
                "every shared library it needs must be found by this host's ld.so (`ldd` \
                 shows them)",
            ),
        }
    }
    let dir = lib.path.parent().and_then(|d| d.canonicalize().ok());
    let on_path = discovery.dirs.iter().any(|d| d.path.canonicalize().ok() == dir);
    if !on_path {
        report.note(
            file,
            "not in a directory on the plugin search path: `ktstr run` and `ktstr list-plugins` \
             need --plugin-dir DIR (or KTSTR_PLUGIN_PATH) to see it",
        );
    }
}

fn finish(report: &Report, json: bool) -> i32 {
    if json {
        let text = serde_json::to_string_pretty(&report.to_json()).expect("reports serialise");
        println!("{text}");
    } else {
        report.print_human();
    }
    if report.problems.is_empty() {
        crate::exit::PASS
    } else {
        crate::exit::CHECK_FAILED
    }
}
