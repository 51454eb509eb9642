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

/// The warning for a server running as the user `uid`, when that is root:
/// a fault in vsamrd, or in a plugin that got out of its sandbox, would
/// act with every right on the machine, and the files vsamrd creates
/// would belong to root, so that the server cannot later run as another
/// user on them. `None` for any other user.
pub fn root_warning(uid: u32) -> Option<String> {
    (uid == 0).then(|| {
        "vsamrd runs as root: a fault in it, or in a plugin out of its sandbox, would act with every right on this \
         machine, and the files it creates belong to root; run it as a user of its own (packaging/vsamrd.service and \
         packaging/Dockerfile do)"
            .to_string()
    })
}

/// The user this process runs as (its effective user id).
pub fn user_id() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// The files this process may open now (its soft `RLIMIT_NOFILE`; 1,024 if
/// the system cannot say).
pub fn open_files() -> u64 {
    open_files_limit().map_or(1024, |limit| limit.rlim_cur)
}

/// Raises this process's limit of open files to the most it is allowed
/// (the hard limit), and returns the limit now.
///
/// Why: every connection, database and plugin file is a descriptor, and
/// the usual soft limit (1,024) is below what `[server] max_connections`
/// alone allows by default; the hard limit is what the operator granted.
pub fn raise_open_files() -> u64 {
    if let Some(mut limit) = open_files_limit()
        && limit.rlim_cur < limit.rlim_max
    {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads the struct it is given.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    }
    open_files()
}

fn open_files_limit() -> Option<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit)
}

#[cfg(test)]
mod tests {
    use super::root_warning;

    #[test]
    fn root_is_warned_of_and_other_users_are_not() {
        let warning = root_warning(0).expect("root is warned of");
        assert!(
            warning.starts_with("vsamrd runs as root:")
                && warning.contains("run it as a user of its own"),
            "{warning}"
        );
        for uid in [1, 999, 2387, 65534] {
            assert_eq!(root_warning(uid), None, "uid {uid}");
        }
    }
}
