//! What this machine has, for limits whose default scales with it.

/// The machine's memory in MiB (4 GiB if `/proc/meminfo` cannot say).
pub fn memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(4096, |kib| kib / 1024)
}

/// The cores this process may run on (its CPU affinity and quota; 1 if
/// the system cannot say): what spinning work is bounded by.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
