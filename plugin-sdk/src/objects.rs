//! The object-store bucket a backend is granted (`bucket = ...` in the host
//! configuration), for plugins that keep records in objects.
//!
//! The host owns the client: the plugin names objects inside the bucket and
//! never learns the endpoint or the credentials. Compiled natively (tests,
//! in-process baselines) every call fails with [`ObjectError::NotGranted`].

pub use crate::bindings::vsam::backend::objects::{
    Condition, Object, ObjectError, ObjectInfo, Write,
};

#[cfg(target_arch = "wasm32")]
use crate::bindings::vsam::backend::objects as host;

/// Expands to the host call on WebAssembly, to `NotGranted` natively.
macro_rules! host_call {
    ($call:expr, $($arg:ident),*) => {{
        #[cfg(target_arch = "wasm32")]
        return $call;
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = ($($arg),*);
            Err(ObjectError::NotGranted)
        }
    }};
}

/// The object under `name`, if any.
pub fn get(name: &str) -> Result<Option<Object>, ObjectError> {
    host_call!(host::get(name), name)
}

/// Many objects, fetched concurrently by the host; one answer per name.
pub fn get_many(names: &[String]) -> Result<Vec<Option<Object>>, ObjectError> {
    host_call!(host::get_many(names), names)
}

/// Size and version tag of the object under `name`, if any.
pub fn head(name: &str) -> Result<Option<ObjectInfo>, ObjectError> {
    host_call!(host::head(name), name)
}

/// Stores `body` under `name`, replacing any object; returns the version tag.
pub fn put(name: &str, body: &[u8]) -> Result<String, ObjectError> {
    host_call!(host::put(name, body), name, body)
}

/// Stores `body` under `name` only if the name is free
/// ([`ObjectError::PreconditionFailed`] otherwise).
pub fn put_if_absent(name: &str, body: &[u8]) -> Result<String, ObjectError> {
    host_call!(host::put_if_absent(name, body), name, body)
}

/// Replaces the object under `name` only if its version tag is still
/// `etag` ([`ObjectError::PreconditionFailed`] otherwise).
pub fn put_if_match(name: &str, body: &[u8], etag: &str) -> Result<String, ObjectError> {
    host_call!(host::put_if_match(name, body, etag), name, body, etag)
}

/// Many writes, sent concurrently by the host; one answer per write, each
/// write succeeding or failing on its own.
pub fn put_many(writes: &[Write]) -> Vec<Result<String, ObjectError>> {
    #[cfg(target_arch = "wasm32")]
    return host::put_many(writes);
    #[cfg(not(target_arch = "wasm32"))]
    writes
        .iter()
        .map(|_| Err(ObjectError::NotGranted))
        .collect()
}

/// Removes the object under `name`, if any.
pub fn delete(name: &str) -> Result<(), ObjectError> {
    host_call!(host::delete(name), name)
}

/// Up to `limit` objects whose names start with `prefix`, in name order,
/// after `start_after`. A `limit` above 10,000 fails: list a large bucket
/// in pages, each starting after the last name of the page before.
pub fn list(
    prefix: &str,
    start_after: Option<&str>,
    limit: u32,
) -> Result<Vec<ObjectInfo>, ObjectError> {
    host_call!(
        host::list(prefix, start_after, limit),
        prefix,
        start_after,
        limit
    )
}
