//! Generic JSON extractor (`json`): turns the first JSON document of a
//! stream into metrics, one per numeric leaf. Used by payloads whose output
//! is already JSON (the built-in `workers` payload, custom tools).
//!
//! # Finding the document
//! Lines before the first one that starts (after blanks) with `{` or `[` are
//! skipped, so warnings printed before the JSON do not matter; text after
//! the document is ignored. A stream with no such line yields no metrics; a
//! document that does not parse (e.g. truncated) is an error.
//!
//! # Naming rule
//! Every numeric leaf becomes a metric named by its path of object keys and
//! array indexes joined with `/`. Each key is escaped the JSON-Pointer way
//! (RFC 6901): `~` → `~0`, then `/` → `~1`; nothing else is escaped, so keys
//! with dots stay as they are and every name maps back to exactly one leaf:
//! `{"int":{"wakeup_latency_pct99.0":27}}` gives `int/wakeup_latency_pct99.0`
//! = 27, `{"jobs":[{"read/write":{"iops":5}}]}` gives `jobs/0/read~1write/iops`
//! = 5. Numbers keep their value; booleans become 1 (true) or 0 (false);
//! strings holding a finite number (`"2"`) become that number; other strings
//! and nulls are skipped. Units are empty.

use ktstr_plugin_api::{export_plugin, Extraction, ExtractorSpec, Manifest, Metric, Plugin};
use ktstr_plugin_support::{find_json_document, flatten_json};

/// The extractor's name, as payload manifests refer to it.
pub const NAME: &str = "json";

/// Flattens the first JSON document of `text` (see the crate docs).
pub fn extract_json(text: &str) -> Result<Vec<Metric>, String> {
    match find_json_document(text) {
        None => Ok(Vec::new()),
        Some(doc) => Ok(flatten_json(&doc?)),
    }
}

pub struct JsonExtractor;

impl Plugin for JsonExtractor {
    fn manifest() -> Manifest {
        Manifest::extractor(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "generic JSON: every numeric leaf, named by its `/`-joined key path (JSON-Pointer \
                escaped)",
            ExtractorSpec::new(&["json"]),
        )
    }

    fn extract(text: &str) -> Result<Extraction, String> {
        extract_json(text).map(Extraction::from)
    }
}

export_plugin!(JsonExtractor);

#[cfg(test)]
mod tests {
    use super::*;

    fn value(metrics: &[Metric], name: &str) -> Option<f64> {
        metrics.iter().find(|m| m.name.as_str() == name).map(|m| m.value)
    }

    #[test]
    fn dotted_and_slashed_keys() {
        let text = r#"starting up
{"int": {"wakeup_latency_pct99.0": 27, "time": 1795473734},
 "a/b": {"c~d": [1.5, {"ok": true}]},
 "percentile": {"99.000000": 64256}, "label": "x"}
"#;
        let m = extract_json(text).unwrap();
        assert_eq!(value(&m, "int/wakeup_latency_pct99.0"), Some(27.0));
        assert_eq!(value(&m, "a~1b/c~0d/0"), Some(1.5));
        assert_eq!(value(&m, "a~1b/c~0d/1/ok"), Some(1.0));
        assert_eq!(value(&m, "percentile/99.000000"), Some(64256.0));
        assert_eq!(value(&m, "label"), None);
        assert_eq!(m.len(), 5);
    }

    #[test]
    fn empty_and_non_json_text_yield_nothing() {
        assert!(extract_json("").unwrap().is_empty());
        assert!(extract_json("hello\nworld\n").unwrap().is_empty());
    }

    #[test]
    fn truncated_json_is_an_error() {
        let err = extract_json("{\"a\": {\"b\": 1,").unwrap_err();
        assert!(err.contains("malformed JSON"), "{err}");
    }

    #[test]
    fn real_fixtures_flatten() {
        let fio =
            extract_json(include_str!("../../../tests/fixtures/outputs/fio/randread-psync.json"))
                .unwrap();
        assert_eq!(value(&fio, "jobs/0/read/clat_ns/percentile/99.000000"), Some(64256.0));
        assert_eq!(value(&fio, "jobs/0/job options/size"), None, "\"16M\" is not a number");
        let sch =
            extract_json(include_str!("../../../tests/fixtures/outputs/schbench/m1-t2-r2.json"))
                .unwrap();
        assert_eq!(value(&sch, "int/wakeup_latency_pct99.0"), Some(27.0));
    }

    #[test]
    fn manifest_names_the_extractor() {
        let m = JsonExtractor::manifest();
        assert_eq!(m.name.as_str(), NAME);
        assert_eq!(m.kind, ktstr_plugin_api::PluginKind::Extractor);
    }
}
