//! How far a mirror applied its change log, recorded beside the store it
//! keeps its copy in.
//!
//! The mirror's position lives in the data dir, with the log. A store
//! outside the data dir (a PostgreSQL database, an S3 bucket, an SQLite
//! file or a directory elsewhere) is not restored with it: after a restore
//! from an older copy, the mirror holds changes the restored datasets no
//! longer do, and would go on from the older position keeping them. So a
//! mirror also records its position on its target's side (where is
//! [`AppliedPlace`]), and a record past the log's end tells it to copy
//! everything again. A store inside the data dir is restored with it, and
//! its record with it: it never looks ahead of the log.

use crate::runtime::AppliedPlace;
use crate::runtime::objects::ObjectGrant;
use crate::vsam::Shared;
use object_store::PutMode;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Longest a record's read or write may take on an S3 bucket.
const BUCKET_DEADLINE: Duration = Duration::from_secs(5);

/// The largest record read: a line of JSON.
const MAX_RECORD_BYTES: u64 = 4 << 10;

/// What a record holds, in a file or an object (a table row on
/// PostgreSQL).
#[derive(Serialize, Deserialize)]
struct Recorded {
    log_id: String,
    mirror: String,
    applied: u64,
}

/// Where mirror `mirror` of change log `log_id` records how far it
/// applied it.
pub(super) struct AppliedRecord {
    place: AppliedPlace,
    log_id: String,
    mirror: String,
    /// The bucket's grant, made at the first use.
    grant: OnceLock<Arc<ObjectGrant>>,
}

impl AppliedRecord {
    /// The record of mirror `mirror` of log `log_id` at `place`.
    pub(super) fn new(place: AppliedPlace, log_id: &str, mirror: &str) -> Self {
        Self {
            place,
            log_id: log_id.to_string(),
            mirror: mirror.to_string(),
            grant: OnceLock::new(),
        }
    }

    /// Whether this record is at `place` (the target's store may change
    /// with a reload).
    pub(super) fn is_at(&self, place: &AppliedPlace) -> bool {
        self.place == *place
    }

    /// Where it is, for messages.
    pub(super) fn label(&self, shared: &Shared) -> String {
        match &self.place {
            AppliedPlace::Database(url) => {
                format!("its database ({})", shared.fleet.session(url).label())
            }
            AppliedPlace::Files(_) => format!("the file {}", self.file().display()),
            AppliedPlace::Bucket(spec, _) => {
                format!("the object {} in {spec}", self.object())
            }
        }
    }

    fn file(&self) -> PathBuf {
        let AppliedPlace::Files(start) = &self.place else {
            unreachable!("a file is asked of a record in files");
        };
        let mut path = start.as_os_str().to_os_string();
        path.push(format!("{}.{}", self.log_id, self.mirror));
        PathBuf::from(path)
    }

    fn object(&self) -> String {
        let AppliedPlace::Bucket(_, start) = &self.place else {
            unreachable!("an object is asked of a record in a bucket");
        };
        format!("{start}{}.{}", self.log_id, self.mirror)
    }

    fn bucket(&self) -> Result<&Arc<ObjectGrant>, String> {
        let AppliedPlace::Bucket(spec, _) = &self.place else {
            unreachable!("a bucket is asked of a record in a bucket");
        };
        if let Some(grant) = self.grant.get() {
            return Ok(grant);
        }
        let grant = ObjectGrant::new(
            spec,
            BUCKET_DEADLINE,
            MAX_RECORD_BYTES,
            &tokio::runtime::Handle::current(),
        )
        .map_err(|error| format!("{error:#}"))?;
        Ok(self.grant.get_or_init(|| grant))
    }

    /// The position recorded, if any.
    pub(super) async fn read(&self, shared: &Shared) -> Result<Option<u64>, String> {
        let bytes = match &self.place {
            AppliedPlace::Database(url) => {
                return shared
                    .fleet
                    .session(url)
                    .mirror_applied(&self.log_id, &self.mirror)
                    .await
                    .map_err(|refusal| refusal.to_string());
            }
            AppliedPlace::Files(_) => {
                let file = self.file();
                let read = tokio::task::spawn_blocking(move || std::fs::read(file))
                    .await
                    .map_err(|error| error.to_string())?;
                match read {
                    Ok(bytes) => bytes,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(error) => return Err(error.to_string()),
                }
            }
            AppliedPlace::Bucket(..) => match self.bucket()?.get(&self.object()).await {
                Ok(Some(object)) => object.body,
                Ok(None) => return Ok(None),
                Err(error) => return Err(format!("{error:?}")),
            },
        };
        // A record that is not one (written by hand, cut short) tells
        // nothing: the next save writes it whole.
        Ok(serde_json::from_slice::<Recorded>(&bytes)
            .ok()
            .filter(|r| r.log_id == self.log_id && r.mirror == self.mirror)
            .map(|r| r.applied))
    }

    /// Records `applied`.
    pub(super) async fn write(&self, shared: &Shared, applied: u64) -> Result<(), String> {
        let body = serde_json::to_vec(&Recorded {
            log_id: self.log_id.clone(),
            mirror: self.mirror.clone(),
            applied,
        })
        .expect("a record serializes");
        match &self.place {
            AppliedPlace::Database(url) => shared
                .fleet
                .session(url)
                .record_mirror_applied(&self.log_id, &self.mirror, applied)
                .await
                .map_err(|refusal| refusal.to_string()),
            // Replaced whole (a crash leaves the old record or the new);
            // not synced: a record lost with a crash is an older one,
            // which tells less, never wrongly.
            AppliedPlace::Files(_) => {
                let file = self.file();
                tokio::task::spawn_blocking(move || {
                    let mut temporary = file.clone().into_os_string();
                    temporary.push(".tmp");
                    std::fs::write(&temporary, body)?;
                    std::fs::rename(&temporary, &file)
                })
                .await
                .map_err(|error| error.to_string())?
                .map_err(|error| error.to_string())
            }
            AppliedPlace::Bucket(..) => self
                .bucket()?
                .put(&self.object(), body, PutMode::Overwrite)
                .await
                .map(|_| ())
                .map_err(|error| format!("{error:?}")),
        }
    }

    /// Removes the record (the mirror was removed): on PostgreSQL with the
    /// names it claimed there (see `crate::fleet::mirrored`).
    pub(super) async fn forget(&self) -> Result<(), String> {
        match &self.place {
            AppliedPlace::Database(_) => Ok(()),
            AppliedPlace::Files(_) => {
                let file = self.file();
                match tokio::task::spawn_blocking(move || std::fs::remove_file(file))
                    .await
                    .map_err(|error| error.to_string())?
                {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                        Err(error.to_string())
                    }
                    _ => Ok(()),
                }
            }
            AppliedPlace::Bucket(..) => self
                .bucket()?
                .delete(&self.object())
                .await
                .map_err(|error| format!("{error:?}")),
        }
    }
}
