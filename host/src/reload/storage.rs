//! Notices local storage taken from under the running server.
//!
//! `rm -rf` of the data dir, a `mv` of a store, or a restore copied in a
//! store's place while vsamrd runs leaves it writing into files that are
//! no longer at their paths: SQLite and the CSV files go on writing into
//! unlinked files, and everything acknowledged from then on is gone at the
//! next start. So every [`LOOK_EVERY`] the lock files are looked at (the
//! data dir's `vsamrd.lock`, each local store's): one gone, or another
//! file in its place, makes the backends of that store (every backend,
//! for the data dir, which holds the catalog and the change log) refuse
//! every request from then on, R15=12 naming what happened, `/readyz`
//! fail, and the log say what to do. A restart, once the storage is back,
//! ends it.

use super::Reloader;
use crate::local_storage::StorageLock;
use crate::vsam::Shared;
use std::path::Path;
use std::sync::Weak;
use std::time::Duration;

/// How often the lock files are looked at.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);

/// How often the lock files' modification times are set to now (see
/// [`StorageLock::touch`]).
const TOUCH_EVERY: Duration = Duration::from_secs(3600);

/// Looks at the lock files until the server is gone (see the module
/// documentation). Holds nothing of the server between looks: a server
/// dropped without stopping (its task aborted) lets go of its storage at
/// once, for another on the same storage.
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
        let stores = reloader.store_locks().await;
        if let Some(how) = data_dir_lock.taken_away() {
            let why = taken_away("the data dir", data_dir_lock.path(), how, "every backend");
            for (name, backend) in shared.routing().backends.iter() {
                refuse(name, backend, &why);
            }
        }
        for (name, lock) in &stores {
            if let Some(how) = lock.taken_away()
                && let Some(backend) = shared.backend(name)
            {
                let store = format!("backend {name}'s storage");
                let why = taken_away(&store, lock.path(), how, &format!("backend {name}"));
                refuse(name, &backend, &why);
            }
        }
        if touched.elapsed() >= TOUCH_EVERY {
            data_dir_lock.touch();
            stores.iter().for_each(|(_, lock)| lock.touch());
            touched = tokio::time::Instant::now();
        }
    }
}

/// Why requests are refused: what was taken away, and what to do.
fn taken_away(what: &str, lock: &Path, how: &str, who: &str) -> String {
    let place = lock.parent().unwrap_or(lock);
    format!(
        "{what} ({}) was {how} while vsamrd ran (its lock file {} is not the one vsamrd holds): what it writes now would be lost at its next start, so {who} refuses requests; put the storage back (or restore it) and restart vsamrd",
        place.display(),
        lock.display()
    )
}

/// Makes `backend` refuse every call for `why`, saying so once.
fn refuse(name: &str, backend: &crate::runtime::BackendHandle, why: &str) {
    if backend.refusal().is_some() {
        return;
    }
    tracing::error!(backend = %name, "{why}");
    backend.refuse(why.to_string());
}
