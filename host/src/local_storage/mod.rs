//! Local storage belongs to one server: exclusive locks on the data dir
//! and on every local store a backend is granted (a directory, an SQLite
//! file, a local bucket).
//!
//! Two servers writing one CSV directory or one SQLite file each believe
//! they own it, and acknowledged writes of one vanish under the other's
//! rewrites. So a server takes an exclusive lock on each local store at
//! start and at reload, holds it while a backend uses the store, and a
//! second server is refused with the holder's pid and data dir. A
//! PostgreSQL database is shared by a fleet and takes no lock; an S3 bucket
//! is claimed with an object in it instead (see
//! [`crate::runtime::objects::claim`]), held here beside the locks.
//!
//! A lock is an advisory `flock` on a small file (`vsamrd.lock` in the data
//! dir, `.vsamrd.lock` in a directory, `FILE.vsamrd.lock` beside an SQLite
//! file) holding the holder's pid and data dir, for the refusal message.
//! The kernel drops it when its holder dies, even by SIGKILL.

use crate::config::{BackendSettings, Config};
use crate::runtime::objects::BucketSpec;
use crate::runtime::objects::claim::{BucketClaim, Holder};
use crate::runtime::sql::DatabaseUrl;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod lock;

pub use lock::StorageLock;

/// One local store a backend is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalStore {
    /// What kind of store (`directory`, `SQLite database`, `local bucket`).
    pub kind: &'static str,
    /// Where it is.
    pub path: PathBuf,
}

impl LocalStore {
    /// The lock file that claims the store.
    pub fn lock_path(&self) -> PathBuf {
        match self.kind {
            SQLITE => {
                let mut name = self.path.as_os_str().to_os_string();
                name.push(".vsamrd.lock");
                PathBuf::from(name)
            }
            _ => self.path.join(".vsamrd.lock"),
        }
    }
}

const DIRECTORY: &str = "directory";
const SQLITE: &str = "SQLite database";
const BUCKET: &str = "local bucket";

impl BackendSettings {
    /// The local stores this backend is granted: what `check-config` shows
    /// and what the server locks.
    pub fn local_stores(&self) -> Vec<LocalStore> {
        let mut stores = Vec::new();
        if let Some(directory) = &self.directory {
            stores.push(LocalStore {
                kind: DIRECTORY,
                path: directory.clone(),
            });
        }
        if let Some(DatabaseUrl::Sqlite(path)) = &self.database {
            stores.push(LocalStore {
                kind: SQLITE,
                path: path.clone(),
            });
        }
        if let Some(directory) = self.bucket.as_ref().and_then(|b| b.local_directory()) {
            stores.push(LocalStore {
                kind: BUCKET,
                path: directory.to_path_buf(),
            });
        }
        stores
    }
}

/// Refuses a configuration in which two backends share a local store, or
/// one's store lies inside another's directory: each plugin would take the
/// other's files for its own.
pub fn check_separate(config: &Config) -> Result<()> {
    let stores: Vec<(&str, LocalStore)> = config
        .backends
        .values()
        .flat_map(|b| b.local_stores().into_iter().map(|s| (b.name.as_str(), s)))
        .collect();
    for (i, (a_backend, a)) in stores.iter().enumerate() {
        for (b_backend, b) in &stores[i + 1..] {
            let inside = |outer: &LocalStore, inner: &LocalStore| {
                outer.kind != SQLITE && inner.path.starts_with(&outer.path)
            };
            if a.path == b.path || inside(a, b) || inside(b, a) {
                anyhow::bail!(
                    "backend {a_backend}'s {} {} and backend {b_backend}'s {} {} overlap: each backend needs storage of its own",
                    a.kind,
                    a.path.display(),
                    b.kind,
                    b.path.display()
                );
            }
        }
    }
    // The change log's files in a plugin's directory, or a plugin's in the
    // log's, would each be taken for the other's.
    let changes = &config.changes.directory;
    if !config.changes.followed(&config.mirrors).is_empty() {
        for (backend, store) in &stores {
            let overlap = store.path.starts_with(changes)
                || (store.kind != SQLITE && changes.starts_with(&store.path));
            if overlap {
                anyhow::bail!(
                    "changes.directory {} and backend {backend}'s {} {} overlap: the change log needs a directory of its own",
                    changes.display(),
                    store.kind,
                    store.path.display()
                );
            }
        }
    }
    Ok(())
}

/// Refuses a configuration whose local stores cannot be made: a directory
/// (or an SQLite file's directory) under a path that is a regular file.
/// Creates nothing (`check-config` calls it).
pub fn check_creatable(config: &Config) -> Result<()> {
    for backend in config.backends.values() {
        for store in backend.local_stores() {
            let directory = match store.kind {
                SQLITE => store
                    .path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                _ => store.path.clone(),
            };
            if let Some(blocker) = directory
                .ancestors()
                .find(|p| p.exists())
                .filter(|p| !p.is_dir())
            {
                anyhow::bail!(
                    "backend {}: {} {} cannot be made: {} is a file, not a directory",
                    backend.name,
                    store.kind,
                    store.path.display(),
                    blocker.display()
                );
            }
        }
    }
    Ok(())
}

/// The file in a change directory naming the data dir of the server that
/// records there.
const OWNER: &str = "owner";

/// Claims the change directory `dir` for the server of `data_dir` before
/// anything in it is read or written: its lock (refused while another
/// server runs on it), then its owner.
///
/// Why the owner too: a change directory outside the data dir (`[changes]
/// directory` absolute) can be named by a second server's configuration
/// while the first is stopped; that server would record its own changes
/// in the first one's log and stream and forget the first one's mirrors.
/// So the directory remembers whose it is, and another data dir is refused
/// until the operator says otherwise. A directory inside the data dir
/// moves and is copied with it, and simply follows it.
pub fn claim_change_directory(dir: &Path, data_dir: &Path) -> Result<StorageLock> {
    let what = format!("change log {}", dir.display());
    crate::paths::make_private_dir(dir).with_context(|| format!("{what}: cannot make it"))?;
    let lock = StorageLock::acquire(&dir.join("vsamrd.lock"), &what, data_dir)?;
    let canonical = |path: &Path| {
        path.canonicalize()
            .with_context(|| format!("{what}: resolving {}", path.display()))
    };
    let (here, ours) = (canonical(dir)?, canonical(data_dir)?);
    let owner_path = dir.join(OWNER);
    let recorded = match std::fs::read_to_string(&owner_path) {
        Ok(text) => Some(PathBuf::from(text.trim_end_matches('\n'))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(error).with_context(|| format!("{what}: reading {}", owner_path.display()));
        }
    };
    if let Some(owner) = recorded.as_ref().filter(|owner| **owner != ours)
        && !here.starts_with(&ours)
    {
        anyhow::bail!(
            "{what} holds the changes of the vsamrd whose data dir is {}, and this server's data dir is {}: give each server a change directory of its own ([changes] directory); if that data dir moved here, remove {} and start again",
            owner.display(),
            ours.display(),
            owner_path.display()
        );
    }
    if recorded.as_ref() != Some(&ours) {
        let mut text = ours.as_os_str().to_owned();
        text.push("\n");
        crate::durable::replace_file(&owner_path, text.as_encoded_bytes())
            .with_context(|| format!("{what}: writing {}", owner_path.display()))?;
    }
    Ok(lock)
}

/// The locks a server holds on its backends' local stores, by lock file,
/// and its claims on their S3 buckets, by bucket.
#[derive(Default)]
pub struct HeldStores {
    locks: BTreeMap<PathBuf, Arc<StorageLock>>,
    claims: BTreeMap<String, Arc<BucketClaim>>,
}

impl HeldStores {
    /// Locks every local store of `config`'s backends (at start).
    pub fn acquire(config: &Config) -> Result<Self> {
        let mut held = Self::default();
        held.locks = held.for_config(config)?;
        Ok(held)
    }

    /// The locks `config` needs: those already held, and new ones taken
    /// now (a reload; the caller makes them current with [`Self::keep`]).
    /// Fails, holding nothing new, if another server has one.
    pub fn for_config(&self, config: &Config) -> Result<BTreeMap<PathBuf, Arc<StorageLock>>> {
        check_separate(config)?;
        let mut locks = BTreeMap::new();
        for backend in config.backends.values() {
            for store in backend.local_stores() {
                let lock_path = store.lock_path();
                let lock = match self.locks.get(&lock_path) {
                    Some(lock) => lock.clone(),
                    None => Arc::new(StorageLock::acquire(
                        &lock_path,
                        &format!(
                            "backend {}: {} {}",
                            backend.name,
                            store.kind,
                            store.path.display()
                        ),
                        &config.server.data_dir,
                    )?),
                };
                locks.insert(lock_path, lock);
            }
        }
        Ok(locks)
    }

    /// The locks held now, by lock file.
    pub fn locks(&self) -> &BTreeMap<PathBuf, Arc<StorageLock>> {
        &self.locks
    }

    /// Holds exactly `locks` from now on: stores no backend uses any more
    /// are released.
    pub fn keep(&mut self, locks: BTreeMap<PathBuf, Arc<StorageLock>>) {
        self.locks = locks;
    }

    /// The claims on S3 buckets (each under a backend's `prefix`
    /// parameter) `config` needs: those already held, and new ones taken
    /// now (the caller makes them current with
    /// [`Self::keep_claims`]). Fails if another server holds one.
    pub async fn claims_for(&self, config: &Config) -> Result<BTreeMap<String, Arc<BucketClaim>>> {
        let holder = Holder::this_server(&config.listen.to_string(), &config.server.data_dir);
        let mut claims = BTreeMap::new();
        for backend in config.backends.values() {
            let Some(spec @ BucketSpec::S3(_)) = &backend.bucket else {
                continue;
            };
            let prefix = backend.bucket_prefix();
            let place = format!("{spec} {prefix:?}");
            if claims.contains_key(&place) {
                continue;
            }
            let claim = match self.claims.get(&place) {
                Some(claim) => claim.clone(),
                None => Arc::new(
                    BucketClaim::take(spec, prefix, &holder)
                        .await
                        .with_context(|| format!("backend {}", backend.name))?,
                ),
            };
            claims.insert(place, claim);
        }
        Ok(claims)
    }

    /// Holds exactly `claims` from now on: buckets no backend uses any more
    /// are given back.
    pub fn keep_claims(&mut self, claims: BTreeMap<String, Arc<BucketClaim>>) {
        self.claims = claims;
    }

    /// The bucket claims held now.
    pub fn claims(&self) -> Vec<Arc<BucketClaim>> {
        self.claims.values().cloned().collect()
    }

    /// Lets go of every lock and claim (the server stopped).
    pub async fn release_all(&mut self) {
        self.locks.clear();
        for claim in std::mem::take(&mut self.claims).into_values() {
            claim.release().await;
        }
    }
}
