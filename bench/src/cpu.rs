//! CPU time used by the processes of a run, from `/proc`: this program (the
//! clients, and the server when it runs in-process), vsamrd, Redis and
//! PostgreSQL. On two cores shared by clients and server, a rate alone does
//! not say whose time an operation cost; the CPU per operation of each
//! process does, and it drifts less than the rate with the machine's speed.

use anyhow::{Context, Result};
use std::collections::BTreeMap;

/// The processes counted, by the name `/proc/PID/stat` gives them (the
/// executable's name, cut at 15 bytes), and the name they are printed as.
const SERVERS: [(&str, &str); 3] = [
    ("(vsamrd)", "vsamrd"),
    ("(redis-server)", "redis"),
    ("(postgres)", "postgres"),
];

/// Linux's USER_HZ, the unit of `/proc/PID/stat`'s times.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used so far, by process name ("bench" is this program).
#[derive(Clone, Debug, Default)]
pub(crate) struct Usage(BTreeMap<&'static str, f64>);

impl Usage {
    /// What every counted process used so far (processes that come and go
    /// while this reads are skipped).
    pub(crate) fn now() -> Result<Self> {
        let mut used = BTreeMap::new();
        used.insert("bench", of("/proc/self/stat")?);
        for process in std::fs::read_dir("/proc")?.flatten() {
            let Ok(stat) = std::fs::read_to_string(process.path().join("stat")) else {
                continue;
            };
            let comm = stat
                .find('(')
                .zip(stat.rfind(')'))
                .and_then(|(open, close)| stat.get(open..=close));
            if let Some((_, name)) = SERVERS.iter().find(|(name, _)| Some(*name) == comm) {
                *used.entry(*name).or_insert(0.0) += seconds(&stat).unwrap_or(0.0);
            }
        }
        Ok(Self(used))
    }

    /// The CPU each process used between `self` and `later`, in
    /// microseconds per operation of `operations`; processes that used
    /// none are left out.
    pub(crate) fn per_operation(&self, later: &Usage, operations: u64) -> Usage {
        Usage(
            later
                .0
                .iter()
                .map(|(name, after)| {
                    let before = self.0.get(name).copied().unwrap_or(0.0);
                    (*name, (after - before) * 1e6 / operations.max(1) as f64)
                })
                .filter(|(_, used)| *used > 0.0)
                .collect(),
        )
    }

    /// One process's figure (0 when it used nothing).
    pub(crate) fn of(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }

    /// "bench 12.0, vsamrd 20.5": the figures, for a report line.
    pub(crate) fn summary(&self) -> String {
        self.0
            .iter()
            .map(|(name, used)| format!("{name} {used:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// CPU seconds one process used, from its `stat` file at `path`.
fn of(path: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(path)?;
    seconds(&stat).with_context(|| format!("unreadable {path}"))
}

/// User and system time in a `stat` file's text, in seconds.
fn seconds(stat: &str) -> Option<f64> {
    // Fields after the command (which may hold spaces): state is the
    // first, utime the 12th and stime the 13th.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_after_a_command_with_spaces() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1 1 1";
        assert_eq!(seconds(stat), Some(3.0));
    }

    #[test]
    fn this_process_uses_cpu_as_it_computes() {
        let before = Usage::now().unwrap();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed().as_millis() < 100 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = before.per_operation(&Usage::now().unwrap(), 1);
        assert!(used.of("bench") >= 50_000.0, "{}", used.summary());
    }
}
