//! What `vsamr admin status` and `vsamr admin plugins` show, gathered from
//! the running backends' generations.

use super::AdminContext;
use crate::reload::unix_seconds;
use std::collections::BTreeMap;
use std::time::SystemTime;
use vsam_protocol::admin::{BackendRow, PluginVersionRow, StatusReport, UnitRow, UnitsMemory};

/// The server's status.
pub async fn status(context: &AdminContext) -> StatusReport {
    let routing = context.shared.routing();
    let counts = context.shared.catalog.count_by_backend();
    let backends = routing
        .backends
        .iter()
        .map(|(name, handle)| {
            let generations = handle.generations();
            let serving = &generations[0];
            BackendRow {
                name: name.clone(),
                plugin: serving.version.plugin.clone(),
                hash: serving.version.content_hash.clone(),
                datasets: counts.get(name).copied().unwrap_or(0),
                in_flight: generations.iter().map(|g| g.in_flight as u64).sum(),
                draining: generations.len() as u64 - 1,
            }
        })
        .collect();
    StatusReport {
        server: crate::server::server_banner(),
        uptime_s: SystemTime::now()
            .duration_since(context.started)
            .map_or(0, |d| d.as_secs()),
        listen: context.listen.to_string(),
        config: context
            .reloader
            .source()
            .path()
            .map_or("(embedded default)".into(), |p| p.display().to_string()),
        connections: context.shared.connections(),
        backends,
        last_reload: context.reloader.last_report(),
        migrations: context.migrations.rows(),
        units: context.shared.units().into_iter().map(unit_row).collect(),
        units_memory: Some(UnitsMemory {
            used: context.shared.unit_memory.used() as u64,
            limit: context.shared.unit_memory.limit() as u64,
        }),
        fleet: context.shared.fleet.status().await,
        refusing: crate::reload::storage::refusals(&context.shared),
    }
}

/// A unit of work as the status shows it.
pub fn unit_row(unit: crate::vsam::UnitSnapshot) -> UnitRow {
    UnitRow {
        connection: unit.session,
        identity: unit.identity,
        age_s: unit.age.as_secs(),
        records: unit.records as u64,
        bytes: unit.bytes as u64,
        datasets: unit.datasets,
    }
}

/// One row per plugin version: those serving or draining on a backend,
/// then those loaded that no backend runs.
pub async fn plugins(context: &AdminContext) -> Vec<PluginVersionRow> {
    let routing = context.shared.routing();
    let counts = context.shared.catalog.count_by_backend();
    let mut rows: BTreeMap<(String, String, bool), PluginVersionRow> = BTreeMap::new();
    for (name, handle) in &routing.backends {
        for generation in handle.generations() {
            let version = &generation.version;
            let row = rows
                .entry((
                    version.plugin.clone(),
                    version.content_hash.clone(),
                    !generation.serving,
                ))
                .or_insert_with(|| PluginVersionRow {
                    plugin: version.plugin.clone(),
                    hash: version.content_hash.clone(),
                    loaded_at: unix_seconds(version.loaded_at),
                    state: if generation.serving {
                        "serving"
                    } else {
                        "draining"
                    }
                    .into(),
                    backends: Vec::new(),
                    datasets: 0,
                    in_flight: 0,
                });
            if !row.backends.contains(name) {
                row.backends.push(name.clone());
                if generation.serving {
                    row.datasets += counts.get(name).copied().unwrap_or(0);
                }
            }
            row.in_flight += generation.in_flight as u64;
        }
    }
    for (name, plugin) in context.reloader.plugins().await {
        let used = rows
            .keys()
            .any(|(p, hash, _)| *p == name && *hash == plugin.content_hash);
        if !used {
            rows.insert(
                (name.clone(), plugin.content_hash.clone(), false),
                PluginVersionRow {
                    plugin: name,
                    hash: plugin.content_hash.clone(),
                    loaded_at: unix_seconds(plugin.loaded_at),
                    state: "loaded".into(),
                    backends: Vec::new(),
                    datasets: 0,
                    in_flight: 0,
                },
            );
        }
    }
    rows.into_values().collect()
}
