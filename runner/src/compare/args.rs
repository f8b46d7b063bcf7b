//! `ktstr compare`'s command line, and its `--gate` thresholds.

use std::path::PathBuf;

use clap::Args;

use crate::usage::UsageError;

pub const COMPARE_HELP: &str = "\
Runs `ktstr run RUN_ARGS A` and `ktstr run RUN_ARGS B` --runs times each,
interleaved (A B A B…) so drift hits both sides, on one kernel, in parallel
where the host holds them (as `ktstr gauntlet` does). Per metric: each side's
median and quartiles over its passing runs (failed runs are shown and left
out), the difference with a 95% bootstrap interval, the two-sided
Mann-Whitney U p-value, and a verdict by the metric's polarity (its plugin's
hint): better, worse, or no significant difference (p < 0.05 and an interval
that excludes zero); neutral metrics are shown, never judged.

Writes compare.json, compare.svg (box plots of the judged metrics) and every
run's directory under --out DIR (default $KTSTR_CACHE_DIR/runs/compare-*).

EXIT CODES:
    0  compared (no --gate failed)
    1  a --gate failed: a significant regression beyond its threshold, or a
       gated metric that could not be judged
    2  usage error
    5  host error
  130  interrupted (the running runs are stopped; their directories are kept)

EXAMPLES:
    ktstr compare --a '--scheduler eevdf' --b '--scheduler scx_simple' --runs 5 -- --plugin stress-ng
    ktstr compare --a '--topology 1n1l1c1t' --b '--topology 1n1l4c1t' -- --plugin stress-ng --arg=--cpu --arg={nr_cpus}
    ktstr compare --noise-check --a '--scheduler eevdf' --b '--scheduler scx_simple' -- --plugin workers
    ktstr compare --from ~/baseline --from ./today --gate 'bogo_ops_per_s:-5%'";

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The `ktstr run` arguments of side A (one shell-quoted string).
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true, required_unless_present = "from")]
    pub a: Option<String>,
    /// The `ktstr run` arguments of side B.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true, required_unless_present = "from")]
    pub b: Option<String>,
    /// Runs per side.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Also run A a second time, interleaved, and report A against A: the
    /// noise floor under which a difference means nothing here.
    #[arg(long, conflicts_with = "from")]
    pub noise_check: bool,
    /// At most this many runs at once [default: as many as the host holds].
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Compare saved results instead: the result.json files under DIR (a
    /// gauntlet's or a compare's --out, or runs' artifacts); give it twice, A then B.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["a", "b"])]
    pub from: Vec<PathBuf>,
    /// Fail (exit 1) on a significant regression beyond a threshold:
    /// `NAME:5%` (repeatable). For a neutral metric the sign says which way
    /// is a regression (`NAME:+5%` a rise, `NAME:-5%` a fall).
    #[arg(long = "gate", value_name = "NAME:PCT")]
    pub gates: Vec<String>,
    /// The directory for compare.json, compare.svg and the runs.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write the comparison as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// A disk both sides get (repeatable; `ktstr run --disk`).
    #[arg(long = "disk", value_name = "SPEC", value_parser = crate::gauntlet::args::parse_disk)]
    pub disks: Vec<String>,
    /// The `ktstr run` arguments both sides share (after `--`).
    #[arg(last = true, value_name = "RUN_ARGS")]
    pub common: Vec<String>,
}

/// `NAME:[+|-]PCT%`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    pub metric: String,
    /// The allowed regression, a fraction (0.05 for 5%).
    pub allowed: f64,
    /// For a neutral metric: +1 when a rise is the regression, -1 a fall.
    pub sign: Option<f64>,
}

impl std::str::FromStr for Gate {
    type Err = UsageError;

    fn from_str(s: &str) -> Result<Gate, UsageError> {
        let bad =
            || UsageError(format!("--gate {s}: expected NAME:PCT%, e.g. wake_latency_p99_us:+5%"));
        let (metric, pct) = s.rsplit_once(':').ok_or_else(bad)?;
        let pct = pct.trim().strip_suffix('%').ok_or_else(bad)?;
        let sign = match pct.chars().next() {
            Some('+') => Some(1.0),
            Some('-') => Some(-1.0),
            _ => None,
        };
        let value: f64 = pct.trim_start_matches(['+', '-']).parse().map_err(|_| bad())?;
        if metric.trim().is_empty() || !value.is_finite() || value < 0.0 {
            return Err(bad());
        }
        Ok(Gate { metric: metric.trim().into(), allowed: value / 100.0, sign })
    }
}

/// Splits a side's argument string as a shell would.
pub fn side_args(flag: &str, s: &str) -> Result<Vec<String>, UsageError> {
    shlex::split(s).ok_or_else(|| UsageError(format!("{flag} {s:?}: unbalanced quotes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_parse_with_and_without_a_sign() {
        let g: Gate = "wake_latency_p99_us:+5%".parse().unwrap();
        assert_eq!(
            g,
            Gate { metric: "wake_latency_p99_us".into(), allowed: 0.05, sign: Some(1.0) }
        );
        assert_eq!("ops:10%".parse::<Gate>().unwrap().sign, None);
        assert_eq!("a:b:-2.5%".parse::<Gate>().unwrap().metric, "a:b");
        for bad in ["ops", "ops:5", ":5%", "ops:x%", "ops:-%"] {
            assert!(bad.parse::<Gate>().is_err(), "{bad}");
        }
        assert_eq!(
            side_args("--a", "--scheduler 'scx simple'").unwrap(),
            ["--scheduler", "scx simple"]
        );
        assert!(side_args("--a", "'open").is_err());
    }
}
