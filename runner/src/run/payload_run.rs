//! How one payload runs: its duration and time limit, its arguments with the
//! run's context filled in, its environment, and whether the run meets what
//! it requires. Decided on the host, before boot.

use ktstr_core::disk::DiskSpec;
use ktstr_core::plugin::{PayloadSpec, Requirements, RunContext, SchedulerNeed};
use ktstr_core::topology::{format_cpulist, Topology};

/// The run length of a payload that declares none.
pub const DEFAULT_DURATION_S: u64 = 10;
/// How long past its duration a payload may take to finish.
pub const DEFAULT_GRACE_S: u64 = 30;
/// Where each payload's own output directory is in the guest.
pub const OUT_ROOT: &str = "/tmp/ktstr-out";

/// How long a payload is asked to run and when it is killed as timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub duration_s: u64,
    pub timeout_s: u64,
}

/// `--duration` (or the payload's default) is the run length; the payload is
/// killed a grace period later. For a fixed-length payload it is the limit.
pub fn timing(spec: &PayloadSpec, flag: Option<u64>) -> Timing {
    let duration_s = flag.unwrap_or(spec.default_duration_s.map_or(DEFAULT_DURATION_S, u64::from));
    if spec.fixed_length {
        return Timing { duration_s, timeout_s: duration_s };
    }
    let grace = spec.grace_s.map_or(DEFAULT_GRACE_S, u64::from);
    Timing { duration_s, timeout_s: duration_s + grace }
}

/// What the payload `name` is told about this run.
pub fn context(name: &str, duration_s: u64, topology: &Topology, memory_mib: u64) -> RunContext {
    let cpus = topology.cpus();
    RunContext {
        duration_ms: Some(duration_s * 1000),
        nr_cpus: cpus,
        cpu_list: format_cpulist(&(0..cpus).collect::<Vec<u32>>()),
        memory_mib: memory_mib as u32,
        out_dir: format!("{OUT_ROOT}/{name}"),
    }
}

/// Where a payload keeps its files: the first writable disk that is
/// mounted, else the guest's tmpfs. Arguments get it as `{scratch_dir}`, and
/// `{scratch_direct}` is 1 on a disk (bypass the page cache: measure the
/// disk) and 0 on tmpfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scratch {
    pub dir: String,
    pub on_disk: bool,
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch { dir: "/tmp".into(), on_disk: false }
    }
}

impl Scratch {
    pub fn for_disks(disks: &[DiskSpec]) -> Scratch {
        let names = ktstr_core::disk::names(disks).unwrap_or_default();
        disks
            .iter()
            .zip(&names)
            .filter(|(d, _)| !d.read_only)
            .find_map(|(d, n)| d.mount_point(n))
            .map_or_else(Scratch::default, |dir| Scratch { dir, on_disk: true })
    }
}

/// The names `{…}` in arguments may use, with their values.
fn variables(ctx: &RunContext, scratch: &Scratch) -> [(&'static str, String); 8] {
    let ms = ctx.duration_ms.unwrap_or(0);
    [
        ("duration", (ms / 1000).to_string()),
        ("duration_ms", ms.to_string()),
        ("nr_cpus", ctx.nr_cpus.to_string()),
        ("cpu_list", ctx.cpu_list.clone()),
        ("memory_mib", ctx.memory_mib.to_string()),
        ("out_dir", ctx.out_dir.clone()),
        ("scratch_dir", scratch.dir.clone()),
        ("scratch_direct", u8::from(scratch.on_disk).to_string()),
    ]
}

/// Fills `{duration}`, `{nr_cpus}`… into each argument; `{{` and `}}` are
/// literal braces. An unknown name is an error that lists the known ones.
pub fn expand(args: &[String], ctx: &RunContext, scratch: &Scratch) -> Result<Vec<String>, String> {
    let vars = variables(ctx, scratch);
    args.iter().map(|a| expand_one(a, &vars)).collect()
}

fn expand_one(arg: &str, vars: &[(&str, String)]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push(tail.as_bytes()[0] as char);
            rest = &tail[2..];
            continue;
        }
        let end = tail.find('}').filter(|_| tail.starts_with('{'));
        let Some(end) = end else {
            return Err(format!("argument `{arg}`: unmatched brace (write `{{{{` or `}}}}`)"));
        };
        let name = &tail[1..end];
        match vars.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => out.push_str(v),
            None => {
                let known: Vec<String> = vars.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                return Err(format!(
                    "argument `{arg}`: unknown `{{{name}}}`; known: {}",
                    known.join(", ")
                ));
            }
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The context as environment variables, for binaries and their children.
pub fn env(ctx: &RunContext, scratch: &Scratch) -> Vec<(String, String)> {
    variables(ctx, scratch)
        .into_iter()
        .map(|(n, v)| (format!("KTSTR_{}", n.to_ascii_uppercase()), v))
        .collect()
}

/// Why this run cannot host the payload `name`, if it cannot.
pub fn unmet(
    name: &str,
    req: &Requirements,
    scheduler: &str,
    sched_ext: bool,
    topology: &Topology,
) -> Option<String> {
    let why = match req.scheduler {
        SchedulerNeed::EevdfOnly if sched_ext => format!(
            "runs under EEVDF only (it loads sched_ext schedulers itself), not under \
             `--scheduler {scheduler}`; drop --scheduler"
        ),
        SchedulerNeed::SchedExtOnly if !sched_ext => format!(
            "needs a sched_ext scheduler, not `{scheduler}`; give --scheduler scx_simple or another"
        ),
        _ if req.min_cpus > topology.cpus() => format!(
            "needs at least {} CPUs; --topology {topology} has {}",
            req.min_cpus,
            topology.cpus()
        ),
        _ if req.min_llcs > topology.llcs() => format!(
            "needs at least {} LLCs; --topology {topology} has {} (e.g. --topology 1n{}l2c1t)",
            req.min_llcs,
            topology.llcs(),
            req.min_llcs
        ),
        _ => return None,
    };
    Some(format!("payload `{name}` {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RunContext {
        context("p", 8, &"1n2l2c1t".parse().unwrap(), 1024)
    }

    #[test]
    fn duration_is_the_run_length_and_the_limit_adds_a_grace() {
        let mut spec = PayloadSpec::new(None, "json", ktstr_core::plugin::Stream::Stdout, "json");
        assert_eq!(timing(&spec, None), Timing { duration_s: 10, timeout_s: 40 });
        assert_eq!(timing(&spec, Some(8)), Timing { duration_s: 8, timeout_s: 38 });
        spec = spec.with_default_duration(5).with_grace(3);
        assert_eq!(timing(&spec, None), Timing { duration_s: 5, timeout_s: 8 });
        spec = spec.fixed_length(50);
        assert_eq!(timing(&spec, None), Timing { duration_s: 50, timeout_s: 50 });
        assert_eq!(timing(&spec, Some(90)), Timing { duration_s: 90, timeout_s: 90 });
    }

    #[test]
    fn arguments_get_the_context() {
        let args = ["--timeout", "{duration}s", "-n{nr_cpus}", "{cpu_list}", "{out_dir}/x", "{{}}"];
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let tmp = Scratch::default();
        let got = expand(&args, &ctx(), &tmp).unwrap();
        assert_eq!(got, ["--timeout", "8s", "-n4", "0-3", "/tmp/ktstr-out/p/x", "{}"]);
        let err = expand(&["{nope}".to_string()], &ctx(), &tmp).unwrap_err();
        assert!(err.contains("unknown `{nope}`") && err.contains("{duration}"), "{err}");
        assert!(expand(&["a{b".to_string()], &ctx(), &tmp).unwrap_err().contains("unmatched"));
        assert!(env(&ctx(), &tmp).contains(&("KTSTR_DURATION".into(), "8".into())));
    }

    #[test]
    fn scratch_is_the_first_writable_mounted_disk() {
        let args =
            vec!["--filename={scratch_dir}/f".to_string(), "--direct={scratch_direct}".into()];
        let got = expand(&args, &ctx(), &Scratch::for_disks(&[])).unwrap();
        assert_eq!(got, ["--filename=/tmp/f", "--direct=0"]);
        let disks: Vec<DiskSpec> = ["64M,ro", "64M,mount=no", "64M,name=data", "64M"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let got = expand(&args, &ctx(), &Scratch::for_disks(&disks)).unwrap();
        assert_eq!(got, ["--filename=/mnt/data/f", "--direct=1"]);
    }

    #[test]
    fn unmet_requirements_name_the_fix() {
        let t: Topology = "1n1l2c1t".parse().unwrap();
        let eevdf = Requirements::default().eevdf_only();
        assert!(unmet("p", &eevdf, "scx_simple", true, &t).unwrap().contains("EEVDF only"));
        assert_eq!(unmet("p", &eevdf, "eevdf", false, &t), None);
        let llcs = Requirements::default().min_llcs(2);
        assert!(unmet("p", &llcs, "eevdf", false, &t).unwrap().contains("1n2l2c1t"));
    }
}
