//! `plugin check --sample FILE`: the library's extractors (and its payloads'
//! extractors, wherever they are) run on FILE, contained, as in a run.

use std::collections::HashSet;

use ktstr_core::check::{glob_matches, Aggregate, Check};
use ktstr_core::plugin::{Kind, PluginRef};

use super::report::{subject, Report, Sampled};
use super::Lib;

/// The extractors to run: this library's own, then each payload's.
pub fn extractors(lib: &Lib<'_>) -> Vec<PluginRef> {
    let mut out: Vec<PluginRef> = Vec::new();
    let own = (0..lib.manifests.len() as u32).filter_map(|i| {
        let m = &lib.manifests[i as usize];
        (m.kind == Kind::Extractor).then(|| lib.plugin(i))
    });
    let of_payloads = lib.manifests.iter().filter_map(|m| {
        let spec = m.payload.as_ref()?;
        lib.extractor(&spec.extractor).map(|(p, _)| p)
    });
    for p in own.chain(of_payloads) {
        if !out.iter().any(|o| o.path == p.path && o.index == p.index) {
            out.push(p);
        }
    }
    out
}

pub fn run(lib: &Lib<'_>, extractors: &[PluginRef], sample: &[u8], report: &mut Report) {
    let text = String::from_utf8_lossy(sample);
    for x in extractors {
        let who = subject(&x.info);
        let found = match x.extract(&text) {
            Ok(found) => found,
            Err(e) => {
                report.problem(
                    &who,
                    format!("extract() failed on the sample: {e}"),
                    "make extract() read this output; a unit test with the sample's text \
                     shows why it fails",
                );
                continue;
            }
        };
        if found.metrics.is_empty() {
            report.problem(
                &who,
                "found no metrics in the sample",
                "check that the sample is the payload's metric stream, and that extract() \
                 matches its lines",
            );
        }
        let mut names = HashSet::new();
        for dup in found.metrics.iter().filter(|m| !names.insert(m.name.as_str())) {
            report.problem(
                &who,
                format!("metric `{}` appears more than once in the sample's metrics", dup.name),
                "give each metric its own name (a run refuses duplicates: which one a check \
                 reads would be undefined)",
            );
        }
        check_defaults_against(lib, x, &names, report);
        report.samples.push(Sampled {
            extractor: x.info.name.clone(),
            path: x.path.clone(),
            metrics: found.metrics,
            notes: found.notes,
        });
    }
}

/// A default check that reads a metric its extractor does not produce
/// fails every run: say so now.
fn check_defaults_against(
    lib: &Lib<'_>,
    x: &PluginRef,
    names: &HashSet<&str>,
    report: &mut Report,
) {
    for m in lib.manifests {
        let Some(spec) = &m.payload else { continue };
        let theirs = lib.extractor(&spec.extractor);
        if !theirs.is_some_and(|(p, _)| p.path == x.path && p.index == x.index) {
            continue;
        }
        for text in &spec.default_checks {
            let Ok(check) = Check::parse(text) else { continue };
            // `count(glob)` is 0 when nothing matches, which is a value, not a miss.
            let counts = matches!(check, Check::Family { aggregate: Aggregate::Count, .. });
            let Some(wanted) = check.metric().filter(|_| !counts) else { continue };
            if !names.iter().any(|n| glob_matches(wanted, n)) {
                let mut have: Vec<&str> = names.iter().copied().collect();
                have.sort();
                report.problem(
                    &subject(m),
                    format!(
                        "default check `{text}` reads `{wanted}`, which matches no metric \
                         extractor `{}` produces from the sample (it produced: {})",
                        x.info.name,
                        if have.is_empty() { "nothing".into() } else { have.join(", ") }
                    ),
                    "rename the metric in the check or in the extractor, or give a sample that \
                     has it",
                );
            }
        }
    }
}
