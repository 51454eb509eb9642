//! What the runtime is given to start plugins and backends: plain values
//! that the configuration resolves to (see `crate::config`), so the
//! runtime never reads the configuration itself.

use super::objects::BucketSpec;
use super::sql::DatabaseUrl;
use std::path::PathBuf;

/// Where a plugin's code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Shipped inside vsamrd: `builtin:csv` or `builtin:memory`.
    Builtin(String),
    /// A `.wasm` component file.
    File(PathBuf),
}

/// Where a mirror on a backend records how far it applied a change log
/// (see `crate::changes::mirror`): beside the store the mirror keeps its
/// copy in, so that a data dir restored from an older copy, whose log ends
/// before that, is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppliedPlace {
    /// A table of the PostgreSQL database (`crate::fleet::mirrored`).
    Database(String),
    /// Files whose paths begin with this (beside an SQLite file, in a
    /// directory or a local bucket), one a change log and mirror.
    Files(PathBuf),
    /// Objects of an S3 bucket whose names begin with this.
    Bucket(BucketSpec, String),
}

/// A backend as the configuration resolved it: its plugin, what it is
/// granted, and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendSettings {
    /// Backend name.
    pub name: String,
    /// Plugin name.
    pub plugin: String,
    /// Granted directory (absolute or under the data dir), if any.
    pub directory: Option<PathBuf>,
    /// Granted database, if any.
    pub database: Option<DatabaseUrl>,
    /// Granted bucket, if any.
    pub bucket: Option<BucketSpec>,
    /// Whether plugin log lines reach the log.
    pub log: bool,
    /// `init` parameters.
    pub params: Vec<(String, String)>,
    /// Per-call time limit.
    pub call_timeout_ms: u64,
    /// Memory cap in bytes.
    pub memory_limit: u64,
    /// Reader instances besides the writer.
    pub readers: usize,
    /// Faults injected into the granted directory (the conformance kit's;
    /// never set from a configuration file).
    pub storage_faults: Option<std::sync::Arc<super::storage_faults::StorageFaults>>,
}

impl BackendSettings {
    /// True if no other server can write the backend's store: its grants
    /// are local (a directory, an SQLite file, a local bucket, which this
    /// server locks) or none, never a database server or a remote bucket.
    pub fn owns_its_store(&self) -> bool {
        let database_local = self
            .database
            .as_ref()
            .is_none_or(|database| matches!(database, super::sql::DatabaseUrl::Sqlite(_)));
        let bucket_local = self
            .bucket
            .as_ref()
            .is_none_or(|bucket| bucket.local_directory().is_some());
        database_local && bucket_local
    }

    /// True if it is granted storage on this machine's disks (a directory,
    /// an SQLite file, a local bucket): making its writes durable holds the
    /// calling thread in fsync.
    pub fn stores_on_local_disk(&self) -> bool {
        self.directory.is_some()
            || matches!(self.database, Some(super::sql::DatabaseUrl::Sqlite(_)))
            || self
                .bucket
                .as_ref()
                .is_some_and(|bucket| bucket.local_directory().is_some())
    }

    /// Where a mirror on this backend records how far it applied a change
    /// log, beside the store it copies into: the first of its database
    /// (PostgreSQL), its SQLite file, its directory, its bucket.
    pub fn applied_place(&self) -> Option<AppliedPlace> {
        const NAME: &str = ".vsamrd-mirror-applied.";
        if let Some(url) = self.shared_database() {
            return Some(AppliedPlace::Database(url));
        }
        if let Some(DatabaseUrl::Sqlite(path)) = &self.database {
            let mut beside = path.as_os_str().to_os_string();
            beside.push(NAME);
            return Some(AppliedPlace::Files(PathBuf::from(beside)));
        }
        let directory = self
            .directory
            .as_deref()
            .or_else(|| self.bucket.as_ref().and_then(|b| b.local_directory()));
        if let Some(directory) = directory {
            return Some(AppliedPlace::Files(directory.join(NAME)));
        }
        let bucket = self.bucket.clone()?;
        Some(AppliedPlace::Bucket(
            bucket,
            format!("{}{NAME}", self.bucket_prefix()),
        ))
    }

    /// The part of its bucket the backend keeps its objects under: the
    /// object store plugin's `prefix` parameter (empty: the whole bucket).
    pub fn bucket_prefix(&self) -> &str {
        self.params
            .iter()
            .find(|(name, _)| name == "prefix")
            .map_or("", |(_, value)| value.as_str())
    }

    /// The PostgreSQL database granted, which other servers may share.
    pub fn shared_database(&self) -> Option<String> {
        match &self.database {
            Some(super::sql::DatabaseUrl::Postgres(url)) => Some(url.clone()),
            _ => None,
        }
    }

    /// True if `other` is granted the same database and bucket (with the
    /// same request time limit), so its connections can be kept.
    pub fn grants_same_as(&self, other: &BackendSettings) -> bool {
        self.database == other.database
            && self.bucket == other.bucket
            && self.call_timeout_ms == other.call_timeout_ms
    }
}
