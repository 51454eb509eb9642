//! The memory the units of work of all connections may hold together.
//! `max_unit_mb` bounds one connection's unit; this bounds them all, so
//! that many connections each growing a unit up to its own limit cannot
//! exhaust the server (`server.units_memory_mb`).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of changed records held by every unit of work, against a limit.
#[derive(Debug)]
pub struct UnitMemory {
    limit: usize,
    used: AtomicUsize,
}

impl UnitMemory {
    /// A budget of `mib` MiB.
    pub fn new(mib: u64) -> Self {
        Self {
            limit: usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            used: AtomicUsize::new(0),
        }
    }

    /// The default for this machine: an eighth of its memory, between
    /// 256 MiB and 16 GiB.
    pub fn default_mib() -> u64 {
        (crate::machine::memory_mib() / 8).clamp(256, 16 << 10)
    }

    /// Takes `bytes` more for a unit; false (nothing taken) if the units
    /// together would hold more than the limit.
    pub fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    /// Gives back `bytes` a unit no longer holds.
    pub fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes held by every unit now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The limit in MiB, for messages.
    pub fn limit_mib(&self) -> usize {
        self.limit >> 20
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_take_up_to_the_limit_and_give_back() {
        let memory = UnitMemory::new(1);
        assert!(memory.take(600 << 10));
        assert!(!memory.take(600 << 10), "over the limit: refused");
        assert_eq!(memory.used(), 600 << 10, "a refusal takes nothing");
        assert!(memory.take(424 << 10), "exactly the limit");
        memory.give_back(600 << 10);
        assert!(memory.take(600 << 10));
        assert_eq!(memory.used(), 1 << 20);
    }
}
