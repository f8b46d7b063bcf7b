//! The `primes` extractor: reads `primes: N`, `rate: X/s` and `cpus: N`.

use ktstr_plugin_api::{Extraction, ExtractorSpec, Manifest, Metric, Plugin};

pub struct PrimesExtractor;

pub fn parse(text: &str) -> Result<Vec<Metric>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let (name, unit, raw) = match key.trim() {
            "primes" => ("primes", "count", value.trim()),
            "rate" => ("rate", "primes/s", value.trim().trim_end_matches("/s")),
            "cpus" => ("cpus", "count", value.trim()),
            _ => continue,
        };
        let v: f64 = raw.parse().map_err(|_| format!("`{line}`: `{raw}` is not a number"))?;
        out.push(Metric::new(name, v, unit));
    }
    Ok(out)
}

impl Plugin for PrimesExtractor {
    fn manifest() -> Manifest {
        Manifest::extractor(
            "primes",
            env!("CARGO_PKG_VERSION"),
            "example third-party extractor for the primes payload",
            ExtractorSpec::new(&["primes-text"]),
        )
    }

    fn extract(text: &str) -> Result<Extraction, String> {
        parse(text).map(Extraction::from)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_its_payload_output() {
        let m = super::parse("primes: 1229\nrate: 614.5/s\ncpus: 2\n").unwrap();
        assert_eq!((m[0].name.as_str(), m[0].value), ("primes", 1229.0));
        assert_eq!((m[1].name.as_str(), m[1].value), ("rate", 614.5));
        assert_eq!((m[2].name.as_str(), m[2].value), ("cpus", 2.0));
        assert!(super::parse("primes: many").is_err());
        assert!(super::parse("").unwrap().is_empty());
    }
}
