//! stress-ng extractor (`stress-ng`): reads the `--yaml FILE` report
//! (`stress-ng-yaml`) or the `--metrics-brief` / `--metrics` table that
//! stress-ng logs on stderr (`stress-ng-metrics-brief`).
//!
//! Per stressor, under `<stressor>/`: `bogo_ops` (ops), `wall_clock_s`,
//! `user_time_s`, `system_time_s` (s), `bogo_ops_per_sec_real`,
//! `bogo_ops_per_sec_usr_sys` (ops/s), and, from the YAML or the `--metrics`
//! table, `cpu_usage_per_instance_pct` (%) and `max_rss_kib` (KiB). The
//! table rounds to two decimals; the YAML has six.

mod brief;
mod yaml;

use ktstr_plugin_api::{export_plugin, Extraction, ExtractorSpec, Manifest, Metric, Plugin};

pub use brief::extract_brief;
pub use yaml::{extract_yaml, looks_like_yaml};

/// The extractor's name, as payload manifests refer to it.
pub const NAME: &str = "stress-ng";

/// One per-stressor metric: its YAML key, its name and unit. Listed in the
/// order of the `--metrics` table's columns.
pub(crate) struct Field {
    pub yaml: &'static str,
    pub name: &'static str,
    pub unit: &'static str,
}

pub(crate) const FIELDS: [Field; 8] = [
    Field { yaml: "bogo-ops", name: "bogo_ops", unit: "ops" },
    Field { yaml: "wall-clock-time", name: "wall_clock_s", unit: "s" },
    Field { yaml: "user-time", name: "user_time_s", unit: "s" },
    Field { yaml: "system-time", name: "system_time_s", unit: "s" },
    Field { yaml: "bogo-ops-per-second-real-time", name: "bogo_ops_per_sec_real", unit: "ops/s" },
    Field {
        yaml: "bogo-ops-per-second-usr-sys-time",
        name: "bogo_ops_per_sec_usr_sys",
        unit: "ops/s",
    },
    Field { yaml: "cpu-usage-per-instance", name: "cpu_usage_per_instance_pct", unit: "%" },
    Field { yaml: "max-rss", name: "max_rss_kib", unit: "KiB" },
];

/// Reads the YAML report when the text is one, else the stderr table.
pub fn extract(text: &str) -> Result<Vec<Metric>, String> {
    if looks_like_yaml(text) {
        extract_yaml(text)
    } else {
        Ok(extract_brief(text))
    }
}

pub struct StressNg;

impl Plugin for StressNg {
    fn manifest() -> Manifest {
        Manifest::extractor(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "stress-ng: bogo-ops, rates and CPU times per stressor, from --yaml or the \
                --metrics-brief table",
            ExtractorSpec::new(&["stress-ng-yaml", "stress-ng-metrics-brief"]),
        )
    }

    fn extract(text: &str) -> Result<Extraction, String> {
        extract(text).map(Extraction::from)
    }
}

export_plugin!(StressNg);
