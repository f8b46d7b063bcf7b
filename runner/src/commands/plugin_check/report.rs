//! What `plugin check` found, and how it is shown: one line per problem
//! with what to do, or JSON.

use std::path::PathBuf;

use ktstr_core::metrics::format_value;
use ktstr_core::plugin::Manifest;
use ktstr_plugin_api::Metric;
use serde::Serialize;
use serde_json::json;

/// Something wrong with the library, and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// What it is about: the file, or `payload `name``.
    pub subject: String,
    pub what: String,
    pub fix: String,
}

/// One extractor's metrics from the sample.
#[derive(Debug, Clone, Serialize)]
pub struct Sampled {
    pub extractor: String,
    pub path: PathBuf,
    pub metrics: Vec<Metric>,
    pub notes: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub path: PathBuf,
    pub manifests: Vec<Manifest>,
    pub problems: Vec<Problem>,
    /// Facts worth knowing that are not wrong (where a binary was found).
    pub notes: Vec<String>,
    pub samples: Vec<Sampled>,
}

impl Report {
    pub fn problem(&mut self, subject: &str, what: impl Into<String>, fix: impl Into<String>) {
        let (what, fix) = (what.into(), fix.into());
        self.problems.push(Problem { subject: subject.into(), what, fix });
    }

    pub fn note(&mut self, subject: &str, text: impl std::fmt::Display) {
        self.notes.push(format!("{subject}: {text}"));
    }

    pub fn to_json(&self) -> serde_json::Value {
        let plugins: Vec<_> = self
            .manifests
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut v = serde_json::to_value(m).expect("manifests serialise");
                v["index"] = json!(i);
                v
            })
            .collect();
        json!({
            "path": self.path,
            "ok": self.problems.is_empty(),
            "host_abi": ktstr_plugin_api::ABI_VERSION,
            "plugins": plugins,
            "problems": self.problems,
            "notes": self.notes,
            "samples": self.samples,
        })
    }

    pub fn print_human(&self) {
        let abi = ktstr_plugin_api::ABI_VERSION;
        match self.manifests.len() {
            0 => println!("{}: this ktstr speaks ABI {abi}", self.path.display()),
            1 => println!("{}: 1 plugin, this ktstr speaks ABI {abi}", self.path.display()),
            n => println!("{}: {n} plugins, this ktstr speaks ABI {abi}", self.path.display()),
        }
        for m in &self.manifests {
            let (kind, name, version) = (m.kind.as_str(), &m.name, &m.version);
            println!("  {kind:<10} {name} {version} (ABI {})  {}", m.abi_version, m.description);
        }
        for n in &self.notes {
            println!("note: {n}");
        }
        for s in &self.samples {
            println!("sample, extractor {} ({}):", s.extractor, s.path.display());
            let width = s.metrics.iter().map(|m| m.name.len()).max().unwrap_or(0);
            for m in &s.metrics {
                println!("  {:<width$}  {:>14} {}", m.name, format_value(m.value), m.unit);
            }
            for n in &s.notes {
                println!("  note: {n}");
            }
        }
        for p in &self.problems {
            println!("problem: {}: {}; fix: {}", p.subject, p.what, p.fix);
        }
        match self.problems.len() {
            0 => println!("OK: no problems found"),
            n => println!("{n} problem{} found", if n == 1 { "" } else { "s" }),
        }
    }
}

/// How problems and notes name one plugin: "payload `fio`".
pub fn subject(m: &Manifest) -> String {
    format!("{} `{}`", m.kind, m.name)
}
