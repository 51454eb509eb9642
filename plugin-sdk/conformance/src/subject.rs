//! What the kit checks: a plugin (a component file, or a store type
//! compiled natively), its parameters and what it is granted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vsam_host::runtime::call::RecordStore;

/// What the backend under test is granted besides a directory of its own.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// A database: `sqlite:PATH` (relative to the fresh data directory) or
    /// a PostgreSQL URL.
    pub database: Option<String>,
    /// A bucket, as the TOML inline table of the backend's `bucket`
    /// setting: `{ directory = "objects" }` (under the fresh data
    /// directory) or `{ name = "vsam", endpoint = "http://...", ... }`.
    pub bucket: Option<String>,
    /// Reader instances besides the writer (they need a database).
    pub readers: usize,
}

/// What a check runs on: a plugin, its parameters and its grants.
#[derive(Clone, Debug)]
pub struct Subject {
    /// The plugin's component file (for a native store, its type's name).
    pub plugin: PathBuf,
    /// Parameters for its `init`.
    pub params: BTreeMap<String, String>,
    /// Its database and bucket, beside a directory of its own.
    pub grants: Grants,
    /// A store compiled natively instead of the component file (see
    /// [`crate::native`]).
    pub(crate) native: Option<Native>,
    /// Where the run keeps the component compiled, so that each check and
    /// server of one run compiles it once.
    pub(crate) compiled: Option<PathBuf>,
}

impl Subject {
    /// A plugin with no parameters and `grants`.
    pub fn new(plugin: &Path, grants: Grants) -> Self {
        Self {
            plugin: plugin.to_path_buf(),
            params: BTreeMap::new(),
            grants,
            native: None,
            compiled: None,
        }
    }
}

/// Makes an instance of a native store whose files live in a directory.
pub(crate) type MakeStore = dyn Fn(&Path) -> Box<dyn RecordStore> + Send + Sync;

/// A store compiled natively: how to make an instance of it.
#[derive(Clone)]
pub(crate) struct Native(pub(crate) Arc<MakeStore>);

impl std::fmt::Debug for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Native")
    }
}
