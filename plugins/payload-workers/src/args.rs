//! The workers' command line.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    /// Burns CPU; one work unit per loop of arithmetic.
    Spin,
    /// Calls sched_yield in a loop; one unit per yield.
    Yield,
    /// Two threads wake each other through a futex; one unit per round trip.
    Futex,
    /// Sleeps to the end of each period and measures how late it wakes;
    /// one unit per period.
    Sleep,
}

impl WorkKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkKind::Spin => "spin",
            WorkKind::Yield => "yield",
            WorkKind::Futex => "futex",
            WorkKind::Sleep => "sleep",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerArgs {
    pub kinds: Vec<WorkKind>,
    pub threads: usize,
    pub duration: Duration,
    pub sleep_period: Duration,
}

pub fn parse_args(args: &[String]) -> Result<WorkerArgs, String> {
    let mut a = WorkerArgs {
        kinds: vec![WorkKind::Spin, WorkKind::Yield, WorkKind::Futex, WorkKind::Sleep],
        threads: 1,
        duration: Duration::from_secs(3),
        sleep_period: Duration::from_micros(1000),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value =
            |what: &str| it.next().cloned().ok_or_else(|| format!("{flag} needs {what}"));
        match flag.as_str() {
            "--work" => {
                a.kinds = value("a list such as spin,futex")?
                    .split(',')
                    .map(|k| match k.trim() {
                        "spin" => Ok(WorkKind::Spin),
                        "yield" => Ok(WorkKind::Yield),
                        "futex" => Ok(WorkKind::Futex),
                        "sleep" => Ok(WorkKind::Sleep),
                        other => {
                            Err(format!("unknown work kind `{other}` (spin, yield, futex, sleep)"))
                        }
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--threads" => {
                a.threads = value("a count")?
                    .parse()
                    .ok()
                    .filter(|n| (1..=1024).contains(n))
                    .ok_or("--threads takes 1..=1024")?;
            }
            "--duration" => {
                let s: f64 = value("seconds")?
                    .parse()
                    .map_err(|_| "--duration takes seconds, e.g. 3 or 0.5")?;
                if !(s > 0.0 && s <= 86_400.0) {
                    return Err("--duration must be in (0, 86400] seconds".into());
                }
                a.duration = Duration::from_secs_f64(s);
            }
            "--sleep-us" => {
                let us: u64 =
                    value("microseconds")?.parse().map_err(|_| "--sleep-us takes an integer")?;
                a.sleep_period = Duration::from_micros(us.max(1));
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}` (--work, --threads, --duration, --sleep-us)"
                ))
            }
        }
    }
    if a.kinds.is_empty() {
        return Err("--work lists no work kind".into());
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_and_rejects() {
        let a = parse_args(&s(&["--work", "spin,sleep", "--threads", "2", "--duration", "0.5"]))
            .unwrap();
        assert_eq!(a.kinds, vec![WorkKind::Spin, WorkKind::Sleep]);
        assert_eq!((a.threads, a.duration), (2, Duration::from_millis(500)));
        assert!(parse_args(&s(&["--work", "dance"])).unwrap_err().contains("unknown work kind"));
        assert!(parse_args(&s(&["--threads"])).unwrap_err().contains("needs"));
        assert!(parse_args(&s(&["--duration", "-1"])).is_err());
        assert!(parse_args(&s(&["--bogus"])).is_err());
    }
}
