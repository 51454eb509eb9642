//! Where a backend's bucket is: the `bucket` table of its configuration.

use std::fmt;
use std::path::PathBuf;

/// A granted bucket, as configured.
#[derive(Clone, PartialEq, Eq)]
pub enum BucketSpec {
    /// A local directory (relative paths under the data dir).
    Directory(PathBuf),
    /// A bucket of an S3-compatible service.
    S3(S3Spec),
}

impl BucketSpec {
    /// The directory of a local bucket (`None` for an S3 bucket).
    pub fn local_directory(&self) -> Option<&std::path::Path> {
        match self {
            BucketSpec::Directory(path) => Some(path),
            BucketSpec::S3(_) => None,
        }
    }
}

/// An S3-compatible bucket. Unset credentials and region come from the
/// standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Spec {
    /// Bucket name.
    pub bucket: String,
    /// Service URL, `http://127.0.0.1:8333`; AWS itself when unset.
    pub endpoint: Option<String>,
    /// Region (`us-east-1` when neither set here nor in the environment).
    pub region: Option<String>,
    /// `https://BUCKET.host/KEY` requests instead of `https://host/BUCKET/KEY`.
    pub virtual_hosted_style: bool,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key (never logged).
    pub secret_access_key: Option<String>,
}

impl fmt::Display for BucketSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Directory(path) => write!(f, "directory {}", path.display()),
            Self::S3(s3) => match &s3.endpoint {
                Some(endpoint) => write!(f, "bucket {} at {endpoint}", s3.bucket),
                None => write!(f, "bucket {}", s3.bucket),
            },
        }
    }
}

impl fmt::Debug for BucketSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
