//! The `objects` interface a plugin imports, served by its instance's
//! [`BucketAccess`]: the host functions of the object-store capability.

use super::ObjectGrant;
use crate::runtime::bindings::wit_objects::{self, Object, ObjectError, ObjectInfo, Write};
use std::sync::Arc;

/// An instance's way to its backend's bucket: every call fails
/// `not-granted` when the backend has none.
#[derive(Default)]
pub struct BucketAccess(pub Option<Arc<ObjectGrant>>);

impl BucketAccess {
    fn bucket(&self) -> Result<Arc<ObjectGrant>, ObjectError> {
        self.0.clone().ok_or(ObjectError::NotGranted)
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
        self.bucket()?
            .put(&name, body, object_store::PutMode::Overwrite)
            .await
    }
    async fn put_if_absent(&mut self, name: String, body: Vec<u8>) -> Result<String, ObjectError> {
        self.bucket()?
            .put(&name, body, object_store::PutMode::Create)
            .await
    }
    async fn put_if_match(
        &mut self,
        name: String,
        body: Vec<u8>,
        etag: String,
    ) -> Result<String, ObjectError> {
        self.bucket()?.put_if_match(&name, body, etag).await
    }
    async fn put_many(&mut self, writes: Vec<Write>) -> Vec<Result<String, ObjectError>> {
        match self.bucket() {
            Ok(bucket) => bucket.put_many(writes).await,
            Err(error) => vec![Err(error); writes.len()],
        }
    }
    async fn delete(&mut self, name: String) -> Result<(), ObjectError> {
        self.bucket()?.delete(&name).await
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
