//! Checks over families of metrics, named by a glob.

use super::{shown, some_names, Aggregate, Bound, Outcome};
use crate::metrics::{format_value, Metric};

/// How many offending metrics a failed `all(…)` names.
const OFFENDERS_SHOWN: usize = 5;

/// Whether `name` matches `pattern`, where `*` matches any run of characters
/// (`/` included, and the empty run) and every other character only itself.
///
/// A pattern without `*` matches just the name it spells, so hints can pass any
/// check's [`Check::metric`](super::Check::metric), glob or not, to tell which
/// metrics the check reads.
///
/// ```
/// use ktstr_core::check::glob_matches;
/// assert!(glob_matches("test/*", "test/a/b"));
/// assert!(glob_matches("*_p99", "wakeup_p99"));
/// assert!(!glob_matches("test/*", "other/a"));
/// assert!(glob_matches("iops", "iops") && !glob_matches("iops", "iops2"));
/// ```
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(rest) = name.strip_prefix(first) else { return false };
    let mut middle: Vec<&str> = parts.collect();
    let Some(last) = middle.pop() else {
        return rest.is_empty(); // no `*`: the exact name
    };
    // Stripping both ends first keeps the middle parts from overlapping them.
    let Some(mut between) = rest.strip_suffix(last) else { return false };
    // Taking each part at its first occurrence leaves the most room for the next.
    for part in middle {
        match between.find(part) {
            Some(i) => between = &between[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// `exists(glob)`: at least one metric matches; the value is how many do.
pub(super) fn exists(glob: &str, metrics: &[Metric]) -> Outcome {
    match matching(glob, metrics).len() {
        0 => no_match(glob, metrics),
        n => Outcome::pass(Some(n as f64)),
    }
}

pub(super) fn evaluate(
    aggregate: Aggregate,
    glob: &str,
    bound: Bound,
    metrics: &[Metric],
) -> Outcome {
    let matched = matching(glob, metrics);
    let subject = format!("{}({glob})", aggregate.name());
    if aggregate == Aggregate::Count {
        let n = matched.len() as f64;
        let names = if matched.is_empty() {
            format!("no metric matches; have: {}", some_names(metrics.iter()))
        } else {
            some_names(matched.iter().copied())
        };
        return Outcome::judge(bound, n, format!("{subject} = {n} ({names})"));
    }
    // Every other aggregate of nothing would pass or fail vacuously: say so instead.
    if matched.is_empty() {
        return no_match(glob, metrics);
    }
    match aggregate {
        Aggregate::All => all(glob, bound, &matched),
        Aggregate::Sum => {
            let v: f64 = matched.iter().map(|m| m.value).sum();
            let unit = shared_unit(&matched).map(|u| format!(" {u}")).unwrap_or_default();
            let n = matched.len();
            Outcome::judge(bound, v, format!("{subject} = {}{unit} over {n}", format_value(v)))
        }
        Aggregate::Max | Aggregate::Min => {
            let m = extreme(&matched, aggregate == Aggregate::Max);
            Outcome::judge(bound, m.value, format!("{subject} is {}", shown(m)))
        }
        Aggregate::Count => unreachable!("count is judged above"),
    }
}

fn matching<'a>(glob: &str, metrics: &'a [Metric]) -> Vec<&'a Metric> {
    metrics.iter().filter(|m| glob_matches(glob, &m.name)).collect()
}

fn no_match(glob: &str, metrics: &[Metric]) -> Outcome {
    Outcome::fail(
        None,
        format!("no metric matches `{glob}` (have: {})", some_names(metrics.iter())),
    )
}

/// Every match must meet the bound; a failure names the first offenders.
fn all(glob: &str, bound: Bound, matched: &[&Metric]) -> Outcome {
    let offenders: Vec<&Metric> =
        matched.iter().copied().filter(|m| !bound.holds(m.value)).collect();
    let Some(first) = offenders.first() else { return Outcome::pass(None) };
    let mut named: Vec<String> = offenders.iter().take(OFFENDERS_SHOWN).map(|m| shown(m)).collect();
    if offenders.len() > OFFENDERS_SHOWN {
        named.push(format!("and {} more", offenders.len() - OFFENDERS_SHOWN));
    }
    Outcome::fail(
        Some(first.value),
        format!(
            "{} of {} metrics matching `{glob}` break the bound ({}): {}",
            offenders.len(),
            matched.len(),
            bound.describe(),
            named.join(", ")
        ),
    )
}

/// The largest (or smallest) match; a NaN wins, so that it fails the bound.
fn extreme<'a>(matched: &[&'a Metric], largest: bool) -> &'a Metric {
    let beats = |b: f64, a: f64| if largest { b > a } else { b < a };
    matched
        .iter()
        .copied()
        .reduce(|a, b| {
            if !a.value.is_nan() && (b.value.is_nan() || beats(b.value, a.value)) {
                b
            } else {
                a
            }
        })
        .expect("callers pass at least one match")
}

/// The unit every match shares, if they share a known one.
fn shared_unit<'a>(matched: &[&'a Metric]) -> Option<&'a str> {
    let unit = matched.first()?.unit.as_str();
    (!unit.is_empty() && matched.iter().all(|m| m.unit == unit)).then_some(unit)
}
