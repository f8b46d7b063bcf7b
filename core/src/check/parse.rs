//! The text form's parser: `exit==N`, or a subject with an optional inclusive bound.

use super::{Aggregate, Bound, Check};

/// Every accepted form, for the one message a bad expression gets.
const FORMS: &str = "expected `name>=N`, `name<=N`, `LO<=name<=HI`, `name`, `exists(name)`, \
     `exit==N`, or, over the metrics a glob matches (`*` matches any run of characters): \
     `exists(glob)`, or `all(glob)`, `count(glob)`, `sum(glob)`, `max(glob)` or `min(glob)` \
     with `>=N`, `<=N` or as `LO<=…<=HI`";

/// What the part of a check beside its bound names.
enum Subject<'a> {
    Metric(&'a str),
    /// `exists(glob)`.
    Exists(&'a str),
    Family(Aggregate, &'a str),
}

impl Check {
    /// Parses the text form; the error says what was wrong and what is accepted.
    pub fn parse(text: &str) -> Result<Check, String> {
        parse(text.trim()).map_err(|why| format!("bad check `{text}`: {why}; {FORMS}"))
    }
}

fn parse(t: &str) -> Result<Check, String> {
    if t.is_empty() {
        return Err("empty expression".into());
    }
    if let Some(code) =
        t.strip_prefix("exit").map(str::trim_start).and_then(|r| r.strip_prefix("=="))
    {
        let code = code.trim().parse::<i32>().map_err(|_| "the exit code must be an integer")?;
        return Ok(Check::ExitCodeEq { code });
    }
    // Names and globs hold no `<`, `>` or `=`, so splitting on the operators is safe.
    let (subject, bound) = match t.split("<=").collect::<Vec<_>>().as_slice() {
        [lo, s, hi] => {
            let (min, max) = (number(lo)?, number(hi)?);
            if min > max {
                return Err(format!("the range is empty ({min} > {max})"));
            }
            (*s, Some(Bound::Within { min, max }))
        }
        [s, hi] => (*s, Some(Bound::AtMost(number(hi)?))),
        [single] => match single.split_once(">=") {
            Some((s, lo)) => (s, Some(Bound::AtLeast(number(lo)?))),
            None if single.contains(['<', '>', '=']) => {
                return Err("only inclusive `<=`, `>=` (and `exit==`) are supported".into())
            }
            None => (*single, None),
        },
        _ => return Err("too many `<=`".into()),
    };
    Ok(match (parse_subject(subject)?, bound) {
        (Subject::Metric(metric), None) | (Subject::Exists(metric), None) => {
            Check::Exists { metric: metric.into() }
        }
        (Subject::Metric(metric), Some(Bound::AtLeast(min))) => {
            Check::Min { metric: metric.into(), min }
        }
        (Subject::Metric(metric), Some(Bound::AtMost(max))) => {
            Check::Max { metric: metric.into(), max }
        }
        (Subject::Metric(metric), Some(Bound::Within { min, max })) => {
            Check::Range { metric: metric.into(), min, max }
        }
        (Subject::Exists(_), Some(_)) => {
            return Err("`exists(…)` takes no bound; `count(…)` bounds how many match".into())
        }
        (Subject::Family(aggregate, _), None) => {
            return Err(format!("`{}(…)` needs a bound", aggregate.name()))
        }
        (Subject::Family(aggregate, glob), Some(bound)) => {
            Check::Family { aggregate, glob: glob.into(), bound }
        }
    })
}

fn parse_subject(s: &str) -> Result<Subject<'_>, String> {
    let s = s.trim();
    let Some((function, rest)) = s.split_once('(') else {
        // A `*` only means "any run" inside a function, where it was asked for.
        if s.contains('*') {
            return Err(format!(
                "`{s}` holds a `*`, but globs only go inside exists(…), all(…), count(…), \
                 sum(…), max(…) or min(…)"
            ));
        }
        return name(s).map(Subject::Metric);
    };
    let inner = rest.strip_suffix(')').ok_or_else(|| format!("`{s}` does not end with `)`"))?;
    let glob = name(inner)?;
    match function.trim() {
        "exists" => Ok(Subject::Exists(glob)),
        f => Aggregate::EVERY
            .into_iter()
            .find(|a| a.name() == f)
            .map(|a| Subject::Family(a, glob))
            .ok_or_else(|| format!("`{f}` is not a function (exists, all, count, sum, max, min)")),
    }
}

fn number(s: &str) -> Result<f64, String> {
    let s = s.trim();
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a finite number")),
    }
}

/// A metric name or a glob: the caller decides whether a `*` is allowed.
fn name(s: &str) -> Result<&str, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("the metric name is empty".into());
    }
    if s.contains(['<', '>', '=', '(', ')']) || s.chars().any(char::is_whitespace) {
        return Err(format!("`{s}` is not a metric name"));
    }
    Ok(s)
}
