//! Runs an extractor over a payload's captured output with the stream rule:
//! the payload's declared metric stream is read first; the other only when
//! the first yields nothing. The two are never merged.

use std::collections::HashSet;

use crate::metrics::{Metric, Stream};
use crate::plugin::PluginAt;

/// Where each stream's bytes are, already captured.
pub struct Captured<'a> {
    pub stdout: &'a [u8],
    pub stderr: &'a [u8],
}

impl Captured<'_> {
    fn get(&self, s: Stream) -> &[u8] {
        match s {
            Stream::Stderr => self.stderr,
            _ => self.stdout,
        }
    }
}

/// What one extraction found: metrics tagged with their stream, and the
/// extractor's notes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    pub metrics: Vec<Metric>,
    pub notes: Vec<String>,
}

/// Extracts metrics from `primary`, else from the other stream. An
/// extractor error on the first is returned only if the second yields
/// nothing as well, so a noisy stream never hides good metrics. Two metrics
/// of one name are an error: which one a check would read is undefined.
pub fn extract_metrics(
    extractor: &PluginAt,
    primary: Stream,
    out: &Captured<'_>,
) -> anyhow::Result<Extracted> {
    let mut first_err = None;
    for stream in [primary, primary.other()] {
        let text = String::from_utf8_lossy(out.get(stream));
        match extractor.extract(&text) {
            Ok(found) if !found.metrics.is_empty() => {
                if let Some(dup) = first_duplicate(found.metrics.iter().map(|m| m.name.as_str())) {
                    anyhow::bail!(
                        "extractor {} on {}: metric `{dup}` appears more than once (of {} \
                         metrics); a payload whose children inherit buffered output prints \
                         it twice",
                        extractor.name,
                        stream.as_str(),
                        found.metrics.len()
                    );
                }
                let metrics = found
                    .metrics
                    .into_iter()
                    .map(|m| Metric { name: m.name, value: m.value, unit: m.unit, stream })
                    .collect();
                return Ok(Extracted { metrics, notes: found.notes });
            }
            Ok(_) => {}
            Err(e) => {
                first_err.get_or_insert(anyhow::anyhow!(
                    "extractor {} on {}: {e}",
                    extractor.name,
                    stream.as_str()
                ));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(Extracted::default()),
    }
}

fn first_duplicate<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = HashSet::new();
    names.into_iter().find(|n| !seen.insert(*n))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_first_repeated_name_is_reported() {
        assert_eq!(super::first_duplicate(["a", "b", "a", "b"].into_iter()), Some("a"));
        assert_eq!(super::first_duplicate(["a", "b"].into_iter()), None);
    }
}
