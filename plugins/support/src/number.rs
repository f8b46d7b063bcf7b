//! Number parsing and formatting used by the metric-name rules.

/// Parses a number written as text (`"42"`, `" 1.5e3 "`), or `None` when the
/// text is not a finite number. `inf`/`NaN`, which Rust's parser accepts,
/// are refused: no check can use them.
pub fn parse_finite(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Drops the trailing zeros of a decimal written as text, then a dangling
/// point, so that percentiles read the same whichever tool printed them:
/// `"99.000000"` → `"99"`, `"99.900000"` → `"99.9"`, `"50.0"` → `"50"`.
/// Text without a point is returned unchanged (`"100"` stays `"100"`).
pub fn trim_decimal(text: &str) -> &str {
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_percentile_labels() {
        assert_eq!(trim_decimal("99.000000"), "99");
        assert_eq!(trim_decimal("99.900000"), "99.9");
        assert_eq!(trim_decimal("99.990000"), "99.99");
        assert_eq!(trim_decimal("50.0"), "50");
        assert_eq!(trim_decimal("100"), "100");
        assert_eq!(trim_decimal("0.000"), "0");
    }

    #[test]
    fn parses_only_finite_numbers() {
        assert_eq!(parse_finite(" 42 "), Some(42.0));
        assert_eq!(parse_finite("1.5e3"), Some(1500.0));
        assert_eq!(parse_finite("inf"), None);
        assert_eq!(parse_finite("NaN"), None);
        assert_eq!(parse_finite("0.15.06"), None);
        assert_eq!(parse_finite(""), None);
    }
}
