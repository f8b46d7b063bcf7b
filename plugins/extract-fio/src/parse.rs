//! From fio's parsed JSON to metrics (the names are in the crate docs).

use ktstr_plugin_api::Metric;
use ktstr_plugin_support::{escape_key, trim_decimal};
use serde_json::Value;

const DIRECTIONS: [&str; 3] = ["read", "write", "trim"];

/// Metrics that still mean something when summed over jobs.
const ADDITIVE: [&str; 3] = ["iops", "bw_kib", "total_ios"];

/// One direction of one job: (name suffix, value, unit), in output order.
type Stats = Vec<(String, f64, &'static str)>;

/// Metrics from a parsed fio JSON document.
pub fn extract_doc(doc: &Value) -> Result<Vec<Metric>, String> {
    let jobs = doc
        .get("jobs")
        .and_then(Value::as_array)
        .ok_or("fio JSON has no \"jobs\" array (was fio run with --output-format=json?)")?;
    let names = job_names(jobs)?;
    let mut out = Vec::new();
    let mut by_dir: Vec<(&str, Vec<Stats>)> = DIRECTIONS.iter().map(|d| (*d, Vec::new())).collect();
    for (job, name) in jobs.iter().zip(&names) {
        for (dir, all) in by_dir.iter_mut() {
            let Some(stats) = job.get(*dir).and_then(direction) else {
                continue;
            };
            out.extend(
                stats.iter().map(|(s, v, u)| Metric::new(format!("job/{name}/{dir}/{s}"), *v, u)),
            );
            all.push(stats);
        }
    }
    for (dir, all) in &by_dir {
        let totals = match all.as_slice() {
            [] => continue,
            [only] if jobs.len() == 1 => only.clone(),
            _ => ADDITIVE
                .iter()
                .filter_map(|key| {
                    let values: Vec<f64> = all.iter().filter_map(|s| get(s, key)).collect();
                    (!values.is_empty())
                        .then(|| (key.to_string(), values.iter().sum(), unit_of_additive(key)))
                })
                .collect(),
        };
        out.extend(totals.into_iter().map(|(s, v, u)| Metric::new(format!("{dir}/{s}"), v, u)));
    }
    Ok(out)
}

/// Escaped job names; a name shared by several jobs gets `#<n>` appended.
fn job_names(jobs: &[Value]) -> Result<Vec<String>, String> {
    let raw: Vec<&str> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| {
            j.get("jobname")
                .and_then(Value::as_str)
                .ok_or(format!("fio job #{i} has no \"jobname\""))
        })
        .collect::<Result<_, _>>()?;
    Ok(raw
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let escaped = escape_key(name);
            if raw.iter().filter(|n| *n == name).count() == 1 {
                return escaped;
            }
            let nth = raw[..i].iter().filter(|n| *n == name).count();
            format!("{escaped}#{nth}")
        })
        .collect())
}

/// The stats of one direction, or `None` when it did no I/O.
fn direction(d: &Value) -> Option<Stats> {
    let num = |key: &str| d.get(key).and_then(Value::as_f64);
    if num("total_ios").unwrap_or(0.0) == 0.0 && num("io_bytes").unwrap_or(0.0) == 0.0 {
        return None;
    }
    let mut s: Stats = Vec::new();
    let mut push = |name: String, v: Option<f64>, unit| s.extend(v.map(|v| (name, v, unit)));
    push("iops".into(), num("iops"), "ops/s");
    push("bw_kib".into(), num("bw"), "KiB/s");
    for (key, label) in [("clat_ns", "clat"), ("lat_ns", "lat")] {
        let lat = d.get(key);
        push(
            format!("{label}_mean_ns"),
            lat.and_then(|l| l.get("mean")).and_then(Value::as_f64),
            "ns",
        );
        for (pct, v) in percentiles(lat.and_then(|l| l.get("percentile"))) {
            push(format!("{label}_p{}_ns", trim_decimal(&pct)), Some(v), "ns");
        }
    }
    push("runtime_ms".into(), num("runtime"), "ms");
    push("total_ios".into(), num("total_ios"), "count");
    Some(s)
}

/// `{"1.000000": 35584, "99.000000": 64256, ...}` in numeric order (a JSON
/// map's own order is by text: "10" before "5").
fn percentiles(map: Option<&Value>) -> Vec<(String, f64)> {
    let Some(map) = map.and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out: Vec<(f64, String, f64)> = map
        .iter()
        .filter_map(|(k, v)| Some((k.parse::<f64>().ok()?, k.clone(), v.as_f64()?)))
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out.into_iter().map(|(_, k, v)| (k, v)).collect()
}

fn get(stats: &Stats, key: &str) -> Option<f64> {
    stats.iter().find(|(s, _, _)| s == key).map(|(_, v, _)| *v)
}

fn unit_of_additive(key: &str) -> &'static str {
    match key {
        "iops" => "ops/s",
        "bw_kib" => "KiB/s",
        _ => "count",
    }
}
