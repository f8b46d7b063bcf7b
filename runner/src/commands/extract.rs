//! `ktstr extract`: runs a payload's (or an extractor's) extraction on
//! captured output files and prints the metrics.

use anyhow::Context;
use ktstr_core::extract::{extract_metrics, Captured};
use ktstr_core::metrics::format_value;
use ktstr_core::plugin::{payload_spec, Kind};

use crate::cli::ExtractArgs;
use crate::plugins::Discovery;

pub fn run(discovery: &Discovery, args: &ExtractArgs) -> anyhow::Result<i32> {
    if args.stdout.is_none() && args.stderr.is_none() {
        eprintln!("error: give at least one of --stdout FILE and --stderr FILE");
        return Ok(crate::exit::USAGE);
    }
    let read = |p: &Option<std::path::PathBuf>| -> anyhow::Result<Vec<u8>> {
        match p {
            Some(p) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display())),
            None => Ok(Vec::new()),
        }
    };
    let (stdout, stderr) = (read(&args.stdout)?, read(&args.stderr)?);
    let catalog = discovery.scan();
    // A payload name means "its extractor"; otherwise the name is an extractor.
    let (extractor_name, payload_stream) = match catalog.find(Kind::Payload, &args.plugin) {
        Some(p) => (payload_spec(p).extractor.clone(), Some(payload_spec(p).metric_stream)),
        None => (args.plugin.clone(), None),
    };
    let extractor = match catalog.require(Kind::Extractor, &extractor_name) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(crate::exit::USAGE);
        }
    };
    let primary = payload_stream.unwrap_or(ktstr_core::metrics::Stream::Stdout);
    let captured = Captured { stdout: &stdout, stderr: &stderr };
    let found = extract_metrics(&extractor.here(), primary, &captured)?;
    let metrics = &found.metrics;
    if args.json {
        let out = serde_json::json!({
            "extractor": extractor.info.name,
            "metrics": metrics,
            "notes": found.notes,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if metrics.is_empty() {
        eprintln!("extractor `{}` found no metrics in the given output", extractor.info.name);
    } else {
        let width = metrics.iter().map(|m| m.name.len()).max().unwrap_or(0);
        for m in metrics {
            println!(
                "{:<width$}  {:>14} {:<10} ({})",
                m.name,
                format_value(m.value),
                m.unit,
                m.stream.as_str()
            );
        }
    }
    if !args.json {
        for note in &found.notes {
            println!("note: {note}");
        }
    }
    Ok(crate::exit::PASS)
}
