//! Runs an extractor over a payload's captured output with the stream rule:
//! stdout is the primary metric stream; stderr is read only when stdout
//! yields nothing. The two are never merged.

use crate::metrics::{Metric, Stream};
use crate::plugin::LoadedPlugin;

/// Where each stream's bytes are, already captured.
pub struct Captured<'a> {
    pub stdout: &'a [u8],
    pub stderr: &'a [u8],
}

impl Captured<'_> {
    fn get(&self, s: Stream) -> &[u8] {
        match s {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        }
    }
}

/// Extracts metrics from stdout, else from stderr. An extractor error on
/// stdout is returned only if stderr yields nothing as well, so a noisy
/// stream never hides good metrics.
pub fn extract_metrics(
    extractor: &LoadedPlugin,
    out: &Captured<'_>,
) -> anyhow::Result<Vec<Metric>> {
    let mut first_err = None;
    for stream in [Stream::Stdout, Stream::Stderr] {
        let text = String::from_utf8_lossy(out.get(stream));
        match extractor.extract(&text) {
            Ok(found) if !found.is_empty() => {
                return Ok(found
                    .into_iter()
                    .map(|m| Metric {
                        name: m.name.into(),
                        value: m.value,
                        unit: m.unit.into(),
                        stream,
                    })
                    .collect())
            }
            Ok(_) => {}
            Err(e) => {
                first_err.get_or_insert(anyhow::anyhow!(
                    "extractor {} on {}: {e}",
                    extractor.info.name,
                    stream.as_str()
                ));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(Vec::new()),
    }
}
