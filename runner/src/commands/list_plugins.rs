//! `ktstr list-plugins`: every discovered plugin, broken ones included.

use ktstr_core::plugin::{Kind, PluginRef};
use serde_json::json;

use crate::cli::{KindArg, ListPluginsArgs};
use crate::plugins::{locate, Discovery};

/// Whether the binary a plugin needs is available here.
struct BinaryStatus {
    ok: bool,
    json: serde_json::Value,
    line: String,
}

fn binary_status(p: &PluginRef) -> Option<BinaryStatus> {
    let (bin, any) = match (&p.info.payload, &p.info.scheduler) {
        (Some(pl), _) => (pl.binary.as_ref(), false),
        (_, Some(s)) => (s.binary.as_ref(), s.accepts_any_binary),
        _ => return None,
    };
    if any {
        let found = crate::kernel::available_schedulers();
        let names: Vec<String> = found.iter().map(|(n, _)| n.clone()).collect();
        let line = if names.is_empty() {
            "any sched_ext binary by name or path (none cached yet: `ktstr kernel build` builds \
                scx_simple, scx_qmap, …)"
                .to_string()
        } else {
            format!("any sched_ext binary by name or path; cached: {}", names.join(", "))
        };
        let list: Vec<_> = found.iter().map(|(n, p)| json!({"name": n, "path": p})).collect();
        return Some(BinaryStatus {
            ok: true,
            json: json!({"status": "any", "found": list}),
            line,
        });
    }
    let bin = bin?;
    Some(match locate(bin, &p.path) {
        Ok(l) => BinaryStatus {
            ok: true,
            line: format!("{} ({})", l.path.display(), l.via),
            json: json!({"status": "found", "name": bin.name, "path": l.path, "via": l.via}),
        },
        Err(e) => BinaryStatus {
            ok: false,
            line: format!("MISSING: {e}"),
            json: json!({"status": "missing", "name": bin.name, "error": e}),
        },
    })
}

/// How long a payload runs and what it needs, in one line.
fn runs(p: &ktstr_core::plugin::PayloadSpec) -> String {
    use ktstr_core::plugin::SchedulerNeed;
    let default = p.default_duration_s.map_or(crate::run::DEFAULT_DURATION_S, u64::from);
    let secs = format!("{default} s");
    let mut line = if p.fixed_length {
        format!("as long as it takes (fixed length); --duration is its limit, {secs} by default")
    } else {
        format!("for --duration, {secs} by default")
    };
    let r = &p.requirements;
    match r.scheduler {
        SchedulerNeed::EevdfOnly => line.push_str("; EEVDF only"),
        SchedulerNeed::SchedExtOnly => line.push_str("; sched_ext schedulers only"),
        _ => {}
    }
    if r.min_cpus > 0 {
        line.push_str(&format!("; at least {} CPUs", r.min_cpus));
    }
    if r.min_llcs > 0 {
        line.push_str(&format!("; at least {} LLCs", r.min_llcs));
    }
    line
}

pub fn run(discovery: &Discovery, args: &ListPluginsArgs) -> anyhow::Result<i32> {
    let catalog = discovery.scan();
    let wanted = args.kind.map(|k| match k {
        KindArg::Payload => Kind::Payload,
        KindArg::Extractor => Kind::Extractor,
        KindArg::Scheduler => Kind::Scheduler,
    });
    let mut plugins: Vec<&PluginRef> =
        catalog.plugins.iter().filter(|p| wanted.is_none_or(|k| p.info.kind == k)).collect();
    plugins.sort_by(|a, b| (a.info.kind, &a.info.name).cmp(&(b.info.kind, &b.info.name)));
    let statuses: Vec<Option<BinaryStatus>> = plugins.iter().map(|p| binary_status(p)).collect();
    let missing = statuses.iter().flatten().any(|s| !s.ok);

    if args.json {
        let list: Vec<_> = plugins
            .iter()
            .zip(&statuses)
            .map(|(p, s)| {
                let mut v = serde_json::to_value(&p.info).expect("plugin info serialises");
                v["abi_status"] = json!("ok");
                v["path"] = json!(p.path);
                if let Some(s) = s {
                    v["binary_status"] = s.json.clone();
                }
                v
            })
            .collect();
        let broken: Vec<_> =
            catalog.broken.iter().map(|b| json!({"path": b.path, "error": b.reason})).collect();
        let out = json!({
            "search_path": discovery.dirs,
            "plugins": list,
            "broken": broken,
            "shadowed": catalog.shadowed,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if plugins.is_empty() {
            println!("No plugins found. Searched:");
            for d in &discovery.dirs {
                println!("  {} ({})", d.path.display(), d.origin);
            }
            println!("Build the first-party plugins with `cargo build --release`.");
        }
        for (p, s) in plugins.iter().zip(&statuses) {
            let i = &p.info;
            println!(
                "{:<10} {:<12} {:<8} ABI {} ok  {}",
                i.kind.as_str(),
                i.name,
                i.version,
                i.abi_version,
                i.description
            );
            if let Some(s) = s {
                println!("{:<23}binary: {}", "", s.line);
            }
            if let Some(pl) = &i.payload {
                println!(
                    "{:<23}extractor: {} ({} on {})",
                    "",
                    pl.extractor,
                    pl.format,
                    pl.metric_stream.as_str()
                );
                println!("{:<23}runs:   {}", "", runs(pl));
            }
            println!("{:<23}file:   {}", "", p.path.display());
        }
        if !catalog.broken.is_empty() {
            println!("\nBroken plugins ({}):", catalog.broken.len());
            for b in &catalog.broken {
                println!("  {}\n      {}", b.path.display(), b.reason);
            }
        }
        for s in &catalog.shadowed {
            println!(
                "\nshadowed: {} {} at {} (the one at {} wins)",
                s.kind,
                s.name,
                s.path.display(),
                s.shadowed_by.display()
            );
        }
    }
    let strict_failure = args.strict && (!catalog.broken.is_empty() || missing);
    Ok(if strict_failure { crate::exit::INFRA_ERROR } else { crate::exit::PASS })
}
