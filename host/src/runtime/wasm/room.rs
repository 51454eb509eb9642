//! How many plugin instances the engine holds at once.
//!
//! Instances come from wasmtime's pooling allocator (an instance in tens
//! of microseconds, which a fault's replacement and a reader need), whose
//! slots are fixed when the engine is built: each linear memory's slot
//! reserves 4 GiB of address space ([`MEMORY_SLOT_BYTES`]), whether used
//! or not. A fixed 256 slots stopped vsamrd at start past about 250
//! backends ("maximum concurrent limit of 256 for component instances
//! reached"). So the room is sized from the configuration at start: each
//! backend's writer and readers, twice over (a reload that swaps a
//! backend's plugin starts the new instances while the old ones still
//! serve), and room for what a reload adds; at least [`MIN_INSTANCES`],
//! at most [`MAX_INSTANCES`] (32 TiB of the 128 TiB of address space a
//! process has). A reload whose instances, with the ones it replaces, would
//! not fit is refused, saying a restart applies it.

use crate::runtime::BackendSettings;
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use wasmtime::PoolingAllocationConfig;

/// The fewest component instances the engine has room for.
pub const MIN_INSTANCES: u32 = 256;

/// The most: with `MEMORIES_PER_INSTANCE` memories each, 32 TiB of
/// address space.
pub const MAX_INSTANCES: u32 = 4096;

/// Room left beside twice the configuration's instances, for backends a
/// reload adds.
const ADDED_BY_RELOADS: u32 = 64;

/// Linear memories per component instance (a component built for WASI
/// has one or two; interpreters a few).
const MEMORIES_PER_INSTANCE: u32 = 2;

/// The address space each memory's slot reserves: the most a plugin's
/// memory may grow to (a backend's `memory_mb` limits it further).
pub const MEMORY_SLOT_BYTES: usize = 4 << 30;

/// The instances `backends` run at once when nothing is swapped: each
/// backend's writer and its readers.
pub fn instances_of(backends: &BTreeMap<String, BackendSettings>) -> u32 {
    let instances: usize = backends.values().map(|b| 1 + b.readers).sum();
    u32::try_from(instances).unwrap_or(u32::MAX)
}

/// The room an engine serving `backends` is built with, or why none can
/// hold them.
pub fn room_for(backends: &BTreeMap<String, BackendSettings>) -> Result<u32> {
    let running = instances_of(backends);
    let room = running
        .saturating_mul(2)
        .saturating_add(ADDED_BY_RELOADS)
        .max(MIN_INSTANCES);
    if room > MAX_INSTANCES {
        bail!(
            "the configuration's {} backends run {running} plugin instances (a writer each, and their readers), and vsamrd holds at most {} at once, with room for a reload to replace each: use fewer backends, or fewer readers",
            backends.len(),
            (MAX_INSTANCES - ADDED_BY_RELOADS) / 2
        );
    }
    Ok(room)
}

/// Whether a reload from `old` to `new` backends fits an engine with room
/// for `room` instances: at its peak, every new backend's instances run
/// beside every old one's.
pub fn reload_fits(
    room: u32,
    old: &BTreeMap<String, BackendSettings>,
    new: &BTreeMap<String, BackendSettings>,
) -> Result<()> {
    let (before, after) = (instances_of(old), instances_of(new));
    if before.saturating_add(after) > room {
        bail!(
            "the new configuration runs {after} plugin instances, and while it replaces the {before} that serve now vsamrd would need room for {}; it was started with room for {room} (sized from the configuration it started with): restart vsamrd to apply this configuration",
            before + after
        );
    }
    Ok(())
}

/// The pooling allocator's limits for `room` component instances.
pub fn pool(room: u32) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(room)
        .total_core_instances(room * 8)
        .total_memories(room * MEMORIES_PER_INSTANCE)
        .total_tables(room * 4)
        // Each store keeps the stack of its async calls between them.
        .total_stacks(room)
        .max_memory_size(MEMORY_SLOT_BYTES);
    pool
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(count: usize, readers: usize) -> BTreeMap<String, BackendSettings> {
        (0..count)
            .map(|i| {
                let settings = BackendSettings {
                    name: format!("b{i}"),
                    plugin: "sql".into(),
                    directory: None,
                    database: None,
                    bucket: None,
                    log: false,
                    params: Vec::new(),
                    call_timeout_ms: 5000,
                    memory_limit: 1 << 30,
                    readers,
                    storage_faults: None,
                };
                (format!("b{i}"), settings)
            })
            .collect()
    }

    #[test]
    fn the_room_doubles_the_configured_instances_within_its_bounds() {
        assert_eq!(room_for(&backends(3, 0)).unwrap(), MIN_INSTANCES);
        assert_eq!(room_for(&backends(300, 0)).unwrap(), 664);
        assert_eq!(room_for(&backends(100, 4)).unwrap(), 1064);
        let refused = room_for(&backends(300, 15)).unwrap_err().to_string();
        assert!(
            refused.starts_with("the configuration's 300 backends run 4800 plugin instances"),
            "{refused}"
        );
        assert!(refused.contains("at most 2016 at once"), "{refused}");
    }

    #[test]
    fn a_reload_fits_while_old_and_new_instances_fit_together() {
        let room = room_for(&backends(300, 0)).unwrap();
        reload_fits(room, &backends(300, 0), &backends(300, 0)).unwrap();
        reload_fits(room, &backends(300, 0), &backends(364, 0)).unwrap();
        let refused = reload_fits(room, &backends(300, 0), &backends(365, 0))
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("room for 665; it was started with room for 664"),
            "{refused}"
        );
        assert!(refused.contains("restart vsamrd to apply"), "{refused}");
    }
}
