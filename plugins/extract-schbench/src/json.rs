//! schbench's `--json` summary: `{"normal": {...strings...}, "int": {...}}`.
//! The `int` keys are renamed to the text form's names:
//! `wakeup_latency_pct99.0` → `wakeup_latency_p99`; `_min`, `_max` and
//! `runtime` keep theirs; `time` (a timestamp) is dropped.

use ktstr_plugin_api::Metric;
use ktstr_plugin_support::{escape_key, parse_finite};
use serde_json::Value;

use crate::{percentile_name, unit_of};

/// Metrics from a parsed schbench JSON document.
pub fn extract_json(doc: &Value) -> Result<Vec<Metric>, String> {
    let int = doc
        .get("int")
        .and_then(Value::as_object)
        .ok_or("schbench JSON has no \"int\" object (is this schbench --json output?)")?;
    let mut out = Vec::new();
    for (key, v) in int {
        let Some(x) = v.as_f64() else { continue };
        if key == "time" {
            continue;
        }
        out.push(rename(key, x));
    }
    Ok(out)
}

fn rename(key: &str, x: f64) -> Metric {
    if key == "runtime" {
        return Metric::new("runtime", x, "s");
    }
    if let Some((prefix, pct)) = key.split_once("_pct").filter(|(_, p)| parse_finite(p).is_some()) {
        return Metric::new(percentile_name(prefix, pct), x, unit_of(prefix));
    }
    let prefix = key.rsplit_once('_').map_or("", |(p, _)| p);
    // Keys this version does not know still come through, under their own name.
    Metric::new(escape_key(key), x, unit_of(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value;

    #[test]
    fn fixture_m1_t2_r2() {
        let doc = serde_json::from_str(include_str!(
            "../../../tests/fixtures/outputs/schbench/m1-t2-r2.json"
        ))
        .unwrap();
        let m = extract_json(&doc).unwrap();
        assert_eq!(value(&m, "wakeup_latency_p99"), Some(27.0));
        assert_eq!(value(&m, "wakeup_latency_p99.9"), Some(64.0));
        assert_eq!(value(&m, "wakeup_latency_p20"), Some(2.0));
        assert_eq!(value(&m, "wakeup_latency_min"), Some(1.0));
        assert_eq!(value(&m, "request_latency_p99.9"), Some(10160.0));
        assert_eq!(value(&m, "rps_p50"), Some(593.0));
        assert_eq!(value(&m, "rps_max"), Some(597.0));
        assert_eq!(value(&m, "runtime"), Some(2.0));
        assert_eq!(value(&m, "time"), None);
        let unit = |n: &str| m.iter().find(|x| x.name.as_str() == n).unwrap().unit.to_string();
        assert_eq!(unit("wakeup_latency_p99"), "us");
        assert_eq!(unit("request_latency_max"), "us");
        assert_eq!(unit("rps_max"), "requests/s");
        assert_eq!(unit("runtime"), "s");
        // 7 names per kind (5 percentiles, min, max) and runtime.
        assert_eq!(m.len(), 3 * 7 + 1);
    }

    #[test]
    fn missing_int_is_an_error() {
        let err = extract_json(&serde_json::json!({"normal": {}})).unwrap_err();
        assert!(err.contains("\"int\""), "{err}");
    }
}
