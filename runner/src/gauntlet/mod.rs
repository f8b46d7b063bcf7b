//! `ktstr gauntlet`: a matrix of ordinary `ktstr run`s (topology ×
//! scheduler × job), run in parallel within what the host holds, reported
//! as a table, JSON and JUnit.

pub mod args;
mod cell;
mod junit;
mod plan;
mod pool;
mod presets;
mod report;
mod topologies;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::usage::UsageError;
use args::GauntletArgs;
pub use cell::CellResult;
use cell::Running;
use plan::{split_lists, Shard};
pub use plan::{Cell, Job};
use pool::Need;
pub use pool::Pool;

/// Where an earlier gauntlet's results are, for `--rerun-failed`.
const RESULTS_FILE: &str = "gauntlet.json";

pub fn execute(args: &GauntletArgs) -> Result<i32> {
    let max_cpus = args.max_cpus.unwrap_or(ktstr_core::topology::MAX_CPUS);
    if args.list_presets {
        print!("{}", presets::listing(max_cpus));
        return Ok(crate::exit::PASS);
    }
    let shard = args.shard.as_deref().map(str::parse::<Shard>).transpose()?;
    let (cells, kernel) = match &args.rerun_failed {
        Some(dir) => failed_cells(dir)?,
        None => plan_cells(args, max_cpus)?,
    };
    let cells = match shard {
        Some(s) => s.select(cells),
        None => cells,
    };
    if args.dry_run {
        for c in &cells {
            println!("{}\tktstr {}", c.id, c.run_args.join(" "));
        }
        return Ok(crate::exit::PASS);
    }
    let out = out_dir(args.out.as_deref(), "gauntlet")?;
    let pool = Pool::of_host(args.jobs);
    eprintln!(
        "[gauntlet] {} cells{}, up to {} at once ({} CPUs, {} MiB for guests); kernel {kernel}; \
            out {}",
        cells.len(),
        shard.map(|s| format!(" (shard {}/{})", s.index, s.count)).unwrap_or_default(),
        pool.jobs.min(cells.len().max(1)),
        pool.cpus,
        pool.memory_mib,
        out.display()
    );
    let started = Instant::now();
    let jobs = pool.jobs;
    let (results, interrupted) = run_all(cells, &out, pool, args.fail_fast)?;
    let wall = started.elapsed();

    let doc = report::to_json(&results, wall, jobs, shard, &kernel);
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(out.join(RESULTS_FILE), &text).context("write gauntlet.json")?;
    if let Some(path) = &args.junit {
        let xml = junit::report(&results, wall).to_string().context("serialise JUnit")?;
        std::fs::write(path, xml).with_context(|| format!("write {}", path.display()))?;
    }
    let table = report::table(&results, wall);
    crate::output::emit(args.json.as_deref(), &text, &table)?;
    Ok(if interrupted {
        crate::exit::INTERRUPTED
    } else if results.iter().all(CellResult::passed) {
        crate::exit::PASS
    } else {
        crate::exit::CHECK_FAILED
    })
}

/// The matrix of the command line, and the kernel every cell boots.
fn plan_cells(args: &GauntletArgs, max_cpus: u32) -> Result<(Vec<Cell>, String)> {
    let topologies = topologies::resolve(args, max_cpus)?;
    let mut schedulers = split_lists(&args.schedulers);
    if schedulers.is_empty() {
        schedulers.push("eevdf".into());
    }
    let jobs: Vec<Job> = split_lists(&args.plugins)
        .into_iter()
        .map(Job::Plugin)
        .chain(split_lists(&args.scenarios).into_iter().map(Job::Scenario))
        .collect();
    if jobs.is_empty() {
        return Err(
            UsageError("no job: give --plugin or --scenario (each repeatable)".into()).into()
        );
    }
    if args.repeat == 0 {
        return Err(UsageError("--repeat must be at least 1".into()).into());
    }
    let memory_mib = crate::run::parse_memory(&args.memory).map_err(UsageError)?;
    let entry = crate::kernel::resolve(args.kernel.as_deref())?;
    let kernel = entry.key.clone().unwrap_or_else(|| entry.bzimage.display().to_string());
    let common = args.common_run_args(&kernel);
    let cells = plan::matrix(&topologies, &schedulers, &jobs, &common, memory_mib);
    Ok((plan::repeat(cells, args.repeat), kernel))
}

/// The cells of an earlier gauntlet that did not pass, with their arguments.
fn failed_cells(dir: &Path) -> Result<(Vec<Cell>, String)> {
    let path = dir.join(RESULTS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        UsageError(format!("--rerun-failed {}: {e} (is it a gauntlet's --out?)", path.display()))
    })?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    let results: Vec<CellResult> = serde_json::from_value(doc["cells"].clone())
        .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    let cells: Vec<Cell> = results.into_iter().filter(|r| !r.passed()).map(|r| r.cell).collect();
    eprintln!("[gauntlet] rerunning {} cells that did not pass in {}", cells.len(), dir.display());
    Ok((cells, doc["kernel"].as_str().unwrap_or("?").to_string()))
}

/// `--out DIR`, or a fresh `$KTSTR_CACHE_DIR/runs/PREFIX-<ms>`, created.
pub fn out_dir(explicit: Option<&Path>, prefix: &str) -> Result<PathBuf> {
    let dir = match explicit {
        Some(d) => d.to_path_buf(),
        None => {
            let ms =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
            crate::kernel::cache_dir().join("runs").join(format!("{prefix}-{ms}"))
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

/// Runs the cells, starting each as soon as the pool holds it (in matrix
/// order, a smaller later cell first when it fits and the next does not).
/// Returns the results in matrix order and whether Ctrl-C or SIGTERM came
/// (they are caught here, so every caller stops its cells and reports them).
pub fn run_all(
    cells: Vec<Cell>,
    out: &Path,
    mut pool: Pool,
    fail_fast: bool,
) -> Result<(Vec<CellResult>, bool)> {
    crate::interrupt::install();
    let exe = std::env::current_exe().context("find the ktstr executable")?;
    let order: Vec<String> = cells.iter().map(|c| c.id.clone()).collect();
    let mut pending: VecDeque<Cell> = cells.into();
    let mut running: Vec<(Running, Need)> = Vec::new();
    let mut results = Vec::new();
    let mut progress = report::Progress::new(pending.len());
    let (mut stop, mut interrupted) = (None::<&str>, false);
    loop {
        if crate::interrupt::requested() && !interrupted {
            interrupted = true;
            stop = Some("interrupted before it started");
            for (run, _) in &running {
                // Each `ktstr run` stops its VM and writes its result on SIGTERM.
                unsafe { libc::kill(run.child.id() as libc::pid_t, libc::SIGTERM) };
            }
        }
        while stop.is_none() {
            let needs = pending.iter().map(|c| pool.need(c.cpus, c.memory_mib));
            let Some((at, need)) = needs.enumerate().find(|(_, n)| pool.fits(*n)) else { break };
            let cell = pending.remove(at).expect("position is in range");
            let dir = out.join(&cell.id);
            match cell::start(&exe, &cell, dir.clone()) {
                Ok(run) => {
                    pool.take(need);
                    running.push((run, need));
                    progress.started(&cell.id, pool.running());
                }
                Err(e) => results.push(CellResult::not_run(&cell, dir, &format!("{e:#}"))),
            }
        }
        let mut k = 0;
        while k < running.len() {
            match running[k].0.child.try_wait().context("wait for a cell")? {
                None => k += 1,
                Some(status) => {
                    let (run, need) = running.swap_remove(k);
                    pool.give_back(need);
                    let r = cell::finish(run, status.code());
                    progress.finished(&r, pool.running());
                    if fail_fast && !r.passed() && stop.is_none() {
                        stop = Some("not started: --fail-fast and an earlier cell did not pass");
                    }
                    results.push(r);
                }
            }
        }
        if running.is_empty() && (pending.is_empty() || stop.is_some()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    progress.end();
    for cell in pending {
        let dir = out.join(&cell.id);
        results.push(CellResult::not_run(&cell, dir, stop.unwrap_or("not started")));
    }
    results.sort_by_key(|r| order.iter().position(|id| *id == r.cell.id));
    Ok((results, interrupted))
}
