//! The `primes` payload: counts primes by trial division for a while and
//! prints `primes: N` and `rate: X/s` on stdout. No external binary: the
//! guest init runs it in a forked process through `run_inline`.

use std::time::{Duration, Instant};

use ktstr_plugin_api::{Manifest, MetricHint, PayloadSpec, Plugin, Polarity, RunContext, Stream};

pub struct Primes;

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

fn parse_seconds(args: &[String]) -> Result<f64, String> {
    match args {
        [] => Ok(2.0),
        [flag, v] if flag == "--seconds" => match v.parse::<f64>() {
            Ok(s) if s > 0.0 => Ok(s),
            _ => Err("--seconds takes a positive number".into()),
        },
        _ => Err("usage: --seconds N".into()),
    }
}

impl Plugin for Primes {
    fn manifest() -> Manifest {
        let spec = PayloadSpec::new(None, "primes", Stream::Stdout, "primes-text")
            .with_default_args(&["--seconds", "2"])
            .with_checks(&["exit==0", "primes>=1"])
            .with_hints(vec![MetricHint::new("rate", "primes/s", Polarity::HigherIsBetter)]);
        Manifest::payload(
            "primes",
            env!("CARGO_PKG_VERSION"),
            "example third-party payload: counts primes",
            spec,
        )
    }

    fn run_inline(context: &RunContext, args: &[String]) -> i32 {
        let seconds = match parse_seconds(args) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("primes: {e}");
                return 2;
            }
        };
        let (start, budget) = (Instant::now(), Duration::from_secs_f64(seconds));
        let (mut n, mut found) = (2u64, 0u64);
        while start.elapsed() < budget {
            found += (n..n + 1000).filter(|&k| is_prime(k)).count() as u64;
            n += 1000;
        }
        println!("primes: {found}");
        println!("rate: {:.1}/s", found as f64 / start.elapsed().as_secs_f64());
        println!("cpus: {}", context.nr_cpus);
        0
    }
}
