//! fio extractor (`fio`): reads `fio --output-format=json` (warnings such as
//! `fio: ...` before the JSON are skipped).
//!
//! Per job and direction (`read`, `write`, `trim`; a direction with no I/O is
//! left out), under `job/<jobname>/<dir>/`: `iops` (ops/s), `bw_kib` (KiB/s),
//! `clat_mean_ns`, `lat_mean_ns`, `clat_p<P>_ns` for every completion-latency
//! percentile fio printed (`"99.000000"` → `p99`, `"99.900000"` → `p99.9`),
//! `lat_p<P>_ns` when fio ran with `--lat_percentiles=1`, `runtime_ms`,
//! `total_ios` (count). The job name is escaped like a JSON key (`/` → `~1`,
//! `~` → `~0`); jobs sharing a name (`--numjobs` without `group_reporting`)
//! become `<jobname>#0`, `<jobname>#1`, … in the order fio lists them.
//!
//! Totals per direction, under `<dir>/`: `iops`, `bw_kib` and `total_ios`
//! summed over the jobs; with exactly one job, every metric of that job
//! (`read/clat_p99_ns`…), since percentiles cannot be summed.

mod parse;

use ktstr_plugin_api::{export_plugin, Extraction, ExtractorSpec, Manifest, Metric, Plugin};
use ktstr_plugin_support::find_json_document;

pub use parse::extract_doc;

/// The extractor's name, as payload manifests refer to it.
pub const NAME: &str = "fio";

/// Metrics from fio's JSON output; no JSON → none.
pub fn extract_fio(text: &str) -> Result<Vec<Metric>, String> {
    match find_json_document(text) {
        None => Ok(Vec::new()),
        Some(doc) => extract_doc(&doc.map_err(|e| format!("fio output: {e}"))?),
    }
}

pub struct Fio;

impl Plugin for Fio {
    fn manifest() -> Manifest {
        Manifest::extractor(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "fio --output-format=json: IOPS, bandwidth and latency percentiles per job and \
                direction",
            ExtractorSpec::new(&["fio-json"]),
        )
    }

    fn extract(text: &str) -> Result<Extraction, String> {
        extract_fio(text).map(Extraction::from)
    }
}

export_plugin!(Fio);
