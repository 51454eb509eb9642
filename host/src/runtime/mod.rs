//! The plugin runtime: loading WebAssembly plugins, sandboxing their
//! instances, and the tasks that serve each backend.

pub mod background;
mod bindings;
pub mod builtin;
pub mod call;
mod convert;
pub mod objects;
pub mod settings;
pub mod sql;
pub mod storage_faults;
pub mod wasm;
pub mod worker;

use anyhow::{Context, Result};
pub use settings::{AppliedPlace, BackendSettings, PluginSource};
use std::collections::BTreeMap;
use std::sync::Arc;
pub use wasm::{Grants, LoadedPlugin, PluginRuntime, Role, WasmStore, max_resources};
pub use worker::{BackendHandle, GenerationStatus, VersionInfo};

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

/// The plugins named in `sources`, compiled and checked against the
/// contract. A plugin whose bytes are those of one in `loaded` is reused,
/// not compiled again: a version is identified by its content.
pub fn load_plugins(
    sources: &BTreeMap<String, PluginSource>,
    runtime: &PluginRuntime,
    loaded: &BTreeMap<String, Arc<LoadedPlugin>>,
) -> Result<BTreeMap<String, Arc<LoadedPlugin>>> {
    let mut plugins = BTreeMap::new();
    for (name, source) in sources {
        let bytes = plugin_bytes(name, source)?;
        let hash = wasm::content_hash(&bytes);
        let plugin = match loaded.get(name) {
            Some(same) if same.content_hash == hash => same.clone(),
            _ => {
                let plugin = runtime.load(name, &bytes)?;
                tracing::info!(plugin = %name, hash = %&plugin.content_hash[..12], "plugin loaded");
                plugin
            }
        };
        plugins.insert(name.clone(), plugin);
    }
    Ok(plugins)
}

/// A backend's stores, started: the writer and its readers, each a live
/// instance whose `init` has run (the health check: the plugin started
/// with the backend's parameters and grants).
pub struct StartedStores {
    /// The instance that runs writes.
    pub writer: Box<dyn call::RecordStore>,
    /// The instances that serve lookups besides it.
    pub readers: Vec<Box<dyn call::RecordStore>>,
}

/// Instantiates `plugin` for a backend, writer and readers, and runs each
/// instance's `init`; fails with the reason if any cannot start.
pub fn start_stores(
    plugin: &Arc<LoadedPlugin>,
    settings: &BackendSettings,
    grants: &Grants,
) -> Result<StartedStores> {
    let name = &settings.name;
    // One writer, then the readers, each its own instance and session.
    let stores = (0..=settings.readers)
        .map(|n| {
            let role = if n == 0 { Role::Writer } else { Role::Reader };
            WasmStore::new(plugin.clone(), settings.clone(), grants.clone()).with_role(role)
        })
        .collect::<Vec<_>>();
    // A call blocks its thread until the plugin answers, which a tokio
    // thread may not do: start the instances on a plain one, like the
    // workers that will own them.
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
    Ok(StartedStores {
        writer,
        readers: stores.collect(),
    })
}

/// What runs a backend: its settings, the grants connected for them and
/// the plugin version, so a reload can tell what changed.
#[derive(Clone)]
pub struct BackendSetup {
    /// The settings it was started with.
    pub settings: BackendSettings,
    /// Its database and bucket.
    pub grants: Grants,
    /// Its plugin version.
    pub plugin: Arc<LoadedPlugin>,
}

/// Backends as running: setup and handle by name.
pub type Backends = BTreeMap<String, (BackendSetup, BackendHandle)>;

/// Compiles every plugin of `sources` and starts every backend of
/// `settings`, each with a live, initialised instance, so that a plugin
/// that cannot start stops vsamrd at once with the reason.
pub fn start_backends(
    sources: &BTreeMap<String, PluginSource>,
    settings: &BTreeMap<String, BackendSettings>,
    runtime: &PluginRuntime,
) -> Result<(BTreeMap<String, Arc<LoadedPlugin>>, Backends)> {
    let plugins = load_plugins(sources, runtime, &BTreeMap::new())?;
    let mut backends = BTreeMap::new();
    for (name, settings) in settings {
        let setup = prepare_backend(settings, &plugins, None)?;
        let stores = start_stores(&setup.plugin, settings, &setup.grants)?;
        let version = setup.plugin.version_info().serving(settings);
        let handle = BackendHandle::spawn(name, version, stores.writer, stores.readers)
            .with_context(|| format!("backend {name}: cannot start its serving tasks"))?;
        log_backend(settings, "backend ready");
        backends.insert(name.clone(), (setup, handle));
    }
    Ok((plugins, backends))
}

/// The setup for `settings`: its plugin from `plugins`, and its grants,
/// reused from `previous` when they are granted the same way (a plugin
/// swap keeps the backend's database connections).
pub fn prepare_backend(
    settings: &BackendSettings,
    plugins: &BTreeMap<String, Arc<LoadedPlugin>>,
    previous: Option<&BackendSetup>,
) -> Result<BackendSetup> {
    let plugin = plugins
        .get(settings.plugin.as_str())
        .with_context(|| {
            format!(
                "backend {}: plugin {} is not loaded",
                settings.name, settings.plugin
            )
        })?
        .clone();
    let grants = match previous {
        Some(old) if old.settings.grants_same_as(settings) => old.grants.clone(),
        _ => Grants::for_backend(settings, plugin.runtime())?,
    };
    Ok(BackendSetup {
        settings: settings.clone(),
        grants,
        plugin,
    })
}

/// Logs what a backend runs with.
pub fn log_backend(settings: &BackendSettings, what: &str) {
    tracing::info!(
        backend = %settings.name,
        plugin = %settings.plugin,
        directory = ?settings.directory,
        database = ?settings.database,
        bucket = ?settings.bucket,
        timeout_ms = settings.call_timeout_ms,
        memory_mb = settings.memory_limit >> 20,
        readers = settings.readers,
        "{what}"
    );
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
