//! The topologies of the matrix: `NnNlNcNt`, presets and sets, `host`, and
//! other machines' shapes from files.

use anyhow::Result;
use ktstr_core::topology::Topology;

use super::args::GauntletArgs;
use super::plan::{split_lists, TopologyEntry};
use super::presets;
use crate::usage::UsageError;

/// Every topology asked for, in order; presets over `max_cpus` are left out
/// and said on stderr (a skip is never silent).
pub fn resolve(args: &GauntletArgs, max_cpus: u32) -> Result<Vec<TopologyEntry>> {
    let mut out = Vec::new();
    for name in split_lists(&args.topologies) {
        if name == "host" {
            let shape = crate::machine::host()?;
            out.push(entry(&shape.topology, Some(format!("host: {}", shape.source))));
            shape.report_notes();
        } else if let Some((fit, over)) = presets::expand(&name, max_cpus) {
            if !over.is_empty() {
                eprintln!(
                    "[gauntlet] {name}: leaving out {} (over {max_cpus} CPUs; --max-cpus)",
                    over.join(", ")
                );
            }
            for spec in fit {
                let t: Topology = spec.parse().map_err(|e| UsageError(format!("{e}")))?;
                out.push(entry(&t, (spec != name).then(|| format!("preset {name}"))));
            }
        } else {
            let t: Topology = name.parse().map_err(|e| {
                UsageError(format!(
                    "{e}, a preset or set (`ktstr gauntlet --list-presets`), or `host`"
                ))
            })?;
            out.push(entry(&t, None));
        }
    }
    for file in &args.topology_from {
        let shape = crate::machine::from_file(file)?;
        shape.report_notes();
        out.push(entry(&shape.topology, Some(format!("{}", file.display()))));
    }
    if out.is_empty() {
        return Err(UsageError(
            "no topology: give --topology (NnNlNcNt, a preset or set, or `host`) or \
                --topology-from"
                .into(),
        )
        .into());
    }
    Ok(out)
}

fn entry(t: &Topology, source: Option<String>) -> TopologyEntry {
    TopologyEntry { spec: t.to_string(), cpus: t.cpus(), source }
}
