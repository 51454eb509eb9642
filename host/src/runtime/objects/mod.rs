//! The object-store capability: a bucket the host reaches on a backend's
//! behalf, so that its plugin can keep records in objects without ever
//! holding the endpoint or the credentials.
//!
//! A backend's `bucket` setting grants it one bucket: an S3-compatible one
//! (AWS, SeaweedFS, Ceph...) through the `object_store` crate, or a local
//! directory (the embedded default). The plugin names objects inside that
//! bucket and nothing else; every request runs on vsamrd's runtime within
//! the backend's call limit.

pub mod claim;
pub mod host;
mod local;
mod s3;
mod spec;

use super::bindings::wit_objects::{Condition, Object, ObjectError, ObjectInfo, Write};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetResult, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};
pub use spec::{BucketSpec, S3Spec};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::runtime::Handle;

/// Most object requests one `get-many` or `put-many` keeps in flight.
const MAX_CONCURRENT: usize = 32;

/// Most objects one `list` call returns (its `limit`): a listing is
/// gathered in vsamrd's memory, outside the plugin's limit, so a plugin
/// asking for four billion names at once would have vsamrd hold every
/// name of the bucket. Ten thousand names of S3's longest (1,024 bytes)
/// are 10 MB; plugins page with `start-after`.
pub const MAX_LIST: u32 = 10_000;

/// The store behind a grant, with what it cannot do natively.
enum Bucket {
    /// S3-compatible: conditional writes and start-after listings are the
    /// server's.
    S3(s3::S3Bucket),
    /// A local directory: conditional replacement and ordered listing are
    /// done here (vsamrd is the directory's only writer).
    Local(local::LocalBucket),
}

/// A backend's granted bucket, shared by its plugin instances.
pub struct ObjectGrant {
    bucket: Bucket,
    /// Longest one request may take, retries included.
    deadline: Duration,
    /// Where the bucket is, for messages (never the credentials).
    place: String,
    /// The largest object a GET reads: what the plugin's memory could
    /// hold. An object past it is not one the plugin wrote (another
    /// program's file under the backend's prefix), and reading it whole
    /// would take vsamrd's memory, not the sandbox's.
    max_object: u64,
}

impl ObjectGrant {
    /// Connects the grant (no request is sent yet) on `runtime`, which
    /// drives its requests; each request is bounded by `deadline`.
    ///
    /// A GET of an object larger than `max_object` bytes fails without
    /// reading it.
    pub fn new(
        spec: &BucketSpec,
        deadline: Duration,
        max_object: u64,
        runtime: &Handle,
    ) -> anyhow::Result<Arc<Self>> {
        let _entered = runtime.enter();
        let bucket = match spec {
            BucketSpec::Directory(path) => Bucket::Local(local::LocalBucket::new(path)?),
            BucketSpec::S3(s3) => Bucket::S3(s3::S3Bucket::new(s3, deadline)?),
        };
        Ok(Arc::new(Self {
            bucket,
            deadline,
            place: spec.to_string(),
            max_object,
        }))
    }

    fn store(&self) -> &dyn ObjectStore {
        match &self.bucket {
            Bucket::S3(s3) => s3.store(),
            Bucket::Local(local) => local.store(),
        }
    }

    /// Runs one request within the deadline.
    async fn within<T>(
        &self,
        what: &str,
        name: &str,
        future: impl Future<Output = Result<T, ObjectError>>,
    ) -> Result<T, ObjectError> {
        tokio::time::timeout(self.deadline, future)
            .await
            .unwrap_or_else(|_| {
                Err(ObjectError::Unavailable(format!(
                    "{what} {name:?}: the object store {} did not answer within {} ms",
                    self.place,
                    self.deadline.as_millis()
                )))
            })
    }

    /// Turns a store error into the contract's, saying what was asked and,
    /// for a refusal, what to check.
    fn error(&self, what: &str, name: &str, error: object_store::Error) -> ObjectError {
        use object_store::Error as E;
        if let Some(cause) = unreachable_cause(&error) {
            return ObjectError::Unavailable(format!(
                "{what} {name:?}: the object store {} cannot be reached: {cause} (requests fail until it answers; check that it runs and that vsamrd can reach it)",
                self.place
            ));
        }
        let (text, code) = s3_error_text(&super::error_chain(&error));
        let message = format!("{what} {name:?} in {}: {text}", self.place);
        let hint = match code.as_deref() {
            Some("SignatureDoesNotMatch" | "InvalidAccessKeyId" | "AccessDenied") => Some(
                "the store refused the credentials: check the bucket's access_key_id and secret_access_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
            ),
            Some("NoSuchBucket") => {
                Some("there is no such bucket: create it, or correct the bucket's name")
            }
            _ => None,
        };
        match (error, hint) {
            (_, Some(hint)) => ObjectError::Failed(format!("{message} ({hint})")),
            (E::Precondition { .. } | E::AlreadyExists { .. }, _) => {
                ObjectError::PreconditionFailed
            }
            (E::InvalidPath { .. } | E::NotSupported { .. } | E::NotImplemented { .. }, _) => {
                ObjectError::Failed(message)
            }
            (E::PermissionDenied { .. } | E::Unauthenticated { .. }, _) => {
                ObjectError::Failed(format!("{message} (check the bucket's credentials)"))
            }
            _ => ObjectError::Unavailable(message),
        }
    }

    /// The object under `name`.
    pub async fn get(&self, name: &str) -> Result<Option<Object>, ObjectError> {
        let path = object_path(name)?;
        let taken = AtomicU64::new(0);
        self.within("get", name, self.fetch(name, &path, &taken))
            .await
    }

    /// Reads one object, counting its size in `taken`, what the objects of
    /// one call hold together: past `max_object` the plugin could not take
    /// them, and vsamrd would hold them in its memory, not the sandbox's.
    async fn fetch(
        &self,
        name: &str,
        path: &Path,
        taken: &AtomicU64,
    ) -> Result<Option<Object>, ObjectError> {
        let result: GetResult = match self.store().get(path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error("get", name, e)),
        };
        if result.meta.size > self.max_object {
            return Err(ObjectError::Failed(format!(
                "get {name:?} in {}: the object is {} bytes, more than the {} bytes the plugin's memory may hold (memory_limit_mb): it is not one the plugin wrote; keep other programs' objects out of the backend's bucket and prefix",
                self.place, result.meta.size, self.max_object
            )));
        }
        let together = taken.fetch_add(result.meta.size, Ordering::Relaxed) + result.meta.size;
        if together > self.max_object {
            return Err(ObjectError::Failed(format!(
                "get-many in {}: the objects asked for together, up to {name:?}, are more than the {} bytes the plugin's memory may hold (memory_limit_mb): ask for fewer at once",
                self.place, self.max_object
            )));
        }
        let etag = result.meta.e_tag.clone().unwrap_or_default();
        let body = result
            .bytes()
            .await
            .map_err(|e| self.error("get", name, e))?;
        Ok(Some(Object {
            body: body.to_vec(),
            etag,
        }))
    }

    /// Many objects, fetched concurrently.
    pub async fn get_many(&self, names: &[String]) -> Result<Vec<Option<Object>>, ObjectError> {
        let paths = names
            .iter()
            .map(|name| object_path(name))
            .collect::<Result<Vec<_>, _>>()?;
        let first = names.first().map(String::as_str).unwrap_or("");
        let taken = AtomicU64::new(0);
        let fetches: Vec<_> = names
            .iter()
            .zip(&paths)
            .map(|(name, path)| self.fetch(name, path, &taken))
            .collect();
        self.within(
            "get",
            first,
            futures::stream::iter(fetches)
                .buffered(MAX_CONCURRENT)
                .try_collect(),
        )
        .await
    }

    /// Size and version of the object under `name`.
    pub async fn head(&self, name: &str) -> Result<Option<ObjectInfo>, ObjectError> {
        let path = object_path(name)?;
        self.within("head", name, async {
            match self.store().head(&path).await {
                Ok(meta) => Ok(Some(info(meta))),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.error("head", name, e)),
            }
        })
        .await
    }

    /// Stores an object under `mode`; returns its new version tag.
    pub async fn put(
        &self,
        name: &str,
        body: Vec<u8>,
        mode: PutMode,
    ) -> Result<String, ObjectError> {
        let path = object_path(name)?;
        self.within(
            mode_name(&mode),
            name,
            self.store_object(name, &path, body, mode),
        )
        .await
    }

    /// Many writes, concurrently; each answered on its own.
    pub async fn put_many(&self, writes: Vec<Write>) -> Vec<Result<String, ObjectError>> {
        let first = writes.first().map(|w| w.name.clone()).unwrap_or_default();
        let all = writes.len();
        let outcome = self
            .within("put", &first, async {
                Ok(futures::stream::iter(writes)
                    .map(|write| async move {
                        let path = object_path(&write.name)?;
                        let mode = match write.condition {
                            Condition::None => PutMode::Overwrite,
                            Condition::Absent => PutMode::Create,
                            Condition::IfMatch(etag) => PutMode::Update(UpdateVersion {
                                e_tag: Some(etag),
                                version: None,
                            }),
                        };
                        self.store_object(&write.name, &path, write.body, mode)
                            .await
                    })
                    .buffered(MAX_CONCURRENT)
                    .collect::<Vec<_>>()
                    .await)
            })
            .await;
        // Out of time: every write is reported failed (some may be stored).
        outcome.unwrap_or_else(|error| vec![Err(error); all])
    }

    async fn store_object(
        &self,
        name: &str,
        path: &Path,
        body: Vec<u8>,
        mode: PutMode,
    ) -> Result<String, ObjectError> {
        let what = mode_name(&mode);
        let payload = PutPayload::from(body);
        let result = match &self.bucket {
            Bucket::Local(local) => local.put(path, payload, mode).await,
            Bucket::S3(s3) => {
                let options = PutOptions {
                    mode,
                    ..Default::default()
                };
                s3.store().put_opts(path, payload, options).await
            }
        };
        result
            .map(|put| put.e_tag.unwrap_or_default())
            .map_err(|e| self.error(what, name, e))
    }

    /// Replaces the object under `name` only at version `etag`.
    pub async fn put_if_match(
        &self,
        name: &str,
        body: Vec<u8>,
        etag: String,
    ) -> Result<String, ObjectError> {
        let version = UpdateVersion {
            e_tag: Some(etag),
            version: None,
        };
        self.put(name, body, PutMode::Update(version)).await
    }

    /// Removes the object under `name`, if any.
    pub async fn delete(&self, name: &str) -> Result<(), ObjectError> {
        let path = object_path(name)?;
        self.within("delete", name, async {
            let deleted = match &self.bucket {
                Bucket::Local(local) => local.delete(&path).await,
                Bucket::S3(s3) => s3.store().delete(&path).await,
            };
            match deleted {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.error("delete", name, e)),
            }
        })
        .await
    }

    /// Up to `limit` objects under the name prefix `prefix`, in name order,
    /// after `start_after`. A `limit` past [`MAX_LIST`] is refused: a
    /// listing is gathered in vsamrd's memory before the plugin sees it.
    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ObjectInfo>, ObjectError> {
        if limit > MAX_LIST {
            return Err(ObjectError::Failed(format!(
                "list {prefix:?} in {}: a listing of up to {limit} objects was asked, and one call lists at most {MAX_LIST}: list pages of at most {MAX_LIST}, each starting after the last name of the page before",
                self.place
            )));
        }
        let limit = limit as usize;
        self.within("list", prefix, async {
            let listed = match &self.bucket {
                Bucket::S3(s3) => s3.list(prefix, start_after, limit).await,
                Bucket::Local(local) => local.list(prefix, start_after, limit).await,
            };
            listed
                .map(|metas| metas.into_iter().map(info).collect())
                .map_err(|e| self.error("list", prefix, e))
        })
        .await
    }
}

/// The contract's name of a write mode, for messages.
fn mode_name(mode: &PutMode) -> &'static str {
    match mode {
        PutMode::Overwrite => "put",
        PutMode::Create => "put-if-absent",
        PutMode::Update(_) => "put-if-match",
    }
}

/// When the store could not be reached (connection refused or reset, no
/// answer in time), the innermost cause, such as "Connection refused": the
/// layers above it (retries, the request's URL, the HTTP client) repeat
/// what the message already says.
fn unreachable_cause(error: &object_store::Error) -> Option<String> {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut transport = false;
    let mut innermost = None;
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(http) = cause.downcast_ref::<HttpError>() {
            transport |= matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        innermost = Some(cause);
        source = cause.source();
    }
    if !transport {
        return None;
    }
    innermost.map(ToString::to_string)
}

/// An S3 error answer carries an XML document: keep its code and message
/// instead of the document.
fn s3_error_text(text: &str) -> (String, Option<String>) {
    let Some(xml) = text.find("<?xml") else {
        return (text.to_string(), None);
    };
    let element = |tag: &str| {
        let open = format!("<{tag}>");
        let start = text[xml..].find(&open)? + xml + open.len();
        let end = text[start..].find("</")? + start;
        Some(text[start..end].to_string())
    };
    let code = element("Code");
    let mut short = text[..xml].trim_end().trim_end_matches(':').to_string();
    if let Some(code) = &code {
        short.push_str(&format!(": {code}"));
    }
    if let Some(message) = element("Message") {
        short.push_str(&format!(": {message}"));
    }
    (short, code)
}

fn info(meta: ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        name: meta.location.to_string(),
        size: meta.size,
        etag: meta.e_tag.unwrap_or_default(),
    }
}

/// A plugin's object name as a store path: `/`-separated, no empty, `.` or
/// `..` segment, so that no name leaves the bucket (or the directory).
fn object_path(name: &str) -> Result<Path, ObjectError> {
    let invalid = |why: &str| ObjectError::Failed(format!("object name {name:?} {why}"));
    if name.is_empty() || name.len() > 1024 {
        return Err(invalid("must have 1 to 1024 bytes"));
    }
    if name
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(invalid(
            "has an empty, `.` or `..` segment (names are `/`-separated keys)",
        ));
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(invalid("contains a control character or a backslash"));
    }
    let path = Path::parse(name).map_err(|e| invalid(&format!("is not usable: {e}")))?;
    if path.as_ref() != name {
        return Err(invalid("is not stored under that exact name"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::{
        BucketSpec, MAX_LIST, ObjectError, ObjectGrant, S3Spec, object_path, s3_error_text,
    };
    use std::time::Duration;

    #[test]
    fn a_store_that_cannot_be_reached_says_so_in_one_short_line() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        // A port nobody listens on: every connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let spec = BucketSpec::S3(S3Spec {
            bucket: "vsam".into(),
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            region: None,
            virtual_hosted_style: false,
            access_key_id: Some("id".into()),
            secret_access_key: Some("secret".into()),
        });
        let grant =
            ObjectGrant::new(&spec, Duration::from_secs(5), 1 << 20, runtime.handle()).unwrap();
        let Err(ObjectError::Unavailable(message)) =
            runtime.block_on(grant.get("PROD.CUST/ci/0001"))
        else {
            panic!("a refused connection is not an unavailable store");
        };
        assert_eq!(
            message,
            format!(
                "get \"PROD.CUST/ci/0001\": the object store bucket vsam at http://127.0.0.1:{port} cannot be reached: Connection refused (os error 111) (requests fail until it answers; check that it runs and that vsamrd can reach it)"
            )
        );
    }

    /// A grant of a local bucket with a directory `PROD.CUST`, for a plugin
    /// that may hold 1,000 bytes; the runtime that drives it.
    fn local_bucket() -> (
        tokio::runtime::Runtime,
        tempfile::TempDir,
        std::sync::Arc<ObjectGrant>,
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let spec = BucketSpec::Directory(dir.path().to_path_buf());
        let grant =
            ObjectGrant::new(&spec, Duration::from_secs(5), 1000, runtime.handle()).unwrap();
        std::fs::create_dir_all(dir.path().join("PROD.CUST")).unwrap();
        (runtime, dir, grant)
    }

    #[test]
    fn an_object_larger_than_the_plugin_may_hold_is_not_read() {
        let (runtime, dir, grant) = local_bucket();
        std::fs::write(dir.path().join("PROD.CUST/small"), vec![1u8; 1000]).unwrap();
        std::fs::write(dir.path().join("PROD.CUST/large"), vec![1u8; 1001]).unwrap();
        let small = runtime.block_on(grant.get("PROD.CUST/small")).unwrap();
        assert_eq!(small.unwrap().body.len(), 1000);
        for read in [
            runtime.block_on(grant.get("PROD.CUST/large")).map(drop),
            runtime
                .block_on(grant.get_many(&["PROD.CUST/small".into(), "PROD.CUST/large".into()]))
                .map(drop),
        ] {
            let Err(ObjectError::Failed(message)) = read else {
                panic!("an object past the bound was read: {read:?}");
            };
            assert!(
                message.contains("\"PROD.CUST/large\"")
                    && message.contains("the object is 1001 bytes, more than the 1000 bytes the plugin's memory may hold"),
                "{message}"
            );
        }
        // Objects each within the bound, asked for together past it.
        std::fs::write(dir.path().join("PROD.CUST/half"), vec![1u8; 500]).unwrap();
        let two =
            runtime.block_on(grant.get_many(&["PROD.CUST/half".into(), "PROD.CUST/half".into()]));
        assert_eq!(two.unwrap().len(), 2);
        let three = vec!["PROD.CUST/half".to_string(); 3];
        let Err(ObjectError::Failed(message)) = runtime.block_on(grant.get_many(&three)) else {
            panic!("objects past the bound together were read");
        };
        assert!(
            message.contains("the objects asked for together")
                && message.contains("more than the 1000 bytes the plugin's memory may hold"),
            "{message}"
        );
    }

    #[test]
    fn a_listing_is_a_page_in_name_order_and_a_page_has_a_bound() {
        let (runtime, dir, grant) = local_bucket();
        // Written out of order, beside names the prefix leaves out.
        let mut names: Vec<String> = (0..200u32)
            .map(|n| format!("PROD.CUST/ci-{:04}", (n * 7919) % 200))
            .collect();
        for name in &names {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::write(dir.path().join("PROD.CUST/definition"), b"x").unwrap();
        std::fs::write(dir.path().join("PROD.CUSTOMER"), b"x").unwrap();
        names.sort();
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = runtime
                .block_on(grant.list("PROD.CUST/ci-", after.as_deref(), 30))
                .unwrap();
            assert!(page.len() <= 30);
            paged.extend(page.iter().map(|info| info.name.clone()));
            match page.last() {
                Some(last) if page.len() == 30 => after = Some(last.name.clone()),
                _ => break,
            }
        }
        assert_eq!(paged, names);

        let most = runtime.block_on(grant.list("PROD.CUST/", None, MAX_LIST));
        assert_eq!(most.unwrap().len(), 201);
        let Err(ObjectError::Failed(message)) =
            runtime.block_on(grant.list("PROD.CUST/", None, MAX_LIST + 1))
        else {
            panic!("a listing past the bound was not refused");
        };
        assert!(
            message.contains("\"PROD.CUST/\"")
                && message
                    .contains("up to 10001 objects was asked, and one call lists at most 10000"),
            "{message}"
        );
    }

    #[test]
    fn s3_error_documents_become_one_line() {
        let text = "Error performing GET http://h/b in 2ms - Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The signature does not match.</Message></Error>";
        let (short, code) = s3_error_text(text);
        assert_eq!(
            short,
            "Error performing GET http://h/b in 2ms - Server returned non-2xx status code: 403 Forbidden: SignatureDoesNotMatch: The signature does not match."
        );
        assert_eq!(code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(
            s3_error_text("connection refused"),
            ("connection refused".into(), None)
        );
    }

    #[test]
    fn names_stay_inside_the_bucket() {
        assert!(object_path("PROD.CUST/ci/00ff-A").is_ok());
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/../b", "a/./b", "a\\b", "a\u{1}b",
        ] {
            assert!(object_path(bad).is_err(), "{bad:?} accepted");
        }
    }
}
