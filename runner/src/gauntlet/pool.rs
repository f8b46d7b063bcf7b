//! What the host can hold at once: each running cell reserves its vCPUs
//! and its memory, so parallel cells never oversubscribe the host (under
//! emulation an oversubscribed vCPU is a slow one, and slow runs time out).

/// The QEMU or ktstr-vmm process and the ktstr around a guest, beyond the
/// guest's own memory (measured peak RSS is 150–250 MiB; rounded up).
pub const OVERHEAD_MIB: u64 = 320;
/// Left to the host and the rest of its work.
pub const HOST_RESERVE_MIB: u64 = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    pub cpus: u32,
    pub memory_mib: u64,
}

#[derive(Clone, Debug)]
pub struct Pool {
    pub cpus: u32,
    pub memory_mib: u64,
    /// `-j`: at most this many cells at once.
    pub jobs: usize,
    used: Need,
    running: usize,
}

impl Pool {
    pub fn new(cpus: u32, memory_mib: u64, jobs: Option<usize>) -> Pool {
        let cpus = cpus.max(1);
        let jobs = jobs.unwrap_or(cpus as usize).max(1);
        Pool { cpus, memory_mib, jobs, used: Need { cpus: 0, memory_mib: 0 }, running: 0 }
    }

    /// This host: its CPUs, and its available memory less a reserve.
    pub fn of_host(jobs: Option<usize>) -> Pool {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let available = mem_available_mib().unwrap_or(4096);
        Pool::new(cpus, available.saturating_sub(HOST_RESERVE_MIB), jobs)
    }

    /// What a cell reserves: its vCPUs, at most the whole host (a cell bigger
    /// than the host still runs, alone), and its memory plus overhead.
    pub fn need(&self, cpus: u32, guest_memory_mib: u64) -> Need {
        Need { cpus: cpus.min(self.cpus), memory_mib: guest_memory_mib + OVERHEAD_MIB }
    }

    /// Whether `need` can start now. With nothing running, anything can:
    /// the gauntlet never waits for resources that will not come.
    pub fn fits(&self, need: Need) -> bool {
        if self.running == 0 {
            return true;
        }
        self.running < self.jobs
            && self.used.cpus + need.cpus <= self.cpus
            && self.used.memory_mib + need.memory_mib <= self.memory_mib
    }

    pub fn take(&mut self, need: Need) {
        self.used.cpus += need.cpus;
        self.used.memory_mib += need.memory_mib;
        self.running += 1;
    }

    pub fn give_back(&mut self, need: Need) {
        self.used.cpus -= need.cpus;
        self.used.memory_mib -= need.memory_mib;
        self.running -= 1;
    }

    pub fn running(&self) -> usize {
        self.running
    }
}

/// `MemAvailable` of /proc/meminfo, in MiB.
fn mem_available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_share_cpus_and_memory_without_oversubscribing() {
        let mut pool = Pool::new(2, 4096, None);
        let one = pool.need(1, 512);
        assert_eq!(one, Need { cpus: 1, memory_mib: 512 + OVERHEAD_MIB });
        pool.take(one);
        assert!(pool.fits(one));
        pool.take(one);
        assert!(!pool.fits(one), "both CPUs are taken");
        pool.give_back(one);
        let four = pool.need(4, 512);
        assert_eq!(four.cpus, 2, "a cell bigger than the host reserves all of it");
        assert!(!pool.fits(four));
        pool.give_back(one);
        assert!(pool.fits(four), "with nothing running anything starts");
    }

    #[test]
    fn jobs_and_memory_cap_parallelism() {
        let mut pool = Pool::new(8, 100_000, Some(2));
        let one = pool.need(1, 256);
        pool.take(one);
        pool.take(one);
        assert!(!pool.fits(one), "-j 2");
        let mut pool = Pool::new(8, 3000, None);
        let big = pool.need(1, 2048);
        pool.take(big);
        assert!(!pool.fits(big), "memory");
        assert!(pool.fits(pool.need(1, 256)));
        assert!(mem_available_mib().is_some());
    }
}
