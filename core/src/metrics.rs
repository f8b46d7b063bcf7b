//! Metrics as the host and the guest keep them (owned, serialisable).

use serde::{Deserialize, Serialize};

/// Which captured stream a metric was read from.
pub use ktstr_plugin_api::Stream;

/// One named number, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    /// Empty when unknown. Always serialised: postcard is not self-describing.
    #[serde(default)]
    pub unit: String,
    pub stream: Stream,
}

/// Finds a metric by exact name.
pub fn find<'a>(metrics: &'a [Metric], name: &str) -> Option<&'a Metric> {
    metrics.iter().find(|m| m.name == name)
}

/// Formats a value the way people read them: integers without a fraction,
/// everything else with up to 3 decimals.
pub fn format_value(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.is_finite() {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_values() {
        assert_eq!(format_value(28.0), "28");
        assert_eq!(format_value(23307.846077), "23307.846");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(f64::NAN), "NaN");
    }
}
