//! The text form's parser.

use super::Check;

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
