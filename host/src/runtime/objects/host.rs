//! The `objects` interface a plugin imports, served by its instance's
//! [`BucketAccess`]: the host functions of the object-store capability.

use super::ObjectGrant;
use crate::runtime::bindings::wit_objects::{self, Object, ObjectError, ObjectInfo, Write};
use crate::runtime::storage_faults::StorageFaults;
use std::sync::Arc;

/// An instance's way to its backend's bucket: every call fails
/// `not-granted` when the backend has none.
#[derive(Default)]
pub struct BucketAccess {
    grant: Option<Arc<ObjectGrant>>,
    /// The faults its writes meet (the conformance kit's; none in a
    /// server).
    faults: Option<Arc<StorageFaults>>,
}

const ANSWER_LOST: &str = "storage fault: the object store took this write, then the connection broke before its answer (injected by the conformance kit)";

const STORE_GONE: &str =
    "storage fault: the object store is gone (injected by the conformance kit)";

impl BucketAccess {
    /// Access to `grant` (none: every call fails `not-granted`), its
    /// writes meeting `faults`.
    pub fn new(grant: Option<Arc<ObjectGrant>>, faults: Option<Arc<StorageFaults>>) -> Self {
        Self { grant, faults }
    }

    fn bucket(&self) -> Result<Arc<ObjectGrant>, ObjectError> {
        if self.faults.as_ref().is_some_and(|f| f.object_store_gone()) {
            return Err(ObjectError::Unavailable(STORE_GONE.into()));
        }
        self.grant.clone().ok_or(ObjectError::NotGranted)
    }

    /// A write's answer as the plugin gets it: lost if the faults say so
    /// (the write was made all the same).
    fn answer<T>(&self, made: Result<T, ObjectError>) -> Result<T, ObjectError> {
        match (&made, &self.faults) {
            (Ok(_), Some(faults)) if faults.object_answer_lost() => {
                Err(ObjectError::Unavailable(ANSWER_LOST.into()))
            }
            _ => made,
        }
    }
}

impl wit_objects::Host for BucketAccess {
    async fn get(&mut self, name: String) -> Result<Option<Object>, ObjectError> {
        self.bucket()?.get(&name).await
    }
    async fn get_many(&mut self, names: Vec<String>) -> Result<Vec<Option<Object>>, ObjectError> {
        self.bucket()?.get_many(&names).await
    }
    async fn head(&mut self, name: String) -> Result<Option<ObjectInfo>, ObjectError> {
        self.bucket()?.head(&name).await
    }
    async fn put(&mut self, name: String, body: Vec<u8>) -> Result<String, ObjectError> {
        let made = self
            .bucket()?
            .put(&name, body, object_store::PutMode::Overwrite)
            .await;
        self.answer(made)
    }
    async fn put_if_absent(&mut self, name: String, body: Vec<u8>) -> Result<String, ObjectError> {
        let made = self
            .bucket()?
            .put(&name, body, object_store::PutMode::Create)
            .await;
        self.answer(made)
    }
    async fn put_if_match(
        &mut self,
        name: String,
        body: Vec<u8>,
        etag: String,
    ) -> Result<String, ObjectError> {
        let made = self.bucket()?.put_if_match(&name, body, etag).await;
        self.answer(made)
    }
    async fn put_many(&mut self, writes: Vec<Write>) -> Vec<Result<String, ObjectError>> {
        match self.bucket() {
            Ok(bucket) => {
                let made = bucket.put_many(writes).await;
                made.into_iter().map(|made| self.answer(made)).collect()
            }
            Err(error) => vec![Err(error); writes.len()],
        }
    }
    async fn delete(&mut self, name: String) -> Result<(), ObjectError> {
        let made = self.bucket()?.delete(&name).await;
        self.answer(made)
    }
    async fn list(
        &mut self,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> Result<Vec<ObjectInfo>, ObjectError> {
        self.bucket()?
            .list(&prefix, start_after.as_deref(), limit)
            .await
    }
}
