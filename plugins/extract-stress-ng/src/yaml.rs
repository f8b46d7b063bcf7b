//! The `--yaml FILE` report: a `system-info` map and a `metrics` list with
//! one map per stressor (`stressor: cpu`, `bogo-ops: 8723`, …). With
//! `--yaml /dev/stdout` or `/dev/stderr` it may share the stream with log
//! lines, so only the text from `---` to `...` is parsed.

use ktstr_plugin_api::Metric;
use ktstr_plugin_support::escape_key;
use serde_yaml::Value;

use crate::FIELDS;

/// Whether `text` holds a stress-ng YAML report.
pub fn looks_like_yaml(text: &str) -> bool {
    text.lines().any(|l| l.trim_end() == "---" || l.starts_with("metrics:"))
}

/// Metrics from the YAML report in `text`.
pub fn extract_yaml(text: &str) -> Result<Vec<Metric>, String> {
    let doc: Value = serde_yaml::from_str(document(text))
        .map_err(|e| format!("malformed stress-ng YAML: {e}"))?;
    let Some(list) = doc.get("metrics") else {
        return Err("stress-ng YAML has no `metrics` section: run stress-ng with --metrics-brief \
            or --metrics"
            .into());
    };
    let list = list.as_sequence().ok_or("stress-ng YAML: `metrics` is not a list")?;
    let mut out = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let stressor = entry
            .get("stressor")
            .and_then(Value::as_str)
            .ok_or(format!("stress-ng YAML: metrics entry #{i} has no `stressor`"))?;
        let stressor = escape_key(stressor);
        for f in &FIELDS {
            if let Some(v) = entry.get(f.yaml).and_then(Value::as_f64) {
                out.push(Metric::new(format!("{stressor}/{}", f.name), v, f.unit));
            }
        }
    }
    Ok(out)
}

/// The report's lines: from `---` (or the first top-level key) to `...`.
fn document(text: &str) -> &str {
    let is_start = |l: &str| {
        l.trim_end() == "---" || l.starts_with("system-info:") || l.starts_with("metrics:")
    };
    let mut offset = 0;
    let mut start = None;
    for line in text.split_inclusive('\n') {
        match start {
            None if is_start(line) => start = Some(offset),
            Some(s) if line.trim_end() == "..." => return &text[s..offset],
            _ => {}
        }
        offset += line.len();
    }
    &text[start.unwrap_or(0)..]
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../../tests/fixtures/outputs/stress-ng/cpu2.yaml");

    fn value(m: &[Metric], name: &str) -> Option<f64> {
        m.iter().find(|x| x.name.as_str() == name).map(|x| x.value)
    }

    #[test]
    fn fixture_cpu2() {
        let m = extract_yaml(FIXTURE).unwrap();
        assert_eq!(value(&m, "cpu/bogo_ops"), Some(8723.0));
        assert_eq!(value(&m, "cpu/bogo_ops_per_sec_real"), Some(4359.071454));
        assert_eq!(value(&m, "cpu/bogo_ops_per_sec_usr_sys"), Some(2185.944898));
        assert_eq!(value(&m, "cpu/wall_clock_s"), Some(2.001114));
        assert_eq!(value(&m, "cpu/user_time_s"), Some(3.986498));
        assert_eq!(value(&m, "cpu/system_time_s"), Some(0.003996));
        assert_eq!(value(&m, "cpu/cpu_usage_per_instance_pct"), Some(99.706801));
        assert_eq!(value(&m, "cpu/max_rss_kib"), Some(6524.0));
        assert_eq!(m.len(), 8);
        assert_eq!(m[0].unit.as_str(), "ops");
    }

    #[test]
    fn shares_the_stream_with_log_lines() {
        let extra = "    - stressor: vm\n      bogo-ops: 12\n";
        let report = FIXTURE.replace("\n...", &format!("{extra}\n..."));
        let text = format!(
            "stress-ng: info:  [1] dispatching hogs: 2 cpu\n{report}stress-ng: info:  [1] done\n"
        );
        let m = extract_yaml(&text).unwrap();
        assert_eq!(value(&m, "cpu/bogo_ops"), Some(8723.0));
        assert_eq!(value(&m, "vm/bogo_ops"), Some(12.0));
    }

    #[test]
    fn no_metrics_or_bad_yaml_is_an_error() {
        let err = extract_yaml("---\nsystem-info:\n      cpus: 2\n...\n").unwrap_err();
        assert!(err.contains("--metrics-brief"), "{err}");
        assert!(extract_yaml("---\nmetrics:\n    - stressor: [cpu\n").is_err());
    }
}
