//! Instances of the plugin under test made one after another on the same
//! storage, below vsamrd: how the store-level checks drop an instance (a
//! unit rolled back, a crash) and let a new one find what it left.

use crate::check::{Failure, Step, fail};
use crate::server::config_for_plugin;
use crate::subject::{Native, Subject};
use std::collections::BTreeMap;
use std::sync::Arc;
use vsam_host::runtime::call::{Call, RecordStore, Reply};
use vsam_host::runtime::storage_faults::StorageFaults;
use vsam_host::runtime::{
    BackendSettings, LoadedPlugin, PluginRuntime, load_plugins, prepare_backend, start_stores,
};
use vsam_plugin_sdk::{Dataset, Direction, Start};

/// The plugin loaded once, its storage in a fresh data directory kept
/// until this value is dropped; [`Instances::fresh`] makes a new instance
/// on that storage.
pub(crate) struct Instances {
    /// The faults every instance's file I/O meets (none until armed; a
    /// native store's I/O meets none).
    pub(crate) faults: Option<Arc<StorageFaults>>,
    made_from: MadeFrom,
    data_dir: tempfile::TempDir,
}

enum MadeFrom {
    Component {
        settings: Box<BackendSettings>,
        plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    },
    Native(Native),
}

fn failure(error: anyhow::Error) -> Failure {
    Failure(format!("{error:#}"))
}

impl Instances {
    /// A new instance with its `init` run, as vsamrd makes one after a
    /// fault or at a start.
    pub(crate) fn fresh(&self) -> Step<Box<dyn RecordStore>> {
        match &self.made_from {
            MadeFrom::Component { settings, plugins } => {
                let setup = prepare_backend(settings, plugins, None).map_err(failure)?;
                let stores =
                    start_stores(&setup.plugin, settings, &setup.grants).map_err(failure)?;
                Ok(stores.writer)
            }
            MadeFrom::Native(native) => Ok((native.0)(self.data_dir.path())),
        }
    }
}

/// Runs `check` on a thread of its own (plugin calls made through
/// [`RecordStore::call`] block it) with instances of `subject`.
pub(crate) async fn with_instances<T: Send + 'static>(
    subject: &Subject,
    check: impl FnOnce(&Instances) -> Step<T> + Send + 'static,
) -> Step<T> {
    let data_dir = tempfile::tempdir().map_err(|e| Failure(e.to_string()))?;
    let instances = match &subject.native {
        Some(native) => Instances {
            faults: None,
            made_from: MadeFrom::Native(native.clone()),
            data_dir,
        },
        None => {
            let config = config_for_plugin(
                data_dir.path(),
                &subject.plugin,
                &subject.params,
                &subject.grants,
            )
            .map_err(failure)?;
            let runtime =
                PluginRuntime::new(subject.compiled.clone(), tokio::runtime::Handle::current())
                    .map_err(failure)?;
            let plugins =
                load_plugins(&config.plugins, &runtime, &BTreeMap::new()).map_err(failure)?;
            let faults = Arc::new(StorageFaults::default());
            let mut settings = config.backends["under-test"].clone();
            settings.storage_faults = Some(faults.clone());
            Instances {
                faults: Some(faults),
                made_from: MadeFrom::Component {
                    settings: Box::new(settings),
                    plugins,
                },
                data_dir,
            }
        }
    };
    tokio::task::spawn_blocking(move || check(&instances))
        .await
        .map_err(|e| Failure(format!("the check panicked: {e}")))?
}

pub(crate) fn call(store: &mut dyn RecordStore, call: Call) -> Step<Reply> {
    let name = call.name();
    store
        .call(call)
        .map_err(|e| Failure(format!("{name}: {e}")))
}

/// Every record of `ds`, in key order, through `scan` calls of 3 records
/// (so that a scan resumes after a key, as a browse does).
pub(crate) fn scan_all(store: &mut dyn RecordStore, ds: &Dataset) -> Step<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut from = Start::Edge;
    loop {
        let entries = match call(store, Call::Scan(ds.clone(), from, Direction::Forward, 3))? {
            Reply::Entries(entries) => entries,
            other => return fail(format!("scan answered {other:?}")),
        };
        let Some(last) = entries.last() else {
            return Ok(out);
        };
        from = Start::Exclusive(last.key.clone());
        out.extend(entries.into_iter().map(|entry| entry.value));
        if out.len() > 1000 {
            return fail("scan never reached the end of 5 records");
        }
    }
}
