//! A local directory as a bucket, through `object_store`'s file-system
//! store, with what it lacks: replacement only at a given version (done
//! under a lock: vsamrd is the directory's only writer) and listings in
//! name order from a start-after name.

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, PutResult,
    UpdateVersion,
};
use std::collections::BinaryHeap;
use std::path::Path as FsPath;
use tokio::sync::Mutex;

/// One directory.
pub struct LocalBucket {
    store: LocalFileSystem,
    /// Held from the version check to the replacement of `put-if-match`,
    /// and by plain puts and deletes, so that none slips in between.
    writes: Mutex<()>,
}

impl LocalBucket {
    /// The directory, created if missing. Writes are synced to disk before
    /// they return.
    pub fn new(directory: &FsPath) -> anyhow::Result<Self> {
        crate::paths::make_private_dir(directory)?;
        Ok(Self {
            store: LocalFileSystem::new_with_prefix(directory)?.with_fsync(true),
            writes: Mutex::new(()),
        })
    }

    /// The store.
    pub fn store(&self) -> &dyn ObjectStore {
        &self.store
    }

    /// Stores `payload` under `path` in `mode`. A replacement at a given
    /// version is checked and done under the write lock.
    pub async fn put(
        &self,
        path: &Path,
        payload: PutPayload,
        mode: PutMode,
    ) -> object_store::Result<PutResult> {
        let _held = self.writes.lock().await;
        let mode = match mode {
            PutMode::Update(version) => {
                self.check_version(path, &version).await?;
                PutMode::Overwrite
            }
            mode => mode,
        };
        let options = PutOptions {
            mode,
            ..Default::default()
        };
        self.store.put_opts(path, payload, options).await
    }

    async fn check_version(
        &self,
        path: &Path,
        version: &UpdateVersion,
    ) -> object_store::Result<()> {
        let precondition = |why: &str| object_store::Error::Precondition {
            path: path.to_string(),
            source: why.to_string().into(),
        };
        match self.store.head(path).await {
            Ok(meta) if meta.e_tag == version.e_tag => Ok(()),
            Ok(_) => Err(precondition("the object has another version")),
            Err(object_store::Error::NotFound { .. }) => {
                Err(precondition("the object does not exist"))
            }
            Err(e) => Err(e),
        }
    }

    /// Removes `path`, under the write lock.
    pub async fn delete(&self, path: &Path) -> object_store::Result<()> {
        let _held = self.writes.lock().await;
        self.store.delete(path).await
    }

    /// Up to `limit` objects under the name prefix `prefix` after
    /// `start_after`, in name order. The directory holding the prefix is
    /// walked whole (buckets of this kind hold few, large objects), keeping
    /// only the `limit` first names seen so far: a listing's memory is its
    /// page, whatever the directory holds.
    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> object_store::Result<Vec<ObjectMeta>> {
        use futures::TryStreamExt;
        let directory = prefix.rfind('/').map(|slash| Path::from(&prefix[..slash]));
        let first = self
            .store
            .list(directory.as_ref())
            .try_fold(FirstNames::new(limit), |mut first, meta| {
                let name = meta.location.as_ref();
                if name.starts_with(prefix) && start_after.is_none_or(|after| name > after) {
                    first.offer(meta);
                }
                futures::future::ready(Ok(first))
            })
            .await?;
        Ok(first.in_order())
    }
}

/// The `limit` least names of a listing, whatever its length: a heap of
/// at most `limit` objects, the greatest on top to be dropped first.
struct FirstNames {
    limit: usize,
    heap: BinaryHeap<ByName>,
}

impl FirstNames {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            heap: BinaryHeap::new(),
        }
    }

    fn offer(&mut self, meta: ObjectMeta) {
        if self.heap.len() < self.limit {
            self.heap.push(ByName(meta));
        } else if let Some(mut greatest) = self.heap.peek_mut()
            && meta.location.as_ref() < greatest.0.location.as_ref()
        {
            *greatest = ByName(meta);
        }
    }

    fn in_order(self) -> Vec<ObjectMeta> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|by_name| by_name.0)
            .collect()
    }
}

/// An object ordered by its name alone.
struct ByName(ObjectMeta);

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        self.0.location == other.0.location
    }
}

impl Eq for ByName {}

impl PartialOrd for ByName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.location.as_ref().cmp(other.0.location.as_ref())
    }
}
