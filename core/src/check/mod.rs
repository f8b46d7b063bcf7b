//! Metric checks and their text form.
//!
//! Text form (the CLI's `--check` and payload manifests' default checks):
//! - `name>=N` — Min (inclusive)
//! - `name<=N` — Max (inclusive)
//! - `LO<=name<=HI` — Range (inclusive)
//! - `name` or `exists(name)` — Exists
//! - `exit==N` — ExitCodeEq
//!
//! Families of metrics, named by a glob where `*` matches any run of characters
//! (`/` included; see [`glob_matches`]):
//! - `exists(glob)` — Exists: at least one metric matches
//! - `all(glob)`, `count(glob)`, `sum(glob)`, `max(glob)`, `min(glob)`, each with
//!   `>=N`, `<=N` or as `LO<=…<=HI` — Family: every matching metric meets the
//!   bound; how many match; their sum; the largest; the smallest
//!
//! A `*` anywhere else is an error, so a typo never silently becomes a glob.
//!
//! Evaluation: ExitCodeEq first; a missing metric fails loudly, and so does a
//! glob that matches nothing, except in `count`, which is then 0; NaN fails
//! every bound. Every failure's detail ends with the [`Evidence`]: the
//! extractor's notes, then the last KiB of stderr.

use serde::{Deserialize, Serialize};

use crate::metrics::{find, format_value, Metric};

mod family;
mod parse;

pub use family::glob_matches;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    Min {
        metric: String,
        min: f64,
    },
    Max {
        metric: String,
        max: f64,
    },
    Range {
        metric: String,
        min: f64,
        max: f64,
    },
    /// `metric` may be a glob (from `exists(glob)`): then at least one metric must match.
    Exists {
        metric: String,
    },
    ExitCodeEq {
        code: i32,
    },
    /// `aggregate` over the metrics whose names match `glob`, held to `bound`.
    Family {
        aggregate: Aggregate,
        glob: String,
        bound: Bound,
    },
}

/// What a [`Check::Family`] takes of the metrics that match its glob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Every matching metric must meet the bound.
    All,
    /// How many metrics match (0 is a value, not a failure).
    Count,
    /// The sum of their values.
    Sum,
    /// The largest value.
    Max,
    /// The smallest value.
    Min,
}

impl Aggregate {
    pub const EVERY: [Aggregate; 5] =
        [Aggregate::All, Aggregate::Count, Aggregate::Sum, Aggregate::Max, Aggregate::Min];

    /// Its name in the text form: `all`, `count`, `sum`, `max`, `min`.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::All => "all",
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
        }
    }
}

/// An inclusive bound on a value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    AtLeast(f64),
    AtMost(f64),
    /// `min <= max`, as the parser ensures.
    Within {
        min: f64,
        max: f64,
    },
}

impl Bound {
    /// Whether `v` is within the bound; NaN never is.
    pub fn holds(self, v: f64) -> bool {
        match self {
            Bound::AtLeast(min) => v >= min,
            Bound::AtMost(max) => v <= max,
            Bound::Within { min, max } => v >= min && v <= max,
        }
    }

    /// The bound for people: `must be >= 1`.
    pub fn describe(self) -> String {
        match self {
            Bound::AtLeast(min) => format!("must be >= {min}"),
            Bound::AtMost(max) => format!("must be <= {max}"),
            Bound::Within { min, max } => format!("must be in [{min}, {max}]"),
        }
    }

    // Numbers print exactly (`{}` is the shortest text that parses back), so
    // parse(display(c)) == c; format_value would round them to 3 decimals.
    fn write_around(self, f: &mut std::fmt::Formatter<'_>, subject: &str) -> std::fmt::Result {
        match self {
            Bound::AtLeast(min) => write!(f, "{subject}>={min}"),
            Bound::AtMost(max) => write!(f, "{subject}<={max}"),
            Bound::Within { min, max } => write!(f, "{min}<={subject}<={max}"),
        }
    }
}

/// How much of stderr a failed check carries.
pub const STDERR_TAIL: usize = 1024;

impl Check {
    /// The metric this check reads, if any. It may be a glob (`Family`, and
    /// `Exists` from `exists(glob)`): compare names with [`glob_matches`].
    pub fn metric(&self) -> Option<&str> {
        match self {
            Check::Min { metric, .. }
            | Check::Max { metric, .. }
            | Check::Range { metric, .. }
            | Check::Exists { metric } => Some(metric),
            Check::Family { glob, .. } => Some(glob),
            Check::ExitCodeEq { .. } => None,
        }
    }

    /// The bound this check holds its value to, if it has one.
    pub fn bound(&self) -> Option<Bound> {
        match *self {
            Check::Min { min, .. } => Some(Bound::AtLeast(min)),
            Check::Max { max, .. } => Some(Bound::AtMost(max)),
            Check::Range { min, max, .. } => Some(Bound::Within { min, max }),
            Check::Family { bound, .. } => Some(bound),
            Check::Exists { .. } | Check::ExitCodeEq { .. } => None,
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Exists { metric } => write!(f, "exists({metric})"),
            Check::ExitCodeEq { code } => write!(f, "exit=={code}"),
            Check::Family { aggregate, glob, bound } => {
                bound.write_around(f, &format!("{}({glob})", aggregate.name()))
            }
            Check::Min { metric, .. } | Check::Max { metric, .. } | Check::Range { metric, .. } => {
                self.bound().expect("bounded checks have a bound").write_around(f, metric)
            }
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check in its text form.
    pub check: String,
    pub passed: bool,
    /// The value that was compared: the metric's, the aggregate, the number of
    /// matches (`count`, `exists(glob)`) or the exit code. `all(…)` has the
    /// first offender's when it fails and none when it passes.
    // No skip_serializing_if here or below: postcard is not self-describing.
    pub value: Option<f64>,
    /// Why it failed, for people: names the metric, its value and the bound;
    /// then the [`Evidence`]. Empty when it passed.
    pub detail: String,
}

/// What a failed check shows besides its own reason, so that a failure can be
/// understood from the report alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// The payload's stderr; failures carry its last [`STDERR_TAIL`] bytes.
    pub stderr: &'a [u8],
    /// Lines the extractor returned to explain its metrics (say, a failing
    /// test's own error line).
    pub notes: &'a [String],
}

impl Evidence<'_> {
    /// What a failure's detail ends with: a line per note, then the stderr
    /// tail; empty when there is neither.
    fn appendix(&self) -> String {
        let mut s = String::new();
        for note in self.notes.iter().map(|n| n.trim_end()).filter(|n| !n.is_empty()) {
            s.push('\n');
            s.push_str(note);
        }
        let tail = stderr_tail(self.stderr);
        if !tail.trim().is_empty() {
            s.push_str("\nstderr tail:\n");
            s.push_str(tail.trim_end());
        }
        s
    }
}

/// [`evaluate_with`], with `stderr` as the only evidence (no notes).
pub fn evaluate(
    checks: &[Check],
    metrics: &[Metric],
    exit_code: Option<i32>,
    stderr: &[u8],
) -> Vec<CheckResult> {
    evaluate_with(checks, metrics, exit_code, &Evidence { stderr, notes: &[] })
}

/// Evaluates `checks`, exit-code checks first; every failure carries the
/// `evidence`. `exit_code` is `None` when the payload was killed by a signal
/// or never ran.
pub fn evaluate_with(
    checks: &[Check],
    metrics: &[Metric],
    exit_code: Option<i32>,
    evidence: &Evidence,
) -> Vec<CheckResult> {
    let appendix = evidence.appendix();
    let (exits, others): (Vec<&Check>, Vec<&Check>) =
        checks.iter().partition(|c| matches!(c, Check::ExitCodeEq { .. }));
    exits
        .into_iter()
        .chain(others)
        .map(|c| {
            let Outcome { passed, value, mut detail } = evaluate_one(c, metrics, exit_code);
            if !passed {
                detail.push_str(&appendix);
            }
            CheckResult { check: c.to_string(), passed, value, detail }
        })
        .collect()
}

/// A [`CheckResult`] short of its check text.
struct Outcome {
    passed: bool,
    value: Option<f64>,
    detail: String,
}

impl Outcome {
    fn pass(value: Option<f64>) -> Outcome {
        Outcome { passed: true, value, detail: String::new() }
    }

    fn fail(value: Option<f64>, detail: String) -> Outcome {
        Outcome { passed: false, value, detail }
    }

    /// Holds `v` to `bound`; `shown` names the value for the failure.
    fn judge(bound: Bound, v: f64, shown: String) -> Outcome {
        // NaN compares false everywhere, so it fails every bound, as it should.
        if bound.holds(v) {
            Outcome::pass(Some(v))
        } else {
            Outcome::fail(Some(v), format!("{shown}, {}", bound.describe()))
        }
    }
}

fn evaluate_one(check: &Check, metrics: &[Metric], exit_code: Option<i32>) -> Outcome {
    match check {
        Check::ExitCodeEq { code } => match exit_code {
            Some(c) if c == *code => Outcome::pass(Some(c as f64)),
            other => {
                let got = other
                    .map_or("no exit code (killed by a signal or never ran)".to_string(), |c| {
                        format!("exit code {c}")
                    });
                Outcome::fail(other.map(f64::from), format!("expected exit code {code}, got {got}"))
            }
        },
        Check::Exists { metric } if metric.contains('*') => family::exists(metric, metrics),
        Check::Family { aggregate, glob, bound } => {
            family::evaluate(*aggregate, glob, *bound, metrics)
        }
        _ => {
            let name = check.metric().expect("the other checks read one metric");
            let Some(m) = find(metrics, name) else {
                return Outcome::fail(
                    None,
                    format!("metric `{name}` is missing (have: {})", some_names(metrics.iter())),
                );
            };
            match check.bound() {
                Some(bound) => Outcome::judge(bound, m.value, shown(m)),
                None => Outcome::pass(Some(m.value)),
            }
        }
    }
}

/// Some of these metrics' names, for a failure that did not find what it wanted.
fn some_names<'a>(mut metrics: impl Iterator<Item = &'a Metric>) -> String {
    const SHOWN: usize = 12;
    let names: Vec<&str> = metrics.by_ref().take(SHOWN).map(|m| m.name.as_str()).collect();
    match (names.is_empty(), metrics.count()) {
        (true, _) => "none".into(),
        (false, 0) => names.join(", "),
        (false, more) => format!("{}, and {more} more", names.join(", ")),
    }
}

/// `name = value unit`, as failures show a metric.
fn shown(m: &Metric) -> String {
    let unit = if m.unit.is_empty() { String::new() } else { format!(" {}", m.unit) };
    format!("{} = {}{unit}", m.name, format_value(m.value))
}

/// The last [`STDERR_TAIL`] bytes of stderr, lossily decoded.
pub fn stderr_tail(stderr: &[u8]) -> String {
    let start = stderr.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&stderr[start..]).into_owned()
}

#[cfg(test)]
mod tests;
