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
    /// Parses the text form; the error says what was wrong and what is accepted.
    pub fn parse(text: &str) -> Result<Check, String> {
        let t = text.trim();
        let bad = |why: &str| {
            format!(
                "bad check `{text}`: {why}; expected `name>=N`, `name<=N`, `LO<=name<=HI`, `name`, \
                 `exists(name)` or `exit==N`"
            )
        };
        if t.is_empty() {
            return Err(bad("empty expression"));
        }
        if let Some(inner) = t.strip_prefix("exists(").and_then(|r| r.strip_suffix(')')) {
            return Ok(Check::Exists { metric: metric_name(inner).map_err(|e| bad(&e))? });
        }
        if let Some(code) =
            t.strip_prefix("exit").map(str::trim_start).and_then(|r| r.strip_prefix("=="))
        {
            let code =
                code.trim().parse::<i32>().map_err(|_| bad("the exit code must be an integer"))?;
            return Ok(Check::ExitCodeEq { code });
        }
        let parts: Vec<&str> = t.split("<=").collect();
        match parts.as_slice() {
            [lo, name, hi] => {
                let (min, max) =
                    (number(lo).map_err(|e| bad(&e))?, number(hi).map_err(|e| bad(&e))?);
                if min > max {
                    return Err(bad(&format!("the range is empty ({min} > {max})")));
                }
                Ok(Check::Range { metric: metric_name(name).map_err(|e| bad(&e))?, min, max })
            }
            [name, hi] => Ok(Check::Max {
                metric: metric_name(name).map_err(|e| bad(&e))?,
                max: number(hi).map_err(|e| bad(&e))?,
            }),
            [single] => match single.split_once(">=") {
                Some((name, lo)) => Ok(Check::Min {
                    metric: metric_name(name).map_err(|e| bad(&e))?,
                    min: number(lo).map_err(|e| bad(&e))?,
                }),
                None if single.contains(['<', '>', '=']) => {
                    Err(bad("only inclusive `<=`, `>=` (and `exit==`) are supported"))
                }
                None => Ok(Check::Exists { metric: metric_name(single).map_err(|e| bad(&e))? }),
            },
            _ => Err(bad("too many `<=`")),
        }
    }

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

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Min { metric, min } => write!(f, "{metric}>={}", format_value(*min)),
            Check::Max { metric, max } => write!(f, "{metric}<={}", format_value(*max)),
            Check::Range { metric, min, max } => {
                write!(f, "{}<={metric}<={}", format_value(*min), format_value(*max))
            }
            Check::Exists { metric } => write!(f, "exists({metric})"),
            Check::ExitCodeEq { code } => write!(f, "exit=={code}"),
        }
    }
}

fn number(s: &str) -> Result<f64, String> {
    let s = s.trim();
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a finite number")),
    }
}

fn metric_name(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("the metric name is empty".into());
    }
    if s.contains(['<', '>', '=', '(', ')']) || s.chars().any(char::is_whitespace) {
        return Err(format!("`{s}` is not a metric name"));
    }
    Ok(s.to_string())
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
        Check::Min { min, .. } => (v >= *min, format!("must be >= {}", format_value(*min))),
        Check::Max { max, .. } => (v <= *max, format!("must be <= {}", format_value(*max))),
        Check::Range { min, max, .. } => (
            v >= *min && v <= *max,
            format!("must be in [{}, {}]", format_value(*min), format_value(*max)),
        ),
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
mod tests {
    use super::*;
    use crate::metrics::Stream;

    fn m(name: &str, value: f64) -> Metric {
        Metric { name: name.into(), value, unit: "us".into(), stream: Stream::Stdout }
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            Check::parse("wakeup_latency_p99<=5000").unwrap(),
            Check::Max { metric: "wakeup_latency_p99".into(), max: 5000.0 }
        );
        assert_eq!(
            Check::parse(" iops >= 1000 ").unwrap(),
            Check::Min { metric: "iops".into(), min: 1000.0 }
        );
        assert_eq!(
            Check::parse("1<=int/x.y<=2.5").unwrap(),
            Check::Range { metric: "int/x.y".into(), min: 1.0, max: 2.5 }
        );
        assert_eq!(Check::parse("exit==0").unwrap(), Check::ExitCodeEq { code: 0 });
        assert_eq!(Check::parse("exit == 3").unwrap(), Check::ExitCodeEq { code: 3 });
        assert_eq!(
            Check::parse("exists(read/iops)").unwrap(),
            Check::Exists { metric: "read/iops".into() }
        );
        assert_eq!(
            Check::parse("read/iops").unwrap(),
            Check::Exists { metric: "read/iops".into() }
        );
    }

    #[test]
    fn text_form_round_trips() {
        for t in ["a>=1", "a<=2.5", "1<=a<=2", "exists(a)", "exit==0"] {
            assert_eq!(Check::parse(t).unwrap().to_string(), t);
        }
    }

    #[test]
    fn rejects_bad_expressions_with_a_reason() {
        for (t, why) in [
            ("", "empty"),
            ("a<5", "inclusive"),
            ("a>=", "not a finite number"),
            ("a>=x", "not a finite number"),
            ("5<=a<=1", "range is empty"),
            ("exit==zero", "integer"),
            ("a<=1<=2<=3", "too many"),
            ("a>=nan", "finite"),
            ("<=5", "empty"),
        ] {
            let err = Check::parse(t).unwrap_err();
            assert!(err.contains(why), "{t}: {err}");
            assert!(err.contains("expected"), "{t}: {err}");
        }
    }

    #[test]
    fn bounds_are_inclusive_and_nan_fails() {
        let ms = [m("x", 5.0), m("n", f64::NAN)];
        let checks: Vec<Check> =
            ["x>=5", "x<=5", "5<=x<=5", "n>=0", "n<=0", "0<=n<=1", "exists(n)"]
                .iter()
                .map(|t| Check::parse(t).unwrap())
                .collect();
        let passed: Vec<bool> =
            evaluate(&checks, &ms, Some(0), b"").iter().map(|r| r.passed).collect();
        assert_eq!(passed, [true, true, true, false, false, false, true]);
    }

    #[test]
    fn failure_names_metric_value_and_bound() {
        let r = &evaluate(&[Check::parse("x<=4").unwrap()], &[m("x", 5.0)], Some(0), b"")[0];
        assert!(!r.passed);
        assert_eq!(r.detail, "x = 5 us, must be <= 4");
    }

    #[test]
    fn missing_metric_fails_loudly() {
        let r = &evaluate(&[Check::parse("y>=1").unwrap()], &[m("x", 5.0)], Some(0), b"")[0];
        assert!(!r.passed);
        assert!(r.detail.contains("`y` is missing") && r.detail.contains("x"), "{}", r.detail);
    }

    #[test]
    fn exit_code_goes_first_and_carries_stderr_tail() {
        let stderr = [b"x".repeat(2000), b"the real reason".to_vec()].concat();
        let checks = [Check::parse("x>=1").unwrap(), Check::parse("exit==0").unwrap()];
        let rs = evaluate(&checks, &[m("x", 5.0)], Some(2), &stderr);
        assert_eq!(rs[0].check, "exit==0");
        assert!(!rs[0].passed);
        assert!(
            rs[0].detail.contains("got exit code 2") && rs[0].detail.ends_with("the real reason")
        );
        assert!(rs[0].detail.len() < STDERR_TAIL + 200);
        assert!(rs[1].passed);
        let killed = evaluate(&[Check::ExitCodeEq { code: 0 }], &[], None, b"");
        assert!(killed[0].detail.contains("killed by a signal"));
    }
}
