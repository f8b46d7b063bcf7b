//! The kernel's cpulist format ("0-3,8,10-11").

/// Formats CPUs the way the kernel prints a cpulist: "0-3,8,10-11".
pub fn format_cpulist(cpus: &[u32]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        let end = sorted[i];
        parts.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
        i += 1;
    }
    parts.join(",")
}

/// Parses a kernel cpulist ("0-3,8,10-11"; empty means none), sorted and deduplicated.
pub fn parse_cpulist(s: &str) -> anyhow::Result<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || anyhow::anyhow!("bad cpulist {:?}: cannot read {part:?}", s.trim());
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulists() {
        assert_eq!(format_cpulist(&[]), "");
        assert_eq!(format_cpulist(&[0]), "0");
        assert_eq!(format_cpulist(&[3, 1, 2, 0, 8, 10, 11, 11]), "0-3,8,10-11");
        assert_eq!(format_cpulist(&[0, 2]), "0,2");
        assert_eq!(parse_cpulist("0-3,8,10-11\n").unwrap(), [0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpulist("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpulist("\n").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpulist("5,1").unwrap(), [1, 5]);
        for bad in ["a", "3-1", "1-", "-1", "1,,x", "0-3:2/4"] {
            assert!(parse_cpulist(bad).is_err(), "{bad:?}");
        }
        for list in ["0", "0-1", "0,2", "0-3,8,10-11", "1-63"] {
            assert_eq!(format_cpulist(&parse_cpulist(list).unwrap()), list);
        }
    }
}
