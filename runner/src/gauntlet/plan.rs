//! The matrix: every (topology, scheduler, job) cell in a fixed order, the
//! `ktstr run` command line of each, and the deterministic shards of it.

use serde::{Deserialize, Serialize};

use crate::usage::UsageError;

/// What a cell runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    Plugin(String),
    Scenario(String),
}

/// One `ktstr run` of the gauntlet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Unique in the gauntlet, usable as a directory name and a testcase name.
    pub id: String,
    pub topology: String,
    /// Where the topology came from when it was not written as NnNlNcNt
    /// (`host`, a file, a preset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_source: Option<String>,
    pub scheduler: String,
    pub job: Job,
    /// vCPUs and memory of the cell's guest: what it reserves of the host.
    pub cpus: u32,
    pub memory_mib: u64,
    /// The whole `ktstr run` command line but for `--json` and `--artifacts`.
    pub run_args: Vec<String>,
}

/// A topology of the matrix: `NnNlNcNt`, and what it was asked as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyEntry {
    pub spec: String,
    pub cpus: u32,
    pub source: Option<String>,
}

/// The cartesian product, topology-major, so that a shard spreads shapes
/// evenly. Identical cells (a preset that is also given as NnNlNcNt) run once.
pub fn matrix(
    topologies: &[TopologyEntry],
    schedulers: &[String],
    jobs: &[Job],
    common: &[String],
    memory_mib: u64,
) -> Vec<Cell> {
    let mut cells: Vec<Cell> = Vec::new();
    for t in topologies {
        for s in schedulers {
            for job in jobs {
                let id = format!("{}-{}-{}", t.spec, short_name(s), short_name(job_name(job)));
                if cells.iter().any(|c| c.id == id) {
                    continue;
                }
                let mut run_args = vec!["run".to_string(), "--topology".into(), t.spec.clone()];
                run_args.extend(["--scheduler".to_string(), s.clone()]);
                match job {
                    Job::Plugin(p) => run_args.extend(["--plugin".to_string(), p.clone()]),
                    Job::Scenario(p) => run_args.extend(["--scenario".to_string(), p.clone()]),
                }
                run_args.extend(common.iter().cloned());
                cells.push(Cell {
                    id,
                    topology: t.spec.clone(),
                    topology_source: t.source.clone(),
                    scheduler: s.clone(),
                    job: job.clone(),
                    cpus: t.cpus,
                    memory_mib,
                    run_args,
                });
            }
        }
    }
    cells
}

/// Every cell `n` times, the copies after the first suffixed `-r2`, `-r3`…,
/// each repetition of the whole matrix after the previous one.
pub fn repeat(cells: Vec<Cell>, n: usize) -> Vec<Cell> {
    let copies = (2..=n).flat_map(|k| {
        cells.iter().map(move |c| Cell { id: format!("{}-r{k}", c.id), ..c.clone() })
    });
    let all: Vec<Cell> = copies.collect();
    cells.into_iter().chain(all).collect()
}

pub fn job_name(job: &Job) -> &str {
    match job {
        Job::Plugin(n) | Job::Scenario(n) => n,
    }
}

/// A path's file stem, anything but `[A-Za-z0-9_.-]` made `_`: fit for an id.
fn short_name(s: &str) -> String {
    let base = std::path::Path::new(s).file_stem().and_then(|b| b.to_str()).unwrap_or(s);
    base.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' })
        .collect()
}

/// `--shard I/N`, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = UsageError;

    fn from_str(s: &str) -> Result<Shard, UsageError> {
        let bad = || UsageError(format!("--shard {s}: expected I/N with 1 <= I <= N, e.g. 1/4"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) =
            (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Cell k of the matrix belongs to shard `k mod N`: deterministic for the
    /// same arguments, and each shard gets every N-th shape.
    pub fn select(self, cells: Vec<Cell>) -> Vec<Cell> {
        cells
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % self.count == self.index - 1)
            .map(|(_, c)| c)
            .collect()
    }
}

/// `a,b` and repeated flags as one list, blanks dropped.
pub fn split_lists(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// A cell for other modules' tests.
#[cfg(test)]
pub fn test_cell(id: &str) -> Cell {
    Cell {
        id: id.into(),
        topology: "1n1l1c1t".into(),
        topology_source: None,
        scheduler: "scx_simple".into(),
        job: Job::Plugin("workers".into()),
        cpus: 1,
        memory_mib: 512,
        run_args: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(s: &str, cpus: u32) -> TopologyEntry {
        TopologyEntry { spec: s.into(), cpus, source: None }
    }

    fn cells() -> Vec<Cell> {
        let topologies = [topo("1n1l2c1t", 2), topo("1n2l2c1t", 4), topo("2n1l1c2t", 4)];
        let schedulers = ["eevdf".to_string(), "/opt/scx_lavd".to_string()];
        let jobs = [Job::Plugin("workers".into()), Job::Scenario("two-equal-cgroups".into())];
        matrix(&topologies, &schedulers, &jobs, &["--duration".into(), "2".into()], 512)
    }

    #[test]
    fn the_matrix_is_the_product_with_unique_ids_and_full_command_lines() {
        let cells = cells();
        assert_eq!(cells.len(), 12);
        let mut ids: Vec<&str> = cells.iter().map(|c| c.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 12);
        assert_eq!(cells[1].id, "1n1l2c1t-eevdf-two-equal-cgroups");
        assert_eq!(cells[2].id, "1n1l2c1t-scx_lavd-workers");
        assert_eq!(
            cells[0].run_args,
            [
                "run",
                "--topology",
                "1n1l2c1t",
                "--scheduler",
                "eevdf",
                "--plugin",
                "workers",
                "--duration",
                "2"
            ]
        );
        let again = matrix(
            &[topo("1n1l2c1t", 2), topo("1n1l2c1t", 2)],
            &["eevdf".into()],
            &[Job::Plugin("w".into())],
            &[],
            512,
        );
        assert_eq!(again.len(), 1, "an identical cell runs once");
    }

    #[test]
    fn shards_together_run_every_cell_exactly_once() {
        for n in 1..=13 {
            let mut seen: Vec<String> = (1..=n)
                .flat_map(|i| Shard { index: i, count: n }.select(cells()))
                .map(|c| c.id)
                .collect();
            assert_eq!(seen.len(), 12, "{n} shards");
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 12, "{n} shards");
        }
        // Deterministic, and shapes spread: shard 1/3 gets one cell of each position mod 3.
        assert_eq!(
            Shard { index: 2, count: 5 }.select(cells()),
            Shard { index: 2, count: 5 }.select(cells())
        );
    }

    #[test]
    fn repeats_copy_the_matrix_with_their_own_ids() {
        let cells = repeat(cells(), 3);
        assert_eq!(cells.len(), 36);
        assert_eq!(cells[12].id, format!("{}-r2", cells[0].id));
        assert_eq!(cells[35].id, format!("{}-r3", cells[11].id));
        assert_eq!(cells[35].run_args, cells[11].run_args);
        assert_eq!(repeat(vec![test_cell("a")], 1).len(), 1);
    }

    #[test]
    fn shard_syntax_is_checked() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { index: 2, count: 4 });
        for bad in ["0/4", "5/4", "1/0", "1", "a/b", "1/2/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(split_lists(&["a,b".into(), " c ,".into()]), ["a", "b", "c"]);
    }
}
