//! The table stress-ng logs on stderr with `--metrics-brief` (six numbers
//! per stressor) or `--metrics` (eight):
//!
//! ```text
//! stress-ng: metrc: [7096] stressor       bogo ops real time  usr time  sys time   bogo ops/s     bogo ops/s
//! stress-ng: metrc: [7096]                           (secs)    (secs)    (secs)   (real time) (usr+sys time)
//! stress-ng: metrc: [7096] cpu                8723      2.00      3.99      0.00      4359.07        2185.94
//! ```
//!
//! Releases before 0.15 tag these lines `info:` instead of `metrc:`; a row
//! is told from other log lines by its shape: a name and only numbers.

use ktstr_plugin_api::Metric;
use ktstr_plugin_support::{escape_key, parse_finite};

use crate::FIELDS;

/// Metrics from the stderr table; none when the text has no table row.
pub fn extract_brief(text: &str) -> Vec<Metric> {
    let mut rows: Vec<(&str, Vec<f64>)> = Vec::new();
    for line in text.lines() {
        let Some((name, values)) = row(line) else { continue };
        // A stressor seen twice (two runs in one log): the last row wins.
        rows.retain(|(n, _)| *n != name);
        rows.push((name, values));
    }
    let mut out = Vec::new();
    for (name, values) in rows {
        let name = escape_key(name);
        for (f, v) in FIELDS.iter().zip(values) {
            out.push(Metric::new(format!("{name}/{}", f.name), v, f.unit));
        }
    }
    out
}

/// `... metrc: [pid] <stressor> <6 or 8 numbers>`.
fn row(line: &str) -> Option<(&str, Vec<f64>)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let tag = words.windows(2).position(|w| matches!(w[0], "metrc:" | "info:") && is_pid(w[1]))?;
    let (name, numbers) = words[tag + 2..].split_first()?;
    if !(6..=FIELDS.len()).contains(&numbers.len()) || parse_finite(name).is_some() {
        return None;
    }
    let values = numbers.iter().map(|w| parse_finite(w)).collect::<Option<Vec<f64>>>()?;
    Some((name, values))
}

fn is_pid(word: &str) -> bool {
    word.strip_prefix('[')
        .and_then(|w| w.strip_suffix(']'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str =
        include_str!("../../../tests/fixtures/outputs/stress-ng/cpu2.metrics-brief.stderr.txt");

    fn value(m: &[Metric], name: &str) -> Option<f64> {
        m.iter().find(|x| x.name.as_str() == name).map(|x| x.value)
    }

    #[test]
    fn fixture_cpu2() {
        let m = extract_brief(FIXTURE);
        assert_eq!(value(&m, "cpu/bogo_ops"), Some(8723.0));
        assert_eq!(value(&m, "cpu/wall_clock_s"), Some(2.0));
        assert_eq!(value(&m, "cpu/user_time_s"), Some(3.99));
        assert_eq!(value(&m, "cpu/system_time_s"), Some(0.0));
        assert_eq!(value(&m, "cpu/bogo_ops_per_sec_real"), Some(4359.07));
        assert_eq!(value(&m, "cpu/bogo_ops_per_sec_usr_sys"), Some(2185.94));
        assert_eq!(m.len(), 6);
    }

    #[test]
    fn old_info_tag_full_metrics_and_several_stressors() {
        let text = "\
stress-ng: info:  [12] stressor       bogo ops real time  usr time  sys time   bogo ops/s   bogo ops/s
stress-ng: info:  [12] cpu                 100      1.00      0.90      0.10       100.00       100.00
stress-ng: metrc: [13] vm                  50      1.00      0.50      0.50        50.00        50.00        99.97          6416
stress-ng: info:  [12] successful run completed in 1.00s
";
        let m = extract_brief(text);
        assert_eq!(value(&m, "cpu/bogo_ops"), Some(100.0));
        assert_eq!(value(&m, "vm/bogo_ops"), Some(50.0));
        assert_eq!(value(&m, "vm/cpu_usage_per_instance_pct"), Some(99.97));
        assert_eq!(value(&m, "vm/max_rss_kib"), Some(6416.0));
        assert_eq!(value(&m, "cpu/max_rss_kib"), None);
    }

    #[test]
    fn other_lines_are_not_rows() {
        assert!(extract_brief("").is_empty());
        assert!(extract_brief("stress-ng: info:  [7096] dispatching hogs: 2 cpu\n").is_empty());
        assert!(extract_brief("cpu 1 2 3 4 5 6\n").is_empty(), "no `metrc: [pid]` prefix");
    }
}
