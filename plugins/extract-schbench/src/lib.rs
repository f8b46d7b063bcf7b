//! schbench extractor (`schbench`): reads schbench's percentile tables on
//! stderr (`schbench-text`) or its `--json` summary (`schbench-json`) and
//! gives both the same metric names, so a check such as
//! `wakeup_latency_p99<=5000` works whichever output a payload captures.
//!
//! Names: `<kind>_p<percentile>` with the percentile as printed less trailing
//! zeros (`99.0` → `p99`, `99.9` → `p99.9`), `<kind>_min`, `<kind>_max`, where
//! kind is `wakeup_latency`, `request_latency` (unit `us`) or `rps` (unit
//! `requests/s`); `runtime` (s). The text form adds `<kind>_samples`
//! (count), `average_rps` (requests/s) and `sched_delay_message`,
//! `sched_delay_worker` (us).

mod json;
mod text;

use ktstr_plugin_api::{export_plugin, Extraction, ExtractorSpec, Manifest, Metric, Plugin};
use ktstr_plugin_support::{find_json_document, trim_decimal};

pub use json::extract_json;
pub use text::extract_text;

/// The extractor's name, as payload manifests refer to it.
pub const NAME: &str = "schbench";

/// Reads either output form: a JSON document if the text holds one, else
/// the text tables.
pub fn extract(text: &str) -> Result<Vec<Metric>, String> {
    match find_json_document(text) {
        Some(doc) => extract_json(&doc?),
        None => extract_text(text),
    }
}

/// The unit of a metric whose name starts with `prefix` (`wakeup_latency`…).
fn unit_of(prefix: &str) -> &'static str {
    match prefix {
        "wakeup_latency" | "request_latency" => "us",
        "rps" => "requests/s",
        _ => "",
    }
}

/// `<prefix>_p<pct>` with the percentile as printed, less trailing zeros.
fn percentile_name(prefix: &str, pct: &str) -> String {
    format!("{prefix}_p{}", trim_decimal(pct))
}

pub struct Schbench;

impl Plugin for Schbench {
    fn manifest() -> Manifest {
        Manifest::extractor(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "schbench: wake-up/request latency and RPS percentiles, from the stderr tables or \
                --json",
            ExtractorSpec::new(&["schbench-text", "schbench-json"]),
        )
    }

    fn extract(text: &str) -> Result<Extraction, String> {
        extract(text).map(Extraction::from)
    }
}

export_plugin!(Schbench);

#[cfg(test)]
pub(crate) fn value(metrics: &[Metric], name: &str) -> Option<f64> {
    metrics.iter().find(|m| m.name.as_str() == name).map(|m| m.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_share_names() {
        let text =
            extract(include_str!("../../../tests/fixtures/outputs/schbench/m1-t2-r3.stderr.txt"))
                .unwrap();
        let json = extract(include_str!("../../../tests/fixtures/outputs/schbench/m1-t2-r2.json"))
            .unwrap();
        for name in ["wakeup_latency_p99", "request_latency_p99.9", "rps_p50", "rps_max", "runtime"]
        {
            assert!(value(&text, name).is_some(), "text lacks {name}");
            assert!(value(&json, name).is_some(), "json lacks {name}");
        }
    }

    #[test]
    fn empty_text_yields_nothing() {
        assert!(extract("").unwrap().is_empty());
        assert!(extract("setting worker threads to 2\n").unwrap().is_empty());
    }

    #[test]
    fn truncated_json_is_an_error() {
        assert!(extract("{\"normal\": {\"version\": \"6.1\"}, \"int\": {\"time\": 1").is_err());
    }

    #[test]
    fn manifest_lists_both_formats() {
        let m = Schbench::manifest();
        assert_eq!(m.name.as_str(), NAME);
        let formats: Vec<String> =
            m.extractor.unwrap().formats.iter().map(|f| f.to_string()).collect();
        assert_eq!(formats, ["schbench-text", "schbench-json"]);
    }
}
