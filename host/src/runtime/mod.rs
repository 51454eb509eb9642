//! The plugin runtime: loading WebAssembly plugins, sandboxing their
//! instances, and the worker threads that serve each backend.

pub mod builtin;
pub mod call;
mod convert;
pub mod objects;
pub mod sql;
pub mod wasm;
pub mod worker;

use crate::config::{Config, PluginSource};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
pub use wasm::{Grants, LoadedPlugin, PluginRuntime, WasmStore};
pub use worker::BackendHandle;

/// Reads a plugin's component bytes.
pub fn plugin_bytes(name: &str, source: &PluginSource) -> Result<Vec<u8>> {
    match source {
        PluginSource::Builtin(builtin) => builtin::bytes(builtin)
            .map(<[u8]>::to_vec)
            .with_context(|| format!("plugin {name}: no builtin {builtin}")),
        PluginSource::File(path) => std::fs::read(path)
            .with_context(|| format!("plugin {name}: cannot read {}", path.display())),
    }
}

/// Compiles every configured plugin and starts every backend, each with a
/// live, initialised instance, so that a plugin that cannot start stops
/// vsamrd at once with the reason.
pub fn start_backends(
    config: &Config,
    runtime: &PluginRuntime,
) -> Result<BTreeMap<String, BackendHandle>> {
    let mut plugins: HashMap<&str, Arc<LoadedPlugin>> = HashMap::new();
    for (name, source) in &config.plugins {
        let bytes = plugin_bytes(name, source)?;
        let plugin = runtime.load(name, &bytes)?;
        tracing::info!(plugin = %name, hash = %&plugin.content_hash[..12], "plugin loaded");
        plugins.insert(name, plugin);
    }
    let mut backends = BTreeMap::new();
    for (name, settings) in &config.backends {
        let plugin = plugins
            .get(settings.plugin.as_str())
            .with_context(|| format!("backend {name}: plugin {} is not loaded", settings.plugin))?;
        let grants = Grants::for_backend(settings)?;
        // One writer, then the readers, each its own instance and session.
        let stores = (0..=settings.readers)
            .map(|_| WasmStore::new(plugin.clone(), settings.clone(), grants.clone()))
            .collect::<Vec<_>>();
        // WASI's synchronous calls may not run on a tokio thread: start the
        // first instances on a plain one, like the workers that will own them.
        let mut stores = std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    stores
                        .into_iter()
                        .map(|mut store| store.ensure_instance().map(|()| store))
                        .collect::<Result<Vec<_>, _>>()
                })
                .join()
                .map_err(|_| anyhow::anyhow!("backend {name}: the plugin start panicked"))
        })??
        .into_iter()
        .map(|store| Box::new(store) as Box<dyn call::RecordStore>);
        let writer = stores.next().expect("the writer is the first store");
        let handle = BackendHandle::spawn(name, &settings.plugin, writer, stores.collect())
            .with_context(|| format!("backend {name}: cannot start its worker threads"))?;
        tracing::info!(
            backend = %name,
            plugin = %settings.plugin,
            directory = ?settings.directory,
            database = ?settings.database,
            bucket = ?settings.bucket,
            timeout_ms = settings.call_timeout_ms,
            memory_mb = settings.memory_limit >> 20,
            readers = settings.readers,
            "backend ready"
        );
        backends.insert(name.clone(), handle);
    }
    Ok(backends)
}

/// An error and its causes, `: `-separated (a TLS or connection failure
/// says what went wrong only in its causes).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
