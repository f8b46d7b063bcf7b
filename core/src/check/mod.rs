//! Metric checks and their text form.
//!
//! Text form (the CLI's `--check` and payload manifests' default checks):
//! - `name>=N` — Min (inclusive)
//! - `name<=N` — Max (inclusive)
//! - `LO<=name<=HI` — Range (inclusive)
//! - `name` or `exists(name)` — Exists
//! - `exit==N` — ExitCodeEq
//!
//! Evaluation: ExitCodeEq first (its failure carries the last KiB of stderr);
//! a missing metric fails loudly; NaN fails Min, Max and Range.

use serde::{Deserialize, Serialize};

use crate::metrics::{find, format_value, Metric};

mod parse;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    Min { metric: String, min: f64 },
    Max { metric: String, max: f64 },
    Range { metric: String, min: f64, max: f64 },
    Exists { metric: String },
    ExitCodeEq { code: i32 },
}

/// How much of stderr an exit-code failure carries.
pub const STDERR_TAIL: usize = 1024;

impl Check {
    /// The metric this check reads, if any.
    pub fn metric(&self) -> Option<&str> {
        match self {
            Check::Min { metric, .. }
            | Check::Max { metric, .. }
            | Check::Range { metric, .. }
            | Check::Exists { metric } => Some(metric),
            Check::ExitCodeEq { .. } => None,
        }
    }
}

// Bounds print exactly (`{}` is the shortest text that parses back), so
// parse(display(c)) == c; format_value would round them to 3 decimals.
impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Min { metric, min } => write!(f, "{metric}>={min}"),
            Check::Max { metric, max } => write!(f, "{metric}<={max}"),
            Check::Range { metric, min, max } => write!(f, "{min}<={metric}<={max}"),
            Check::Exists { metric } => write!(f, "exists({metric})"),
            Check::ExitCodeEq { code } => write!(f, "exit=={code}"),
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check in its text form.
    pub check: String,
    pub passed: bool,
    /// The value that was compared (metric value or exit code).
    // No skip_serializing_if here or below: postcard is not self-describing.
    pub value: Option<f64>,
    /// Why it failed, for people: names the metric, its value and the bound.
    pub detail: String,
}

/// Evaluates `checks`, exit-code checks first. `exit_code` is `None` when the
/// payload was killed by a signal or never ran.
pub fn evaluate(
    checks: &[Check],
    metrics: &[Metric],
    exit_code: Option<i32>,
    stderr: &[u8],
) -> Vec<CheckResult> {
    let (exits, others): (Vec<&Check>, Vec<&Check>) =
        checks.iter().partition(|c| matches!(c, Check::ExitCodeEq { .. }));
    exits.into_iter().chain(others).map(|c| evaluate_one(c, metrics, exit_code, stderr)).collect()
}

fn evaluate_one(
    check: &Check,
    metrics: &[Metric],
    exit_code: Option<i32>,
    stderr: &[u8],
) -> CheckResult {
    let result = |passed: bool, value: Option<f64>, detail: String| CheckResult {
        check: check.to_string(),
        passed,
        value,
        detail,
    };
    if let Check::ExitCodeEq { code } = check {
        return match exit_code {
            Some(c) if c == *code => result(true, Some(c as f64), String::new()),
            other => {
                let got = other
                    .map_or("no exit code (killed by a signal or never ran)".to_string(), |c| {
                        format!("exit code {c}")
                    });
                result(
                    false,
                    other.map(f64::from),
                    format!(
                        "expected exit code {code}, got {got}; stderr tail:\n{}",
                        stderr_tail(stderr)
                    ),
                )
            }
        };
    }
    let name = check.metric().expect("non-exit checks read a metric");
    let Some(m) = find(metrics, name) else {
        let known: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).take(12).collect();
        return result(
            false,
            None,
            format!(
                "metric `{name}` is missing (have: {})",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            ),
        );
    };
    let v = m.value;
    let shown = format!(
        "{name} = {}{}",
        format_value(v),
        if m.unit.is_empty() { String::new() } else { format!(" {}", m.unit) }
    );
    let (ok, bound) = match check {
        Check::Exists { .. } => (true, String::new()),
        Check::Min { min, .. } => (v >= *min, format!("must be >= {min}")),
        Check::Max { max, .. } => (v <= *max, format!("must be <= {max}")),
        Check::Range { min, max, .. } => {
            (v >= *min && v <= *max, format!("must be in [{min}, {max}]"))
        }
        Check::ExitCodeEq { .. } => unreachable!(),
    };
    // NaN compares false everywhere, so it fails every bound, as it should.
    if ok {
        result(true, Some(v), String::new())
    } else {
        result(false, Some(v), format!("{shown}, {bound}"))
    }
}

/// The last [`STDERR_TAIL`] bytes of stderr, lossily decoded.
pub fn stderr_tail(stderr: &[u8]) -> String {
    let start = stderr.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&stderr[start..]).into_owned()
}

#[cfg(test)]
mod tests;
