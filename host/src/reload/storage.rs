//! Notices local storage taken from under the running server.
//!
//! `rm -rf` of the data dir, a `mv` of a store, or a restore copied in a
//! store's place while vsamrd runs leaves it writing into files that are
//! no longer at their paths: SQLite and the CSV files go on writing into
//! unlinked files, and everything acknowledged from then on is gone at the
//! next start. So every [`LOOK_EVERY`] the lock files are looked at (the
//! data dir's `vsamrd.lock`, each local store's, the change log
//! directory's): one gone, or another file in its place, makes the
//! backends of that store (every backend, for the data dir, which holds
//! the catalog and the change log) refuse every request from then on,
//! R15=12 naming what happened, `/readyz` fail, and the log say what to
//! do. The change log's directory taken away (one outside the data dir,
//! or removed alone) makes every write to a dataset that mirrors or the
//! stream follow refuse instead: its changes would reach neither. A
//! restart, once the storage is back, ends it.

use super::Reloader;
use crate::local_storage::StorageLock;
use crate::vsam::Shared;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the lock files are looked at.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);

/// How often the lock files' modification times are set to now (see
/// [`StorageLock::touch`]).
const TOUCH_EVERY: Duration = Duration::from_secs(3600);

/// Looks at the lock files until the server is gone (see the module
/// documentation). Holds nothing of the server between looks: a server
/// dropped without stopping (its task aborted) lets go of its storage at
/// once, for another on the same storage. The files are looked at on a
/// blocking thread (a store on a network file system that hangs holds that
/// thread, one look at a time, not the runtime's).
pub async fn watch(
    reloader: Weak<Reloader>,
    shared: Weak<Shared>,
    data_dir_lock: Weak<StorageLock>,
) {
    let mut touched = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        let (Some(reloader), Some(shared), Some(data_dir_lock)) = (
            reloader.upgrade(),
            shared.upgrade(),
            data_dir_lock.upgrade(),
        ) else {
            return;
        };
        let mut stores = reloader.store_locks().await;
        drop(reloader);
        let data_dir = data_dir_lock.path().parent().map(Path::to_path_buf);
        // First: the data dir taken away says so for every backend, those
        // with stores inside it too.
        stores.insert(
            0,
            StoreLock {
                holder: Holder::DataDir,
                store: data_dir.unwrap_or_default(),
                lock: data_dir_lock,
            },
        );
        let followers = shared.changes.followers();
        if let Some(lock) = followers.as_ref().and_then(|f| f.directory_lock()) {
            stores.push(StoreLock {
                holder: Holder::ChangeLog,
                store: lock
                    .path()
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                lock,
            });
        }
        let touch = touched.elapsed() >= TOUCH_EVERY;
        let Ok(taken) = tokio::task::spawn_blocking(move || {
            if touch {
                stores.iter().for_each(|store| store.lock.touch());
            }
            stores
                .into_iter()
                .filter_map(|store| Some((store.lock.taken_away()?, store)))
                .collect::<Vec<_>>()
        })
        .await
        else {
            return;
        };
        if touch {
            touched = tokio::time::Instant::now();
        }
        for (how, store) in taken {
            let why = |what: &str, who: &str| {
                format!(
                    "{what} ({}) was {how} while vsamrd ran (its lock file {} is not the one vsamrd holds): what it writes now would be lost at its next start, so {who} refuses requests; put the storage back (or restore it) and restart vsamrd",
                    store.store.display(),
                    store.lock.path().display()
                )
            };
            match &store.holder {
                Holder::DataDir => {
                    let why = why("the data dir", "every backend");
                    for (name, backend) in shared.routing().backends.iter() {
                        refuse(name, backend, &why);
                    }
                }
                Holder::ChangeLog => {
                    let Some(followers) = &followers else {
                        continue;
                    };
                    let why = format!(
                        "the change log's directory {} was {how} while vsamrd ran (its lock file {} is not the one vsamrd holds): the changes of writes now would reach no mirror and no change stream, so writes to the datasets they follow are refused; put the directory back and restart vsamrd (or restart it as it is: the mirrors copy their datasets again, the stream begins a new log)",
                        store.store.display(),
                        store.lock.path().display()
                    );
                    if followers.lose(why.clone()) {
                        tracing::error!("{why}");
                    }
                }
                Holder::Backend(name) => {
                    if let Some(backend) = shared.backend(name) {
                        let why = why(
                            &format!("backend {name}'s storage"),
                            &format!("backend {name}"),
                        );
                        refuse(name, &backend, &why);
                    }
                }
            }
        }
    }
}

/// What the server refuses because storage was taken from under it, and
/// why: each backend that refuses every request, and the change log that
/// refuses the writes it would record. For `/readyz` and `vsamr admin
/// status`.
pub fn refusals(shared: &Shared) -> Vec<String> {
    let mut refusals: Vec<String> = shared
        .routing()
        .backends
        .iter()
        .filter_map(|(name, backend)| Some(format!("backend {name}: {}", backend.refusal()?)))
        .collect();
    refusals.extend(shared.changes.lost().map(|why| why.to_string()));
    refusals
}

/// A lock on a local store, and whose it is.
pub struct StoreLock {
    /// Who uses the store.
    pub holder: Holder,
    /// The store: a directory, an SQLite file.
    pub store: PathBuf,
    /// Its lock.
    pub lock: Arc<StorageLock>,
}

/// Who uses a watched store, and so what its loss stops.
pub enum Holder {
    /// The data dir: the catalog, and every backend.
    DataDir,
    /// A backend's local store: that backend.
    Backend(String),
    /// The change log's directory: writes to followed datasets.
    ChangeLog,
}

/// Makes `backend` refuse every call for `why`, saying so once.
fn refuse(name: &str, backend: &crate::runtime::BackendHandle, why: &str) {
    if backend.refusal().is_some() {
        return;
    }
    tracing::error!(backend = %name, "{why}");
    backend.refuse(why.to_string());
}
